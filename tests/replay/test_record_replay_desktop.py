"""Show it once, then have it done again: a person's demonstration (xdotool: the pointer
and the keys, never the accessibility API) is recorded by the real recorder, the apps are
put back as they were, the saved file is replayed, and the result is read with the
independent raw-D-Bus reader."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from deskloop.recordings.recording import Recording
from deskloop.recordings.replay import Replayer
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.virtual_desktop import SAMPLE_APP, TEST_APPS, VirtualDesktop
from tests.recordings.test_recording_desktop import Person, nodes_of, pick, record
from tests.replay.atspi_reader import IndependentReader, Node
from tests.replay.test_replay_desktop import (
    DEMO,
    FACTORY,
    MOUSEPAD,
    mousepad_text,
    reset_demo,
    reset_mousepad,
    selected_rows,
)
from tests.screen.test_qt_app import QT_FORM

pytestmark = pytest.mark.desktop

BOXES = ("check box", "radio button")


def showing(nodes: Sequence[Node], role: str, name: str | None = None) -> list[Node]:
    return [
        n
        for n in nodes
        if n.role == role and (name is None or n.name == name) and "showing" in n.states
    ]


async def factory_state(reader: IndependentReader) -> tuple[tuple[bool, ...], tuple[str, ...]]:
    """What a person sees on widget-factory's first page: each box ticked or not, each
    one-line field's text."""
    nodes = await reader.nodes(FACTORY)
    ticks = tuple("checked" in n.states for role in BOXES for n in showing(nodes, role))
    texts = tuple(n.text or "" for n in showing(nodes, "text"))
    return ticks, texts


async def put_factory_back(
    reader: IndependentReader, before: tuple[tuple[bool, ...], tuple[str, ...]]
) -> None:
    """widget-factory as `before` (the reader's own actions: this is the test's reset)."""
    nodes = await reader.nodes(FACTORY)
    boxes = [n for role in BOXES for n in showing(nodes, role)]
    ticks, texts = before
    for node, ticked in zip(boxes, ticks, strict=True):
        if ticked and "checked" not in node.states:
            await reader.do_action(node)  # a radio comes back by ticking the old one
    for node, ticked in zip(boxes, ticks, strict=True):
        if node.role == "check box" and not ticked and "checked" in node.states:
            await reader.do_action(node)
    for node, text in zip(showing(nodes, "text"), texts, strict=True):
        if (node.text or "") != text:
            await reader.set_text(node, text)
    for _ in range(30):
        if await factory_state(reader) == before:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("widget-factory did not go back to how it was")


def statusbar_shown(nodes: Sequence[Node]) -> bool:
    return bool(showing(nodes, "statusbar"))


def search_shown(nodes: Sequence[Node]) -> bool:
    """Mousepad's find bar: a second one-line field beside the document."""
    return len(showing(nodes, "text")) > 1


async def menu_item(reader: IndependentReader, app: str, name: str) -> tuple[int, int]:
    """The centre of an open menu's item, to aim the pointer at."""
    for _ in range(30):
        for node in await reader.nodes(app):
            if "menu item" in node.role and node.name.strip() == name and "showing" in node.states:
                x, y, width, height = await reader.extents(node)
                if width > 0:
                    return x + width // 2, y + height // 2
        await asyncio.sleep(0.1)
    raise AssertionError(f"no menu item {name!r} showing in {app}")


async def replayed(session: ScreenSession, recording: Recording) -> None:
    report = await Replayer(session).replay(recording)
    assert report.ok, report.text()


async def test_boxes_a_field_a_menu_and_a_chord_across_two_apps_are_done_again(
    desktop_env: VirtualDesktop,
    session: ScreenSession,
    reader: IndependentReader,
    tmp_path: Path,
) -> None:
    person = Person(desktop_env)
    await reset_mousepad(reader)
    factory_before = await factory_state(reader)
    pad_before = await reader.nodes(MOUSEPAD)
    factory = await nodes_of(FACTORY)
    check = pick(factory, "check", "checkbutton", unchecked=True)
    radio = pick(factory, "radio", "radiobutton", unchecked=True)
    entry = next(
        n
        for n in factory
        if n.role == "entry"
        and not n.value
        and n.box
        and "disabled" not in n.states
        and "multiline" not in n.states
    )
    pad = await nodes_of(MOUSEPAD)
    document = pick(pad, "entry")
    view = pick(pad, "menu", "View")

    async def demonstrate() -> None:
        await person.click(check)
        await person.click(radio)
        # No window manager here: the test gives the keyboard to the window clicked into,
        # as a window manager would (an earlier test may have left it elsewhere).
        desktop_env.focus(TEST_APPS[0])
        await person.click(entry)
        await person.type("anna@example.com")
        desktop_env.focus(SAMPLE_APP)
        await person.click(document)
        await person.type("shown once")
        await person.click(view)
        await person.click_at(*await menu_item(reader, MOUSEPAD, "Statusbar"))
        await person.click(document)
        await person.key("ctrl+f")

    recording = await record(tmp_path, demonstrate)
    intents = [step.intent for step in recording.steps]
    # One step per thing the person did: never one per key, the menu path as one step.
    assert sorted(s.action for s in recording.steps) == [
        "click",
        "click",
        "keys",
        "menu",
        "set_text",
        "set_text",
    ], intents
    assert [s.menu_path for s in recording.steps if s.action == "menu"] == [("View", "Statusbar")]
    assert set(recording.apps) >= {FACTORY, MOUSEPAD}
    shown = await factory_state(reader)
    assert shown != factory_before and "anna@example.com" in shown[1]
    assert await mousepad_text(reader) == "shown once"
    assert statusbar_shown(await reader.nodes(MOUSEPAD)) is not statusbar_shown(pad_before)

    # Back as it was: the test's own reset, then the person closes the find bar and
    # takes the status bar away again.
    await put_factory_back(reader, factory_before)
    await person.key("Escape")
    await reset_mousepad(reader)
    await person.click(view)
    await person.click_at(*await menu_item(reader, MOUSEPAD, "Statusbar"))
    pad_reset = await reader.nodes(MOUSEPAD)
    assert statusbar_shown(pad_reset) is statusbar_shown(pad_before)
    assert not search_shown(pad_reset)

    await replayed(session, recording)

    assert await factory_state(reader) == shown
    after = await reader.nodes(MOUSEPAD)
    assert statusbar_shown(after) is not statusbar_shown(pad_before)
    assert search_shown(after), intents  # the chord reached mousepad
    assert await mousepad_text(reader) == "shown once"

    await put_factory_back(reader, factory_before)
    await person.key("Escape")
    await reset_mousepad(reader)
    await person.click(view)
    await person.click_at(*await menu_item(reader, MOUSEPAD, "Statusbar"))


async def test_a_list_row_chosen_once_is_chosen_again(
    desktop_env: VirtualDesktop,
    session: ScreenSession,
    reader: IndependentReader,
    tmp_path: Path,
) -> None:
    person = Person(desktop_env)
    await reset_demo(desktop_env, reader)
    row = pick(await nodes_of(DEMO), "cell", "Builder")

    async def demonstrate() -> None:
        await person.click(row)

    recording = await record(tmp_path, demonstrate, app=DEMO)
    assert [s.action for s in recording.steps] == ["select"], recording.steps
    assert await selected_rows(reader) == ["Builder"]
    await reset_demo(desktop_env, reader)

    await replayed(session, recording)

    assert await selected_rows(reader) == ["Builder"]
    await reset_demo(desktop_env, reader)


@pytest.fixture(scope="module")
def qt_desktop() -> Iterator[VirtualDesktop]:
    running = VirtualDesktop.start((QT_FORM,))
    try:
        running.wait_for_trees((QT_FORM,), min_nodes=5)
        yield running
    finally:
        running.stop()


@pytest.mark.slow  # its own desktop, as tests/screen/test_qt_app.py
async def test_a_qt_form_filled_in_once_is_filled_in_again(
    qt_desktop: VirtualDesktop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", qt_desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", qt_desktop.bus_address)
    app = QT_FORM.atspi_name
    person = Person(qt_desktop)
    form = await nodes_of(app)
    check = pick(form, "check", "Remember me")
    entry = pick(form, "entry", "Your name")
    button = pick(form, "button", "Press me")

    async def demonstrate() -> None:
        await person.click(check)
        await person.click(entry)
        await person.type("Ada Lovelace")
        await person.click(button)

    recording = await record(tmp_path, demonstrate, app=app)
    intents = [step.intent for step in recording.steps]
    assert [s.action for s in recording.steps] == ["click", "set_text", "click"], intents

    # A fresh start of the app puts it back (new ids, same names).
    qt_desktop.stop_app(QT_FORM.key)
    qt_desktop.launch(QT_FORM)
    qt_desktop.wait_for_window(QT_FORM)
    await asyncio.to_thread(qt_desktop.wait_for_trees, (QT_FORM,), 30, 5)
    reader = await IndependentReader.connect(qt_desktop.bus_address)
    backend = await AtspiBackend.connect()
    try:
        fresh = await reader.nodes(app)
        assert not showing(fresh, "label", "pressed 1 times")
        report = await Replayer(ScreenSession(backend)).replay(recording)
        assert report.ok, report.text()
        for _ in range(30):  # the press is counted once the app has had its turn
            nodes = await reader.nodes(app)
            if showing(nodes, "label", "pressed 1 times"):
                break
            await asyncio.sleep(0.1)
    finally:
        await backend.close()
        reader.close()

    [box] = showing(nodes, "check box", "Remember me")
    assert "checked" in box.states
    [field] = showing(nodes, "text", "Your name")
    assert field.text == "Ada Lovelace"
    assert showing(nodes, "label", "pressed 1 times"), [(n.role, n.name) for n in nodes]
