"""A real Qt 6 app (PySide6) read and driven through the AT-SPI backend.

The app starts with no accessibility switch of its own: Qt registers on the bus only
because the backend turns on org.a11y.Status.IsEnabled when it connects.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.backends.atspi.connection import connect_session_bus
from deskloop.screen.backends.atspi.toolkits import accessibility_enabled
from deskloop.screen.observation import visible_elements
from deskloop.screen.tree import Element, Snapshot
from deskloop.screen.virtual_desktop import AppSpec, VirtualDesktop

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

# PySide6-Essentials comes with the dev extra; the app runs in its own process.
QT_FORM = AppSpec(
    "qt-form",
    (sys.executable, str(Path(__file__).parent / "apps" / "qt_form.py")),
    "deskloop-qt-form",
    (0, 0),
)


@pytest.fixture(scope="module")
def qt_desktop() -> Iterator[VirtualDesktop]:
    running = VirtualDesktop.start((QT_FORM,))
    try:
        running.wait_for_trees((QT_FORM,), min_nodes=5)
        yield running
    finally:
        running.stop()


@pytest.fixture
async def qt(qt_desktop: VirtualDesktop, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ScreenSession]:
    monkeypatch.setenv("DISPLAY", qt_desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", qt_desktop.bus_address)
    backend = await AtspiBackend.connect()
    session = ScreenSession(backend)
    try:
        await session.observe(pid=qt_desktop.pids["qt-form"])
        yield session
    finally:
        await backend.close()


def only(snapshot: Snapshot | None, role: str, name: str) -> Element:
    assert snapshot is not None
    matches = [e for e in visible_elements(snapshot) if e.role == role and e.name == name]
    assert len(matches) == 1, f"one {role} {name!r} expected in:\n{snapshot}"
    return matches[0]


async def test_qt_window_shows_its_widgets_by_name(qt: ScreenSession) -> None:
    result = await qt.observe()
    assert result.snapshot is not None and result.snapshot.degraded is None
    assert result.text.startswith('window "deskloop Qt form" app "deskloop-qt-form"')
    assert 'button "Press me"' in result.text
    assert 'check "Remember me"' in result.text
    assert 'entry "Your name" = ""' in result.text


async def test_connecting_turned_accessibility_on(qt: ScreenSession) -> None:
    session_bus = await connect_session_bus()
    try:
        assert await accessibility_enabled(session_bus)
    finally:
        session_bus.disconnect()


async def test_click_qt_check_box_by_id_flips_it(qt: ScreenSession) -> None:
    box = only(qt.latest, "check", "Remember me")
    was_checked = "checked" in box.states

    result = await qt.click(box.id)

    assert result.diff is not None
    assert [line.split()[1] for line in result.diff.changed] == [box.id]
    again = await qt.observe()
    assert again.snapshot is not None
    assert ("checked" in again.snapshot.elements[box.id].states) is not was_checked


async def test_press_qt_button_changes_the_label(qt: ScreenSession) -> None:
    button = only(qt.latest, "button", "Press me")
    await qt.click(button.id)
    # Qt's press action is animateClick: `clicked` fires about 100 ms after the press.
    found = await qt.wait_for(text="pressed 1 times", timeout_s=5)
    assert found.snapshot is not None
    only(found.snapshot, "label", "pressed 1 times")


async def test_type_into_qt_line_edit_and_read_it_back(qt: ScreenSession) -> None:
    edit = only(qt.latest, "entry", "Your name")
    await qt.set_value(edit.id, "")

    result = await qt.type_text("Ada Lovelace", edit.id)

    assert f'~ {edit.id} entry "Your name" = "Ada Lovelace"' in result.text
    again = await qt.observe()
    assert again.snapshot is not None
    assert again.snapshot.elements[edit.id].value == "Ada Lovelace"


async def test_open_app_alone_makes_a_qt_app_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    """With IsEnabled left off, the Qt switch open_app sets is what brings the tree."""
    desktop = VirtualDesktop.start(())
    monkeypatch.setenv("DISPLAY", desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address)
    monkeypatch.delenv("QT_LINUX_ACCESSIBILITY_ALWAYS_ON", raising=False)
    backend = await AtspiBackend.connect(enable=False)
    try:
        result = await ScreenSession(backend).open_app(shlex.join(QT_FORM.command))
        assert result.snapshot is not None
        assert result.snapshot.app == "deskloop-qt-form"
        only(result.snapshot, "check", "Remember me")
        session_bus = await connect_session_bus()
        try:
            assert not await accessibility_enabled(session_bus)
        finally:
            session_bus.disconnect()
    finally:
        await backend.close()
        for process in backend.launched:
            process.terminate()
            process.wait(timeout=10)
        desktop.stop()
