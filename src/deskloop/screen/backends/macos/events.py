"""What a person does on a Mac, as recording events: listen-only event taps for the pointer
and keys, and an AXObserver per app for what the apps say changed.

Three places, so that recording never slows the desktop down:
- a listener thread turns its own CFRunLoop, where the taps' and observers' sources live
  (asyncio never runs a run loop, and the main one belongs to whoever owns the process);
  its callbacks only copy a few numbers out of the event and enqueue them;
- an event-building thread looks each one up through AX (the element under the pointer at the
  press, read once, not at the release), in the order they came;
- the asyncio side reads the finished events from a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from deskloop.screen.backends.macos.ax import (
    AX_API_DISABLED,
    AX_SUCCESS,
    KEY_CODES,
    PyObjCAx,
    describe_ax_error,
)
from deskloop.screen.backends.macos.facts import Describer
from deskloop.screen.errors import ScreenUnavailableError
from deskloop.screen.recording_events import (
    ElementEvent,
    ElementEventKind,
    ElementFacts,
    KeyEvent,
    PointerEvent,
    RecordedEvent,
)

log = logging.getLogger(__name__)

ACCESSIBILITY_PANE = "System Settings > Privacy & Security > Accessibility"
INPUT_MONITORING_PANE = "System Settings > Privacy & Security > Input Monitoring"
NOTIFICATIONS = (
    "AXFocusedUIElementChanged", "AXValueChanged", "AXSelectedChildrenChanged",
    "AXSelectedRowsChanged", "AXFocusedWindowChanged", "AXWindowCreated",
    "AXMenuItemSelected", "AXApplicationActivated",
)
# One run loop turn (s): how soon stop() and newly started apps are noticed.
TURN_S = 0.2
# How often the listener looks for apps started since (s).
SCAN_S = 1.0
# Selected items described per selection change, at most (a select-all says little more).
SELECTED_LIMIT = 5
# How long stop() waits for each thread (s).
JOIN_S = 2.0
# Special keys by virtual key code, named as X keysyms are (the Linux recorder's names).
SPECIAL_KEYS = {
    0x24: "Return", 0x4C: "KP_Enter", 0x30: "Tab", 0x31: "space", 0x33: "BackSpace",
    0x75: "Delete", 0x35: "Escape", 0x72: "Help", 0x73: "Home", 0x77: "End",
    0x74: "Page_Up", 0x79: "Page_Down", 0x7B: "Left", 0x7C: "Right", 0x7D: "Down", 0x7E: "Up",
}
KEY_NAMES = {
    **{code: name for name, code in KEY_CODES.items() if len(name) == 1},
    **{code: name.upper() for name, code in KEY_CODES.items() if name[0] == "f" and name[1:].isdigit()},
    **SPECIAL_KEYS,
}
# Flag masks by modifier name (CGEventTypes.h); Command is "super", as the Linux recorder and replay's
# combos call it. Arrows and F-keys carry the SecondaryFn flag unpressed: fn is left out.
MODIFIER_MASKS = {"shift": 1 << 17, "ctrl": 1 << 18, "alt": 1 << 19, "super": 1 << 20}
BUTTONS = {0: 1, 1: 3, 2: 2}  # CG button number -> X button (left 1, middle 2, right 3)
# Private-use characters macOS puts in arrow and function key events (NSUpArrowFunctionKey...).
FUNCTION_KEY_TEXT = range(0xF700, 0xF900)


@dataclass(frozen=True)
class _Pointer:
    down: bool
    x: float
    y: float
    button: int
    time: float


@dataclass(frozen=True)
class _Key:
    keycode: int
    flags: int
    text: str
    time: float


@dataclass(frozen=True)
class _Notice:
    name: str
    element: Any
    pid: int
    time: float


_Raw = _Pointer | _Key | _Notice
# What the listener hands the describer: input, notices, a failure to pass on, or the end.
_Inbox = queue.SimpleQueue[_Raw | ScreenUnavailableError | None]


def permission_error(missing: list[str]) -> ScreenUnavailableError:
    panes = {"Accessibility": ACCESSIBILITY_PANE, "Input Monitoring": INPUT_MONITORING_PANE}
    why = {
        "Accessibility": "to read what was clicked and what changed",
        "Input Monitoring": "to hear the keys typed",
    }
    parts = [f"{name} {why[name]} (open {panes[name]})" for name in missing]
    return ScreenUnavailableError(
        "recording on macOS needs " + " and ".join(parts) + ": turn on deskloop (or the "
        "terminal app that runs it) there, then quit and reopen it"
    )


class _Listener(threading.Thread):
    """Owns a run loop with the taps and the observers; its callbacks only enqueue."""

    def __init__(self, api: PyObjCAx, app: str | None, inbox: _Inbox) -> None:
        super().__init__(name="deskloop-mac-recording", daemon=True)
        self.api, self.app, self.inbox = api, app, inbox
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.error: Exception | None = None
        self.loop: Any = None
        self.taps: list[Any] = []
        self.sources: list[Any] = []
        # Observers and their callbacks, kept alive here: pyobjc holds only what we hold.
        self.observers: dict[int, tuple[Any, Callable[..., None]]] = {}

    def run(self) -> None:
        q = self.api.quartz
        try:
            self.loop = q.CFRunLoopGetCurrent()
            self._start()
        except Exception as exc:
            self.error = exc
            self._close()
            self.ready.set()
            return
        self.ready.set()
        last_scan = time.monotonic()
        while not self.stopping.is_set():
            q.CFRunLoopRunInMode(q.kCFRunLoopDefaultMode, TURN_S, False)
            if time.monotonic() - last_scan >= SCAN_S:
                last_scan = time.monotonic()
                try:
                    self._observe_apps(self._window_owner_pids())
                except ScreenUnavailableError as exc:  # Accessibility was switched off
                    self.inbox.put(exc)
                    break
        self._close()

    def _start(self) -> None:
        q = self.api.quartz
        missing = []
        system = self.api.ax.AXUIElementCreateSystemWide()
        if self.api.copy_attribute(system, "AXFocusedApplication")[0] == AX_API_DISABLED:
            missing.append("Accessibility")
        mouse = 0
        for kind in ("LeftMouseDown", "LeftMouseUp", "RightMouseDown", "RightMouseUp",
                     "OtherMouseDown", "OtherMouseUp"):
            mouse |= q.CGEventMaskBit(getattr(q, f"kCGEvent{kind}"))
        # Keys get their own tap: macOS would quietly drop refused key bits from a shared
        # mask and deliver the clicks alone; a keys-only tap comes back None instead.
        keys = q.CGEventMaskBit(q.kCGEventKeyDown)
        for mask, needs in ((keys, "Input Monitoring"), (mouse, "")):
            tap = q.CGEventTapCreate(q.kCGSessionEventTap, q.kCGHeadInsertEventTap,
                                     q.kCGEventTapOptionListenOnly, mask, self._on_input, None)
            if tap is None:
                if needs:
                    missing.append(needs)
                    continue
                raise ScreenUnavailableError("macOS refused to create a mouse event tap")
            self.taps.append(tap)
        if missing:
            raise permission_error(missing)
        # Before the taps' sources join this run loop: off the main thread `running_apps`
        # turns the current thread's run loop, which would run their callbacks in here.
        pids = [pid for name, pid in self.api.running_apps() if self._wanted(name)]
        for tap in self.taps:
            source = q.CFMachPortCreateRunLoopSource(None, tap, 0)
            q.CFRunLoopAddSource(self.loop, source, q.kCFRunLoopDefaultMode)
            self.sources.append(source)
            q.CGEventTapEnable(tap, True)
        self._observe_apps(pids)

    def _wanted(self, name: str) -> bool:
        return self.app is None or self.app.lower() in name.lower()

    def _window_owner_pids(self) -> list[int]:
        # Asked of the window server: NSWorkspace's list lags without the main run loop.
        owners = self.api._window_owners()
        return [pid for name, pid in owners if pid not in self.observers and self._wanted(name)]

    def _observe_apps(self, pids: list[int]) -> None:
        for pid in pids:
            if pid not in self.observers:
                self._observe(pid)

    def _observe(self, pid: int) -> None:
        ax, q = self.api.ax, self.api.quartz

        def on_notice(observer: Any, element: Any, name: Any, refcon: Any) -> None:
            self.inbox.put(_Notice(str(name), element, pid, time.monotonic()))

        error, observer = ax.AXObserverCreate(pid, on_notice, None)
        if error != AX_SUCCESS or observer is None:
            log.debug("no observer for pid %s: %s", pid, describe_ax_error(int(error)))
            return
        app = self.api.application(pid)
        for name in NOTIFICATIONS:
            error = ax.AXObserverAddNotification(observer, app, name, None)
            if error == AX_API_DISABLED:
                raise permission_error(["Accessibility"])
            if error != AX_SUCCESS:  # an app without accessibility, or one that has quit
                log.debug("pid %s: %s not observed: %s", pid, name, describe_ax_error(int(error)))
        q.CFRunLoopAddSource(self.loop, ax.AXObserverGetRunLoopSource(observer),
                             q.kCFRunLoopDefaultMode)
        self.observers[pid] = (observer, on_notice)

    def _on_input(self, proxy: Any, kind: int, event: Any, refcon: Any) -> Any:
        q = self.api.quartz
        now = time.monotonic()
        if kind in (q.kCGEventTapDisabledByTimeout, q.kCGEventTapDisabledByUserInput):
            # macOS switches a tap off when its thread falls behind: switch it back on.
            for tap in self.taps:
                q.CGEventTapEnable(tap, True)
            return event
        if kind == q.kCGEventKeyDown:
            _, text = q.CGEventKeyboardGetUnicodeString(event, 8, None, None)
            keycode = q.CGEventGetIntegerValueField(event, q.kCGKeyboardEventKeycode)
            self.inbox.put(_Key(int(keycode), int(q.CGEventGetFlags(event)), str(text or ""), now))
            return event
        where = q.CGEventGetLocation(event)
        button = int(q.CGEventGetIntegerValueField(event, q.kCGMouseEventButtonNumber))
        down = kind in (q.kCGEventLeftMouseDown, q.kCGEventRightMouseDown, q.kCGEventOtherMouseDown)
        self.inbox.put(_Pointer(down, float(where.x), float(where.y), button, now))
        return event

    def stop(self) -> None:
        self.stopping.set()
        if self.loop is not None:
            self.api.quartz.CFRunLoopStop(self.loop)

    def _close(self) -> None:
        q = self.api.quartz
        for tap in self.taps:
            q.CGEventTapEnable(tap, False)
            q.CFMachPortInvalidate(tap)
        for source in self.sources:
            q.CFRunLoopRemoveSource(self.loop, source, q.kCFRunLoopDefaultMode)
        for observer, _ in self.observers.values():
            q.CFRunLoopRemoveSource(self.loop, self.api.ax.AXObserverGetRunLoopSource(observer),
                                    q.kCFRunLoopDefaultMode)
        self.taps, self.sources = [], []
        self.observers.clear()


def key_event(raw: _Key, secret: bool) -> KeyEvent:
    """A key down as the recorder's `KeyEvent`; in a secret field, what it typed is withheld."""
    modifiers = frozenset(name for name, mask in MODIFIER_MASKS.items() if raw.flags & mask)
    key = KEY_NAMES.get(raw.keycode, f"keycode{raw.keycode}")
    typing = not modifiers & {"ctrl", "super"}  # Option types characters on a Mac
    text = raw.text if typing and all(
        character.isprintable() and ord(character) not in FUNCTION_KEY_TEXT for character in raw.text
    ) else ""
    if secret and (text or len(key) == 1):
        return KeyEvent("", modifiers - {"shift"}, raw.time, "", secret=True)
    return KeyEvent(key, modifiers, raw.time, text)


def text_changes(before: str, after: str) -> list[tuple[ElementEventKind, str]]:
    """What was deleted, then inserted, between two values (a replaced selection is both)."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    changes: list[tuple[ElementEventKind, str]] = []
    if before[start:len(before) - end]:
        changes.append(("text_deleted", before[start:len(before) - end]))
    if after[start:len(after) - end]:
        changes.append(("text_inserted", after[start:len(after) - end]))
    return changes


class _EventBuilder(threading.Thread):
    """Turns raw input and notices into events, in the order they came."""

    def __init__(self, api: PyObjCAx, inbox: _Inbox,
                 deliver: Callable[[RecordedEvent | ScreenUnavailableError], None]) -> None:
        super().__init__(name="deskloop-mac-events", daemon=True)
        self.api, self.inbox, self.deliver = api, inbox, deliver
        self.describer = Describer(api)
        self.pressed: dict[int, ElementFacts | None] = {}
        self.values: dict[tuple[int, str], str] = {}  # last value seen, by element
        self.secret_focus = False

    def run(self) -> None:
        while True:
            raw = self.inbox.get()
            if raw is None:
                return
            if isinstance(raw, ScreenUnavailableError):
                self.deliver(raw)
                continue
            try:
                for event in self.describe(raw):
                    self.deliver(event)
            except Exception:  # one element that answers oddly must not end the recording
                log.warning("could not describe %s", type(raw).__name__, exc_info=True)

    def describe(self, raw: _Raw) -> list[RecordedEvent]:
        if isinstance(raw, _Pointer):
            return [self._pointer(raw)]
        if isinstance(raw, _Key):
            secret = self.secret_focus or self.describer.focused_is_secret()
            return [key_event(raw, secret)]
        return self._notice(raw)

    def _pointer(self, raw: _Pointer) -> PointerEvent:
        button = BUTTONS.get(raw.button, raw.button + 1)
        x, y = round(raw.x), round(raw.y)
        if not raw.down:
            return PointerEvent("release", x, y, button, raw.time, self.pressed.pop(button, None))
        element = self.describer.element_at(raw.x, raw.y)
        facts = self.describer.facts(element) if element is not None else None
        if facts is not None:
            self._remember(element, facts)
        self.pressed[button] = facts
        return PointerEvent("press", x, y, button, raw.time, facts)

    def _key(self, element: Any, pid: int) -> tuple[int, str]:
        return pid, self.api.element_key(element)

    def _remember(self, element: Any, facts: ElementFacts) -> None:
        if facts.value is not None and not facts.secret:
            self.values[self._key(element, facts.pid)] = facts.value

    def _notice(self, raw: _Notice) -> list[RecordedEvent]:
        element = raw.element
        if raw.name == "AXApplicationActivated":
            element = self.api.copy_attribute(element, "AXFocusedWindow")[1]
            if element is None:
                return []
        facts = self.describer.facts(element)
        if facts is None:
            return []

        def event(kind: ElementEventKind, detail: str = "") -> ElementEvent:
            return ElementEvent(kind, facts, raw.time, detail)

        name = raw.name
        if name == "AXFocusedUIElementChanged":
            self.secret_focus = facts.secret
            self._remember(element, facts)
            return [event("focused")]
        if name in ("AXFocusedWindowChanged", "AXApplicationActivated"):
            return [event("window_activated")]
        if name == "AXWindowCreated":
            return [event("window_opened")]
        if name == "AXMenuItemSelected":
            return [event("menu_chosen")]
        if name in ("AXSelectedChildrenChanged", "AXSelectedRowsChanged"):
            # Said of the list (or the menu, as its highlight moves): each selected item is
            # "selected", as AT-SPI says of the row itself.
            chosen = [f for f in map(self.describer.facts, self._selected(element)) if f]
            found: list[RecordedEvent] = [ElementEvent("selected", f, raw.time) for f in chosen]
            if facts.role not in ("menu", "menubar"):
                found.append(event("selection_changed", ", ".join(f.name for f in chosen if f.name)))
            return found
        if name == "AXValueChanged":
            return [event(kind, detail) for kind, detail in self._value_change(element, facts)]
        return []

    def _selected(self, element: Any) -> list[Any]:
        for attribute in ("AXSelectedChildren", "AXSelectedRows"):
            error, selected = self.api.copy_attribute(element, attribute)
            if error == AX_SUCCESS and selected:
                return list(selected)[:SELECTED_LIMIT]
        return []

    def _value_change(self, element: Any, facts: ElementFacts) -> list[tuple[ElementEventKind, str]]:
        if facts.secret:
            return [("text_inserted", "")]  # that something was typed, never what
        if facts.role in ("check", "radio", "switch"):
            return [("checked" if "checked" in facts.states else "unchecked", "")]
        if facts.role == "tab":
            return [("selected" if "checked" in facts.states else "unselected", "")]
        if facts.role == "entry" or (facts.role == "combo" and facts.value is not None):
            key = self._key(element, facts.pid)
            before, after = self.values.get(key, ""), facts.value or ""
            self.values[key] = after
            return text_changes(before, after)
        return []  # sliders and other values: no step is recorded from them


class MacEventSource:
    """The macOS `EventSource`: listens from the first `events()` (or `start()`) to `stop()`."""

    def __init__(self, api: PyObjCAx, app: str | None = None) -> None:
        self.api, self.app = api, app
        self._inbox: _Inbox = queue.SimpleQueue()
        self._queue: asyncio.Queue[RecordedEvent | ScreenUnavailableError | None] | None = None
        self._listener: _Listener | None = None
        self._builder: _EventBuilder | None = None
        self._stopped = False
        self._starting = asyncio.Lock()  # start() and stop() one at a time

    async def start(self) -> None:
        """Start listening; raises `ScreenUnavailableError` naming the missing permission."""
        async with self._starting:
            if self._queue is None and not self._stopped:
                await self._start()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[RecordedEvent | ScreenUnavailableError | None] = asyncio.Queue()

        def deliver(event: RecordedEvent | ScreenUnavailableError) -> None:
            # RuntimeError: the event loop closed while recording, nobody is left to read it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(events.put_nowait, event)

        listener = _Listener(self.api, self.app, self._inbox)
        listener.start()
        await asyncio.to_thread(listener.ready.wait)
        if listener.error is not None:
            await asyncio.to_thread(listener.join, JOIN_S)
            raise listener.error
        self._listener, self._queue = listener, events
        self._builder = _EventBuilder(self.api, self._inbox, deliver)
        self._builder.start()

    async def events(self) -> AsyncIterator[RecordedEvent]:
        """Events until `stop()`; raises when macOS takes a permission away while recording."""
        await self.start()
        if self._queue is None:
            return
        while (event := await self._queue.get()) is not None:
            if isinstance(event, ScreenUnavailableError):
                raise event
            yield event

    async def stop(self) -> None:
        async with self._starting:
            if not self._stopped:
                self._stopped = True
                await self._stop()

    async def _stop(self) -> None:
        if self._listener is None or self._builder is None or self._queue is None:
            return
        self._listener.stop()
        await asyncio.to_thread(self._listener.join, JOIN_S)
        self._inbox.put(None)  # after what the listener heard last
        await asyncio.to_thread(self._builder.join, JOIN_S)
        self._queue.put_nowait(None)


def macos_event_source(app: str | None = None) -> MacEventSource:
    """The recorder's event source on macOS (pyobjc loads here); `app` narrows the observed apps."""
    return MacEventSource(PyObjCAx(), app)
