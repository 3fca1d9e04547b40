"""Permission tools on a real (virtual) desktop: the doctor's checks, then a fix applied."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator

import pytest

from deskloop.screen.virtual_desktop import VirtualDesktop
from deskloop.tools import Tool, ToolContext
from deskloop.tools.permissions import build_permission_tools

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("Xvfb") is None,
    reason="the Linux probe needs Xvfb (scripts/debian-packages.txt)",
)


@pytest.fixture(scope="module")
def bare_desktop() -> Iterator[VirtualDesktop]:
    """Xvfb and a session bus, no apps: enough for every check the tools make."""
    from deskloop.screen.backends.x11 import X11Display  # Linux only

    desktop = VirtualDesktop.start(apps=())
    # Xvfb resets when its last client leaves, and a probe connecting then is refused:
    # one connection held open keeps the server up between the probes.
    keeper = X11Display(desktop.display)
    try:
        yield desktop
    finally:
        keeper.close()
        desktop.stop()


def _tools(context: ToolContext) -> dict[str, Tool]:
    return {tool.name: tool for tool in build_permission_tools(context)}


@pytest.mark.desktop
async def test_status_reports_the_doctors_checks_and_request_turns_accessibility_on(
    bare_desktop: VirtualDesktop, context: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", bare_desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bare_desktop.bus_address)
    tools = _tools(context)
    status = str(await tools["check_permission_status"].run({}, context))
    assert "[ok  ] synthetic input: XTest available" in status
    assert "[ok  ] screenshot: the X server returns pixels" in status
    assert "[warn] accessibility enabled: org.a11y.Status.IsEnabled is false" in status
    assert "can see the screen: yes; can act on it: yes" in status

    asked = str(await tools["request_permission"].run({}, context))
    assert asked.startswith("set org.a11y.Status.IsEnabled to true")
    assert "[ok  ] accessibility enabled: org.a11y.Status.IsEnabled is true" in asked
    again = str(await tools["request_permission"].run({}, context))
    assert again.startswith("accessibility is already announced")


async def test_without_a_display_or_bus_the_status_says_what_to_fix(
    context: ToolContext, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    status = str(await _tools(context)["check_permission_status"].run({}, context))
    assert "[FAIL] display: no display: DISPLAY is not set" in status
    assert "fix: run deskloop in your desktop session, or set DISPLAY" in status
    assert "[FAIL] session bus" in status
    asked = str(await _tools(context)["request_permission"].run({}, context))
    assert asked.startswith("could not reach the session bus")
    assert "what the user must still do:\n- display: run deskloop in your desktop session" in asked
