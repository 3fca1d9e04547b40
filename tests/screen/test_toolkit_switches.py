"""The accessibility switches deskloop flips for Qt and Chromium, and what doctor says."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.backends.atspi.connection import connect_session_bus
from deskloop.screen.backends.atspi.toolkits import (
    accessibility_enabled,
    accessible_launch,
    no_tree_reason,
)
from deskloop.screen.virtual_desktop import AppSpec, DesktopStartError, VirtualDesktop


def test_open_app_gives_chromium_browsers_their_flag_and_every_app_the_qt_switch() -> None:
    command, env = accessible_launch(["/usr/bin/chromium", "https://example.org"], {"A": "1"})
    assert command == ["/usr/bin/chromium", "--force-renderer-accessibility",
                       "https://example.org"]
    assert env == {"A": "1", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1"}

    command, env = accessible_launch(["mousepad", "notes.txt"], {"QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "0"})
    assert command == ["mousepad", "notes.txt"]
    assert env["QT_LINUX_ACCESSIBILITY_ALWAYS_ON"] == "0"  # a user's own choice stays

    flagged = ["google-chrome", "--force-renderer-accessibility"]
    assert accessible_launch(flagged, {})[0] == flagged


def test_empty_window_reasons_name_the_toolkits_fix() -> None:
    assert "--force-renderer-accessibility" in no_tree_reason("Chromium")
    assert "QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1" in no_tree_reason("Qt")
    for toolkit in ("Chromium", "Qt", "GTK", "Java"):
        assert no_tree_reason(toolkit).endswith("Use capture_screenshot to see it meanwhile")


@pytest.fixture(scope="module")
def bare_desktop() -> Iterator[VirtualDesktop]:
    """A desktop no assistive technology has touched yet: IsEnabled is still false."""
    running = VirtualDesktop.start(())
    try:
        yield running
    finally:
        running.stop()


def is_enabled(desktop: VirtualDesktop) -> bool:
    async def ask() -> bool:
        session = await connect_session_bus()
        try:
            return await accessibility_enabled(session)
        finally:
            session.disconnect()

    with desktop.environment():
        return asyncio.run(ask())


def doctor_checks(desktop: VirtualDesktop) -> dict[str, dict[str, str]]:
    env = {**os.environ, "DISPLAY": desktop.display,
           "DBUS_SESSION_BUS_ADDRESS": desktop.bus_address}
    result = subprocess.run([sys.executable, "-m", "deskloop", "doctor", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    return {check["name"]: check for check in json.loads(result.stdout)["checks"]}


@pytest.mark.desktop
def test_doctor_explains_accessibility_off_and_the_agent_turns_it_on(
    bare_desktop: VirtualDesktop,
) -> None:
    check = doctor_checks(bare_desktop)["accessibility enabled"]
    assert check["status"] == "warn"
    assert "IsEnabled is false" in check["detail"] and "Qt apps" in check["detail"]
    assert "QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1" in check["fix"]
    assert not is_enabled(bare_desktop), "doctor only looks"

    async def connect_agent() -> None:
        backend = await AtspiBackend.connect()
        await backend.close()

    with bare_desktop.environment():
        asyncio.run(connect_agent())

    assert is_enabled(bare_desktop)
    assert doctor_checks(bare_desktop)["accessibility enabled"]["status"] == "ok"


@pytest.mark.desktop
def test_an_app_that_dies_at_start_is_reported_with_what_it_said() -> None:
    crashing = AppSpec("crashing", ("sh", "-c", "echo 'qt.qpa.xcb: could not connect' >&2; exit 1"),
                       "crashing", (0, 0))
    with pytest.raises(DesktopStartError, match=r"crashing exited before showing a window; "
                                                r"it said: qt\.qpa\.xcb: could not connect"):
        VirtualDesktop.start((crashing,))
