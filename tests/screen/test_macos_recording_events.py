"""The macOS recording event source against a fake Mac that delivers taps and AXObserver
notifications as Apple documents (tests/screen/fake_macos.py): only on a run loop turn."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deskloop.screen.backends.macos import events as events_module
from deskloop.screen.backends.macos.ax import PyObjCAx
from deskloop.screen.backends.macos.events import (
    MacEventSource,
    _Key,
    key_event,
    text_changes,
)
from deskloop.screen.errors import ScreenUnavailableError
from deskloop.screen.recording_events import (
    ElementEvent,
    KeyEvent,
    PointerEvent,
    RecordedEvent,
)
from deskloop.screen.tree import Box
from tests.screen.fake_macos import App, Element, FakeMac, Node, Window, install

WAIT_S = 3.0
CMD, SHIFT = 1 << 20, 1 << 17


class Editor:
    """A small app window: a check box whose label is its own child, an entry named by a
    separate label, and a secure text field that holds a password."""

    def __init__(self) -> None:
        self.label = Node({"AXRole": "AXStaticText", "AXValue": "Bold",
                           "AXPosition": (140, 130), "AXSize": (60, 24)})
        self.bold = Node({"AXRole": "AXCheckBox", "AXTitle": "Bold", "AXValue": 0,
                          "AXIdentifier": "format.bold", "AXEnabled": True,
                          "AXPosition": (120, 130), "AXSize": (80, 24)}, [self.label])
        self.italic = Node({"AXRole": "AXCheckBox", "AXTitle": "Italic", "AXValue": 0,
                            "AXPosition": (210, 130), "AXSize": (80, 24)})
        self.to_label = Node({"AXRole": "AXStaticText", "AXValue": "To:",
                              "AXPosition": (120, 200), "AXSize": (30, 20)})
        self.to = Node({"AXRole": "AXTextField", "AXValue": "",
                        "AXPosition": (160, 200), "AXSize": (300, 24)})
        self.password = Node({"AXRole": "AXTextField", "AXSubrole": "AXSecureTextField",
                              "AXDescription": "Password", "AXValue": "",
                              "AXPosition": (160, 240), "AXSize": (300, 24)})
        self.format = Node({"AXRole": "AXGroup", "AXTitle": "Format", "AXPosition": (110, 125),
                            "AXSize": (400, 40)}, [self.italic, self.bold])
        # As NSTableView shows them: a row holds a cell, the cell the row's text.
        self.rows = [
            Node({"AXRole": "AXRow", "AXPosition": (120, 300 + 30 * number), "AXSize": (200, 30)},
                 [Node({"AXRole": "AXCell", "AXPosition": (120, 300 + 30 * number), "AXSize": (200, 30)},
                       [Node({"AXRole": "AXStaticText", "AXValue": name,
                              "AXPosition": (125, 300 + 30 * number), "AXSize": (190, 30)})])])
            for number, name in enumerate(("Bob", "Assistant"))
        ]
        self.people = Node({"AXRole": "AXList", "AXDescription": "People",
                            "AXPosition": (120, 300), "AXSize": (200, 60)}, self.rows)
        self.window = Node({"AXRole": "AXWindow", "AXTitle": "Editor", "AXPosition": (100, 100),
                            "AXSize": (600, 400)},
                           [self.format, self.to_label, self.to, self.password, self.people])


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> FakeMac:
    return install(monkeypatch)


@pytest.fixture
def editor(mac: FakeMac) -> Editor:
    ui = Editor()
    mac.add_app(App("Editor", 501, "org.example.Editor", [Window("Editor", (100, 100, 600, 400), ui.window)]))
    ui.to.attributes["AXTitleUIElement"] = Element("node", 501, ui.to_label)
    return ui


async def next_event(stream: AsyncIterator[RecordedEvent]) -> RecordedEvent:
    return await asyncio.wait_for(anext(stream), WAIT_S)


async def started(source: MacEventSource) -> AsyncIterator[RecordedEvent]:
    await source.start()
    return aiter(source.events())


def recording_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("deskloop-mac-")]


async def test_a_click_describes_the_check_box_as_it_was_at_the_press(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    try:
        mac.press(150, 140)  # on the check box's own label text: the hit test returns that
        press = await next_event(stream)
        # Before the release the app changes: the box is checked, renamed and moved away.
        editor.bold.attributes.update(AXTitle="Strong", AXPosition=(400, 400))
        mac.set_value(editor.bold, 1)
        mac.release(150, 140)
        later = [await next_event(stream), await next_event(stream)]
    finally:
        await source.stop()
    assert isinstance(press, PointerEvent) and press.kind == "press" and press.button == 1
    element = press.element
    assert element is not None
    assert (element.app, element.pid, element.role, element.name) == ("Editor", 501, "check", "Bold")
    assert element.stable_id == "format.bold"
    assert element.path == (("window", "Editor"), ("group", "Format"))
    assert element.index == 1  # after Italic among the group's check boxes
    assert element.box == Box(120, 130, 80, 24)
    assert (element.window_title, element.window_box) == ("Editor", Box(100, 100, 600, 400))
    assert "checked" not in element.states and not element.secret
    checked = next(e for e in later if isinstance(e, ElementEvent))
    release = next(e for e in later if isinstance(e, PointerEvent))
    assert release.kind == "release" and release.element == element  # not looked up again
    assert checked.kind == "checked" and checked.element.name == "Strong"


async def test_value_changes_become_element_events(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    try:
        mac.focus(editor.to)
        focused = await next_event(stream)
        mac.set_value(editor.to, "anna@")
        first = await next_event(stream)
        mac.set_value(editor.to, "anna@example.com")
        second = await next_event(stream)
        mac.set_value(editor.to, "anna@example.org")  # a replaced selection
        replaced = [await next_event(stream), await next_event(stream)]
    finally:
        await source.stop()
    assert isinstance(focused, ElementEvent) and focused.kind == "focused"
    assert (focused.element.role, focused.element.name) == ("entry", "To")
    assert isinstance(first, ElementEvent) and isinstance(second, ElementEvent)
    assert (first.kind, first.detail, first.element.value) == ("text_inserted", "anna@", "anna@")
    assert (second.kind, second.detail) == ("text_inserted", "example.com")
    assert second.element.value == "anna@example.com"
    assert [(e.kind, e.detail) for e in replaced if isinstance(e, ElementEvent)] == [
        ("text_deleted", "com"), ("text_inserted", "org"),
    ]


async def test_a_selected_row_is_named_by_its_text(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    try:
        mac.press(150, 345)  # on the text of the second row
        press = await next_event(stream)
        editor.people.attributes["AXSelectedChildren"] = [Element("node", 501, editor.rows[1])]
        mac.notify(editor.people, "AXSelectedChildrenChanged")
        selected, changed = await next_event(stream), await next_event(stream)
    finally:
        await source.stop()
    assert isinstance(press, PointerEvent) and press.element is not None
    assert (press.element.role, press.element.name, press.element.index) == ("row", "Assistant", 1)
    assert press.element.path == (("window", "Editor"), ("list", "People"))
    assert isinstance(selected, ElementEvent) and selected.kind == "selected"
    assert selected.element == press.element
    assert isinstance(changed, ElementEvent) and changed.kind == "selection_changed"
    assert (changed.element.role, changed.detail) == ("list", "Assistant")


async def test_notifications_wait_for_a_run_loop_turn(mac: FakeMac, editor: Editor) -> None:
    # The observer's source delivers nothing until the thread holding it turns its run loop.
    services, quartz = PyObjCAx().ax, PyObjCAx().quartz
    heard: list[str] = []
    _, observer = services.AXObserverCreate(501, lambda *args: heard.append(args[2]), None)
    assert services.AXObserverAddNotification(observer, services.AXUIElementCreateApplication(501),
                                              "AXValueChanged", None) == 0
    loop = quartz.CFRunLoopGetCurrent()
    quartz.CFRunLoopAddSource(loop, services.AXObserverGetRunLoopSource(observer),
                              quartz.kCFRunLoopDefaultMode)
    mac.turn_run_loop()  # NSWorkspace's news of the Editor's start, out of the way
    mac.set_value(editor.to, "x")
    assert heard == []
    quartz.CFRunLoopRunInMode(quartz.kCFRunLoopDefaultMode, 0, True)
    assert heard == ["AXValueChanged"]


async def test_a_secure_text_field_never_shows_what_was_typed(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    got: list[RecordedEvent] = []
    try:
        mac.press(200, 250)
        mac.release(200, 250)
        mac.focus(editor.password)
        got += [await next_event(stream) for _ in range(3)]
        for keycode, text in ((0x04, "h"), (0x20, "u"), (0x2D, "n"), (0x11, "t"), (0x0E, "e"),
                              (0x0F, "r"), (0x13, "2")):
            mac.type_key(keycode, text)
        editor.password.attributes["AXValue"] = "hunter2"  # some apps say it in plain text
        mac.notify(editor.password, "AXValueChanged")
        mac.type_key(0x24, "\r")  # Return
        got += [await next_event(stream) for _ in range(9)]
    finally:
        await source.stop()
    assert "hunter" not in repr(got)
    keys = [e for e in got if isinstance(e, KeyEvent)]
    assert len(keys) == 8
    assert all(k.secret and k.key == k.text == "" for k in keys[:7])
    assert keys[7].key == "Return"  # a named key says nothing of the password
    press = next(e for e in got if isinstance(e, PointerEvent))
    assert press.element is not None and press.element.secret
    assert (press.element.role, press.element.name, press.element.value) == ("password", "Password", None)
    typed = [e for e in got if isinstance(e, ElementEvent) and e.kind == "text_inserted"]
    assert typed and all(e.element.secret and e.detail == "" for e in typed)


async def test_keys_in_a_secure_field_are_withheld_even_without_a_focus_notice(
    mac: FakeMac, editor: Editor
) -> None:
    mac.focused = Element("node", 501, editor.password)  # the app posted no notification
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    try:
        mac.type_key(0x04, "h")
        event = await next_event(stream)
    finally:
        await source.stop()
    assert event == KeyEvent("", frozenset(), event.time, "", secret=True)


async def test_keys_and_chords(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    try:
        mac.type_key(0x00, "A", SHIFT)
        mac.type_key(0x01, "s", CMD)
        mac.type_key(0x7E, "\uf700", 1 << 23)  # Up: macOS sets the fn flag on arrows
        got = [await next_event(stream) for _ in range(3)]
    finally:
        await source.stop()
    assert [(e.key, e.modifiers, e.text) for e in got if isinstance(e, KeyEvent)] == [
        ("a", frozenset({"shift"}), "A"), ("s", frozenset({"super"}), ""), ("Up", frozenset(), ""),
    ]


def test_key_names_and_text() -> None:
    assert key_event(_Key(0x24, 0, "\r", 0.0), False).key == "Return"
    assert key_event(_Key(0x7A, 0, "\uf704", 0.0), False) == KeyEvent("F1", frozenset(), 0.0, "")
    assert key_event(_Key(0x0E, 1 << 19, "´", 0.0), False).text == "´"  # Option types text
    assert key_event(_Key(0x09, CMD, "v", 0.0), True) == KeyEvent("", frozenset({"super"}), 0.0, "", secret=True)


@pytest.mark.parametrize(("before", "after", "changes"), [
    ("", "abc", [("text_inserted", "abc")]),
    ("abc", "abXc", [("text_inserted", "X")]),
    ("abc", "ac", [("text_deleted", "b")]),
    ("hello world", "hello there", [("text_deleted", "world"), ("text_inserted", "there")]),
    ("aa", "aaa", [("text_inserted", "a")]),
    ("same", "same", []),
])
def test_text_changes(before: str, after: str, changes: list[tuple[str, str]]) -> None:
    assert text_changes(before, after) == changes


async def test_a_tap_macos_switched_off_is_switched_back_on(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    try:
        mac.time_out_taps()
        await asyncio.sleep(0.3)  # a run loop turn delivers the "disabled" news
        mac.press(230, 140)
        press = await next_event(stream)
    finally:
        await source.stop()
    assert isinstance(press, PointerEvent) and press.element is not None
    assert press.element.name == "Italic" and press.element.index == 0


async def test_an_app_started_while_recording_is_observed(
    mac: FakeMac, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "SCAN_S", 0.05)
    notes = Node({"AXRole": "AXWindow", "AXTitle": "Notes", "AXPosition": (0, 0), "AXSize": (300, 300)})
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    try:
        mac.add_app(App("Notes", 777, "com.apple.Notes", [Window("Notes", (0, 0, 300, 300), notes)]))
        for _ in range(50):
            if any(o.pid == 777 and o.registered for o in mac.observers):
                break
            await asyncio.sleep(0.05)
        mac.notify(notes, "AXWindowCreated")
        opened = await next_event(stream)
    finally:
        await source.stop()
    assert isinstance(opened, ElementEvent) and opened.kind == "window_opened"
    assert (opened.element.app, opened.element.role, opened.element.name) == ("Notes", "window", "Notes")


async def test_only_the_named_app_is_observed(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx(), app="editor")
    await source.start()
    await source.stop()
    assert {o.pid for o in mac.observers} == {501}


async def test_accessibility_switched_off_while_recording_ends_the_events_with_the_fix(
    mac: FakeMac, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "SCAN_S", 0.05)
    source = MacEventSource(PyObjCAx())
    stream = await started(source)
    mac.set_permission("revoked")
    mac.add_app(App("Notes", 777, "com.apple.Notes", [Window("Notes", (0, 0, 300, 300))]))
    with pytest.raises(ScreenUnavailableError, match="Privacy & Security > Accessibility"):
        await next_event(stream)
    await source.stop()
    assert recording_threads() == []


async def test_without_accessibility_the_error_names_its_pane(mac: FakeMac, editor: Editor) -> None:
    mac.set_permission("never")
    mac.input_monitoring = True
    source = MacEventSource(PyObjCAx())
    with pytest.raises(ScreenUnavailableError) as caught:
        async for _ in source.events():
            pass
    message = str(caught.value)
    assert "System Settings > Privacy & Security > Accessibility" in message
    assert "Input Monitoring" not in message
    assert recording_threads() == []
    assert all(not tap.valid for tap in mac.created_taps)


async def test_without_input_monitoring_the_key_tap_is_refused_and_the_error_says_so(
    mac: FakeMac, editor: Editor
) -> None:
    # AX answers, but the live database grants neither Accessibility's taps nor Input Monitoring.
    mac.accessibility_granted = mac.input_monitoring = False
    with pytest.raises(ScreenUnavailableError) as caught:
        await MacEventSource(PyObjCAx()).start()
    message = str(caught.value)
    assert "System Settings > Privacy & Security > Input Monitoring" in message
    assert "to hear the keys typed" in message and "Accessibility (" not in message
    key_tap = mac.taps[0]
    assert key_tap[2] is False  # CGEventTapCreate returned None
    assert recording_threads() == []


async def test_with_neither_grant_both_panes_are_named(mac: FakeMac, editor: Editor) -> None:
    mac.set_permission("never")
    mac.input_monitoring = False
    with pytest.raises(ScreenUnavailableError, match=r"Accessibility .* and Input Monitoring"):
        await MacEventSource(PyObjCAx()).start()


async def test_stop_ends_the_iterator_cleanly(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    got: list[RecordedEvent] = []

    async def record() -> None:
        async for event in source.events():
            got.append(event)

    task = asyncio.create_task(record())
    for _ in range(50):
        if mac.created_taps and all(tap.enabled for tap in mac.created_taps):
            break
        await asyncio.sleep(0.02)
    mac.press(150, 140)
    mac.release(150, 140)
    for _ in range(100):
        if len(got) == 2:
            break
        await asyncio.sleep(0.02)
    await source.stop()
    await asyncio.wait_for(task, WAIT_S)
    assert [e.kind for e in got if isinstance(e, PointerEvent)] == ["press", "release"]
    assert recording_threads() == []
    assert all(not tap.valid for tap in mac.created_taps)
    await source.stop()  # a second stop is harmless


async def test_stop_before_start_yields_nothing(mac: FakeMac) -> None:
    source = MacEventSource(PyObjCAx())
    await source.stop()
    assert [event async for event in source.events()] == []
    assert mac.created_taps == []


def test_the_doctor_says_recording_needs_input_monitoring(mac: FakeMac, tmp_path: Path) -> None:
    from deskloop.screen.doctor import macos_checks

    mac.input_monitoring = False
    check = next(c for c in macos_checks(PyObjCAx(), tmp_path / "marker").checks
                 if c.name == "input monitoring")
    assert check.status == "warn" and "deskloop record" in check.detail
    assert "System Settings > Privacy & Security > Input Monitoring" in check.fix


async def test_a_stop_while_starting_leaves_nothing_running(mac: FakeMac, editor: Editor) -> None:
    source = MacEventSource(PyObjCAx())
    await asyncio.gather(source.start(), source.stop())
    assert recording_threads() == []
    assert [event async for event in source.events()] == []
