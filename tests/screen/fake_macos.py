"""A fake Mac for the macOS backend's tests: fake `ApplicationServices`, `Quartz` and `AppKit`
modules over one simulated machine, each call behaving as Apple's documentation says.

`install(monkeypatch)` puts the three modules into `sys.modules`, so `PyObjCAx()` imports
them as it would import pyobjc. What it models:
- NSWorkspace and NSRunningApplication answer from a snapshot that changes only when the
  *main* thread turns its run loop (`CFRunLoopRunInMode`): "this property will only change
  when the main run loop runs in a common mode" (NSWorkspace.runningApplications).
- `CGWindowListCopyWindowInfo` and AX calls answer live, front window first.
- `CGEventKeyboardSetUnicodeString(event, length, text)` keeps the first `length` UTF-16
  units of `text`, so a code-point length cuts an emoji into a lone surrogate.
- `CGWindowListCreateImage` returns backing-resolution pixels (2x) unless asked for
  `kCGWindowImageNominalResolution`; without Screen Recording it shows the wallpaper only.
- AX errors: -25211 (API disabled) without the grant, -25204 (cannot complete) for a stale
  grant or an app without accessibility, -25202 (invalid element) for a pid that has quit.
- `AXUIElementCopyMultipleAttributeValues` hands a CFNull inside its array over as None (as
  pyobjc does), and `CFGetTypeID(None)` fails as CF does on NULL.
- `CGEventTapCreate` clears the event bits the process may not tap (Apple's rule) and returns
  None only when none are left: mouse events need no permission; key events need Input
  Monitoring for a listen-only tap and Accessibility for an active tap (WWDC19 session 701).
- `activateWithOptions_` does nothing from the background on macOS 14 and later.
- Run loops are per thread: a tap's or an AXObserver's run loop source delivers its events
  and notifications only while the thread it was added to turns its run loop
  (`CFRunLoopRunInMode` runs until its timeout unless told to return after a source, and
  returns kCFRunLoopRunStopped after `CFRunLoopStop`, kCFRunLoopRunFinished with no sources).
- A tap sees input only once enabled; macOS disables a tap whose callback is too slow and
  tells the callback so with kCGEventTapDisabledByTimeout.
- AXObserver: notifications registered on an application element arrive for all of its
  elements; registering needs the Accessibility grant (-25211 without), an unknown
  notification is -25207, a second registration -25209.
- `AXUIElementCopyElementAtPosition` hit-tests the frontmost window at the point and returns
  the deepest element there (a check box's label text, not the check box).
"""

from __future__ import annotations

import io
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

AX_CODES = {
    "success": 0, "failure": -25200, "invalid": -25202, "cannot_complete": -25204,
    "unsupported": -25205, "not_implemented": -25208, "api_disabled": -25211,
    "no_value": -25212,
}
CFNULL = object()  # marks an attribute whose value is kCFNull

# Event types and flags (CGEventTypes.h).
KEY_DOWN, KEY_UP, FLAGS_CHANGED, MOUSE_MOVED = 10, 11, 12, 5
KEY_EVENT_BITS = (1 << KEY_DOWN) | (1 << KEY_UP) | (1 << FLAGS_CHANGED)
TAP_DEFAULT, TAP_LISTEN_ONLY = 0, 1
TAP_DISABLED_BY_TIMEOUT = 0xFFFFFFFE
MOUSE_TYPES = {"left": (1, 2, 0), "right": (3, 4, 1), "middle": (25, 26, 2)}  # down, up, button
# The notifications an application element accepts (AXNotificationConstants.h).
AX_NOTIFICATIONS = frozenset({
    "AXFocusedUIElementChanged", "AXValueChanged", "AXSelectedChildrenChanged",
    "AXSelectedRowsChanged", "AXFocusedWindowChanged", "AXWindowCreated",
    "AXMenuItemSelected", "AXApplicationActivated", "AXTitleChanged", "AXUIElementDestroyed",
})
NOMINAL_RESOLUTION = 1 << 4


@dataclass(eq=False)
class Node:
    """One AX element of a window: attributes by name, children in order."""

    attributes: dict[str, Any]
    children: list[Node] = field(default_factory=list)


@dataclass(eq=False)
class Window:
    title: str
    box: tuple[int, int, int, int]
    node: Node | None = None
    layer: int = 0

    def __post_init__(self) -> None:
        if self.node is None:
            x, y, width, height = self.box
            self.node = Node({"AXRole": "AXWindow", "AXTitle": self.title,
                              "AXPosition": (x, y), "AXSize": (width, height)})


@dataclass(eq=False)
class App:
    name: str
    pid: int
    bundle_id: str = ""
    windows: list[Window] = field(default_factory=list)
    regular: bool = True
    ax_error: int | None = None  # what every AX call to this app answers (no accessibility)


@dataclass(frozen=True)
class Rect:
    """A CGRect; pyobjc's has `.origin.x` and `.size.width`."""

    x: float
    y: float
    width: float
    height: float

    @property
    def origin(self) -> Point:
        return Point(self.x, self.y)

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)


INFINITE = Rect(float("-inf"), float("-inf"), float("inf"), float("inf"))


@dataclass
class Event:
    kind: str
    keycode: int = 0
    down: bool = True
    flags: int = 0
    text: str | None = None
    location: tuple[float, float] = (0.0, 0.0)
    button: int = 0


class Source:
    """A CFRunLoopSource: work waiting for the run loop it was added to to turn."""

    def __init__(self) -> None:
        self.pending: deque[Callable[[], Any]] = deque()


class RunLoop:
    """One thread's CFRunLoop: its sources (with their modes), and a pending stop."""

    def __init__(self) -> None:
        self.sources: list[tuple[Source, str]] = []
        self.stopped = False


@dataclass(eq=False)
class Tap:
    """A CFMachPort of CGEventTapCreate; `mask` holds the event bits macOS let it keep."""

    options: int
    mask: int
    callback: Any
    enabled: bool = False
    valid: bool = True
    source: Source | None = None


@dataclass(eq=False)
class Observer:
    """An AXObserverRef: the (element, notification) pairs it registered, and its source."""

    pid: int
    callback: Any
    registered: set[tuple[Any, str]] = field(default_factory=set)
    source: Source = field(default_factory=Source)


@dataclass(frozen=True)
class AXValue:
    kind: int
    value: Any


@dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True)
class Size:
    width: float
    height: float


@dataclass(frozen=True)
class Element:
    """An AXUIElementRef: the system-wide element, an application, or a node of a window."""

    kind: str  # "system", "app", "node"
    pid: int = 0
    node: Node | None = None


class FakeMac:
    """One simulated Mac; `modules()` gives the pyobjc modules that talk to it."""

    def __init__(self) -> None:
        self.apps: dict[int, App] = {}
        self.frontmost: int | None = None
        # Accessibility: the live permission database (TCC), this process's cached trust flag
        # (AXIsProcessTrusted), and what AX calls answer ("ok", or an error name).
        self.accessibility_granted = True
        self.trust_flag = True
        self.ax_calls = "ok"
        self.input_monitoring = False
        self.screen_recording = True
        self.macos_major = 15
        self.backing_scale = 2
        # The main display is at (0, 0) by definition; a second one sits to its left.
        self.displays = [Rect(0, 0, 1440, 900), Rect(-1920, -180, 1920, 1080)]
        self.typed: list[str] = []
        self.keys: list[tuple[int, int]] = []  # (keycode, flags) of each key down
        self.taps: list[tuple[int, int, bool]] = []  # (options, mask, created)
        self.system_notifications: list[str] = []
        # Recording: run loops by thread, created taps and observers, the focused element.
        self.wake = threading.Condition()
        self.run_loops: dict[int, RunLoop] = {}
        self.created_taps: list[Tap] = []
        self.observers: list[Observer] = []
        self.focused: Element | None = None
        self._workspace: list[App] = []
        self._workspace_front: int | None = None
        self._pending = False
        self.add_app(App("Finder", 1, "com.apple.finder", [Window("Documents", (40, 60, 800, 500))]))
        self.turn_run_loop()

    # -- the machine ---------------------------------------------------------------------

    def add_app(self, app: App, front: bool = True) -> App:
        """An app starts: live sources see it now, NSWorkspace after a run loop turn."""
        self.apps[app.pid] = app
        if front:
            self.frontmost = app.pid
        self._pending = True
        return app

    def quit_app(self, pid: int) -> None:
        del self.apps[pid]
        if self.frontmost == pid:
            self.frontmost = None
        self._pending = True

    def turn_run_loop(self) -> None:
        self._workspace = list(self.apps.values())
        self._workspace_front = self.frontmost
        self._pending = False

    def set_permission(self, state: str) -> None:
        """Set (live grant, cached trust flag, what AX calls answer) to a named state."""
        self.accessibility_granted, self.trust_flag, self.ax_calls = {
            "never": (False, False, "api_disabled"),
            "granted": (True, True, "ok"),
            # Granted after this process started: its cached flag still says no (the
            # request_permission flow).
            "granted_now": (True, False, "ok"),
            # Granted, but this process cannot use it (after an OS update or a re-sign):
            # the seed article's stale cache, flag yes and calls failing, or flag no.
            "stale": (True, True, "cannot_complete"),
            "stale_flag_no": (True, False, "api_disabled"),
            # Switched off in System Settings after it worked.
            "revoked": (False, True, "api_disabled"),
            "revoked_flag_no": (False, False, "api_disabled"),
        }[state]

    # -- a person at the Mac (recording) -------------------------------------------------

    def press(self, x: float, y: float, button: str = "left") -> None:
        self._input(Event("mouse", location=(x, y), button=MOUSE_TYPES[button][2]),
                    MOUSE_TYPES[button][0])

    def release(self, x: float, y: float, button: str = "left") -> None:
        self._input(Event("mouse", down=False, location=(x, y), button=MOUSE_TYPES[button][2]),
                    MOUSE_TYPES[button][1])

    def type_key(self, keycode: int, text: str = "", flags: int = 0) -> None:
        """One key down and up, as the keyboard sends it (flags: kCGEventFlagMask* bits)."""
        self._input(Event("key", keycode, True, flags, text), KEY_DOWN)
        self._input(Event("key", keycode, False, flags, text), KEY_UP)

    def _input(self, event: Event, kind: int) -> None:
        with self.wake:
            for tap in self.created_taps:
                if tap.valid and tap.enabled and tap.mask & (1 << kind) and tap.source:
                    tap.source.pending.append(_tap_call(tap, kind, event))
            self.wake.notify_all()

    def time_out_taps(self) -> None:
        """macOS disables taps whose callbacks were too slow, and says so to each."""
        with self.wake:
            for tap in self.created_taps:
                if tap.valid and tap.enabled and tap.source:
                    tap.enabled = False
                    tap.source.pending.append(_tap_call(tap, TAP_DISABLED_BY_TIMEOUT, None))
            self.wake.notify_all()

    def notify(self, node: Node | None, name: str, pid: int | None = None) -> None:
        """The app posts `name` for `node` (None: the application element itself)."""
        pid = pid if pid is not None else self.owner_of(node)
        element = Element("node", pid, node) if node is not None else Element("app", pid)
        with self.wake:
            for observer in self.observers:
                wanted = {(Element("app", pid), name), (element, name)}
                if observer.pid == pid and observer.registered & wanted:
                    observer.source.pending.append(_observer_call(observer, element, name))
            self.wake.notify_all()

    def set_value(self, node: Node, value: Any) -> None:
        node.attributes["AXValue"] = value
        self.notify(node, "AXValueChanged")

    def focus(self, node: Node) -> None:
        pid = self.owner_of(node)
        if self.focused is not None and self.focused.node is not None:
            self.focused.node.attributes["AXFocused"] = False
        node.attributes["AXFocused"] = True
        self.focused = Element("node", pid, node)
        self.notify(node, "AXFocusedUIElementChanged")

    def owner_of(self, node: Node | None) -> int:
        for app in self.apps.values():
            for window in app.windows:
                if window.node is not None and _path_to(window.node, node):
                    return app.pid
        raise KeyError("no app shows this node")

    def parent_of(self, element: Element) -> Element | None:
        app = self.apps.get(element.pid)
        if app is None or element.node is None:
            return None
        for window in app.windows:
            assert window.node is not None
            path = _path_to(window.node, element.node)
            if path:
                return Element("node", app.pid, path[-2]) if len(path) > 1 else Element("app", app.pid)
        return None

    def element_at(self, x: float, y: float) -> Element | None:
        """The deepest element under (x, y) in the frontmost window there."""
        order = sorted(self.apps.values(), key=lambda app: app.pid != self.frontmost)
        for app in order:
            for window in app.windows:
                assert window.node is not None
                if _contains(window.node, x, y):
                    node = window.node
                    while True:
                        inner = [child for child in node.children if _contains(child, x, y)]
                        if not inner:
                            return Element("node", app.pid, node)
                        node = inner[-1]  # the last child is drawn on top
        return None

    def modules(self) -> dict[str, types.ModuleType]:
        return {
            "ApplicationServices": _module("ApplicationServices", ApplicationServicesCalls(self)),
            "Quartz": _module("Quartz", QuartzCalls(self)),
            "AppKit": _module("AppKit", AppKitCalls(self)),
        }

    # -- AX ------------------------------------------------------------------------------

    def ax_answer(self, element: Element, name: str) -> tuple[int, Any]:
        if self.ax_calls != "ok":
            return AX_CODES[self.ax_calls], None
        if element.kind == "system":
            if name == "AXFocusedApplication":
                if self.frontmost is None:
                    return AX_CODES["no_value"], None
                return 0, Element("app", self.frontmost)
            if name == "AXFocusedUIElement":
                return (0, self.focused) if self.focused else (AX_CODES["no_value"], None)
            return AX_CODES["unsupported"], None
        if element.kind == "app":
            app = self.apps.get(element.pid)
            if app is None:
                return AX_CODES["invalid"], None
            if app.ax_error is not None:
                return app.ax_error, None
            if name in ("AXFocusedWindow", "AXMainWindow"):
                if not app.windows:
                    return AX_CODES["no_value"], None
                return 0, Element("node", app.pid, app.windows[0].node)
            if name == "AXWindows":
                return 0, [Element("node", app.pid, w.node) for w in app.windows]
            if name == "AXFrontmost":
                return 0, self.frontmost == app.pid
            if name == "AXTitle":
                return 0, app.name
            if name == "AXFocusedUIElement" and self.focused and self.focused.pid == app.pid:
                return 0, self.focused
            return AX_CODES["unsupported"], None
        assert element.node is not None
        data = _node_data(element, self)
        if name not in data:
            return AX_CODES["no_value"], None
        value = data[name]
        return 0, None if value is CFNULL else _ax_wrapped(name, value)


def _node_data(element: Element, mac: FakeMac) -> dict[str, Any]:
    assert element.node is not None
    children = [Element("node", element.pid, child) for child in element.node.children]
    data = {**element.node.attributes, "AXChildren": children}
    parent = mac.parent_of(element)
    if parent is not None:
        data["AXParent"] = parent
    return data


def _path_to(top: Node, node: Node | None) -> list[Node]:
    """The nodes from `top` down to `node`, both included; [] when `node` is not under it."""
    if top is node:
        return [top]
    for child in top.children:
        below = _path_to(child, node)
        if below:
            return [top, *below]
    return []


def _contains(node: Node, x: float, y: float) -> bool:
    position, size = node.attributes.get("AXPosition"), node.attributes.get("AXSize")
    if position is None or size is None:
        return False
    return bool(position[0] <= x < position[0] + size[0] and position[1] <= y < position[1] + size[1])


def _tap_call(tap: Tap, kind: int, event: Event | None) -> Callable[[], Any]:
    return lambda: tap.callback(None, kind, event, None)


def _observer_call(observer: Observer, element: Element, name: str) -> Callable[[], Any]:
    return lambda: observer.callback(observer, element, name, None)


def _ax_wrapped(name: str, value: Any) -> Any:
    if name == "AXPosition":
        return AXValue(1, Point(*value))
    if name == "AXSize":
        return AXValue(2, Size(*value))
    return value


def _module(name: str, calls: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for attribute in dir(calls):
        if not attribute.startswith("_"):
            setattr(module, attribute, getattr(calls, attribute))
    return module


class ApplicationServicesCalls:
    kAXValueCGPointType = 1
    kAXValueCGSizeType = 2
    kAXValueAXErrorType = 5

    def __init__(self, mac: FakeMac) -> None:
        self._mac = mac

    def AXIsProcessTrusted(self) -> bool:
        return self._mac.trust_flag

    def AXUIElementCreateApplication(self, pid: int) -> Element:
        return Element("app", pid)

    def AXUIElementCreateSystemWide(self) -> Element:
        return Element("system")

    def AXUIElementSetMessagingTimeout(self, element: Element, seconds: float) -> int:
        return 0

    def AXUIElementGetPid(self, element: Element, out: None) -> tuple[int, int]:
        return 0, element.pid

    def AXUIElementCopyAttributeValue(self, element: Element, name: str, out: None) -> tuple[int, Any]:
        return self._mac.ax_answer(element, name)

    def AXUIElementCopyMultipleAttributeValues(
        self, element: Element, names: list[str], options: int, out: None
    ) -> tuple[int, list[Any] | None]:
        if self._mac.ax_calls != "ok":
            return AX_CODES[self._mac.ax_calls], None
        if element.kind != "node":
            return AX_CODES["unsupported"], None
        data = _node_data(element, self._mac)
        values: list[Any] = []
        for name in names:
            if name not in data:
                values.append(AXValue(self.kAXValueAXErrorType, AX_CODES["no_value"]))
            elif data[name] is CFNULL:
                values.append(None)  # pyobjc's bridge of kCFNull
            else:
                values.append(_ax_wrapped(name, data[name]))
        return 0, values

    def AXUIElementPerformAction(self, element: Element, action: str) -> int:
        if self._mac.ax_calls != "ok":
            return AX_CODES[self._mac.ax_calls]
        return 0

    def AXUIElementSetAttributeValue(self, element: Element, name: str, value: Any) -> int:
        if self._mac.ax_calls != "ok":
            return AX_CODES[self._mac.ax_calls]
        if element.kind == "app" and name == "AXFrontmost":
            if element.pid not in self._mac.apps:
                return AX_CODES["invalid"]
            if value:
                self._mac.frontmost = element.pid
            return 0
        if element.kind == "node" and element.node is not None:
            element.node.attributes[name] = value
            return 0
        return AX_CODES["unsupported"]

    def AXUIElementCopyElementAtPosition(
        self, element: Element, x: float, y: float, out: None
    ) -> tuple[int, Element | None]:
        mac = self._mac
        if mac.ax_calls != "ok":
            return AX_CODES[mac.ax_calls], None
        found = mac.element_at(x, y)
        if found is None or (element.kind == "app" and found.pid != element.pid):
            return AX_CODES["no_value"], None
        return 0, found

    def AXObserverCreate(self, pid: int, callback: Any, out: None) -> tuple[int, Observer | None]:
        if pid not in self._mac.apps:
            return AX_CODES["invalid"], None
        observer = Observer(pid, callback)
        self._mac.observers.append(observer)
        return 0, observer

    def AXObserverAddNotification(self, observer: Observer, element: Element, name: str,
                                  refcon: Any) -> int:
        mac = self._mac
        if mac.ax_calls != "ok":
            return AX_CODES[mac.ax_calls]
        app = mac.apps.get(element.pid)
        if app is None:
            return AX_CODES["invalid"]
        if app.ax_error is not None:
            return app.ax_error
        if name not in AX_NOTIFICATIONS:
            return -25207  # kAXErrorNotificationUnsupported
        if (element, name) in observer.registered:
            return -25209  # kAXErrorNotificationAlreadyRegistered
        observer.registered.add((element, name))
        return 0

    def AXObserverRemoveNotification(self, observer: Observer, element: Element, name: str) -> int:
        if (element, name) not in observer.registered:
            return -25210  # kAXErrorNotificationNotRegistered
        observer.registered.discard((element, name))
        return 0

    def AXObserverGetRunLoopSource(self, observer: Observer) -> Source:
        return observer.source

    def AXValueGetTypeID(self) -> int:
        return 7001

    def AXValueGetType(self, value: AXValue) -> int:
        return value.kind

    def AXValueGetValue(self, value: AXValue, kind: int, out: None) -> tuple[bool, Any]:
        return True, value.value


class QuartzCalls:
    kCGHIDEventTap = 0
    kCGSessionEventTap = 1
    kCGHeadInsertEventTap = 0
    kCGEventTapOptionDefault = TAP_DEFAULT
    kCGEventTapOptionListenOnly = TAP_LISTEN_ONLY
    kCGEventKeyDown = KEY_DOWN
    kCGEventKeyUp = KEY_UP
    kCGEventFlagsChanged = FLAGS_CHANGED
    kCGEventMouseMoved = MOUSE_MOVED
    kCGEventLeftMouseDown, kCGEventLeftMouseUp = 1, 2
    kCGEventRightMouseDown, kCGEventRightMouseUp = 3, 4
    kCGEventOtherMouseDown, kCGEventOtherMouseUp = 25, 26
    kCGMouseButtonLeft, kCGMouseButtonRight, kCGMouseButtonCenter = 0, 1, 2
    kCGMouseEventClickState = 1
    kCGScrollEventUnitLine = 1
    kCGEventFlagMaskShift = 1 << 17
    kCGEventFlagMaskControl = 1 << 18
    kCGEventFlagMaskAlternate = 1 << 19
    kCGEventFlagMaskCommand = 1 << 20
    kCGEventFlagMaskSecondaryFn = 1 << 23
    kCGWindowListOptionAll = 0
    kCGWindowListOptionOnScreenOnly = 1
    kCGWindowListExcludeDesktopElements = 16
    kCGNullWindowID = 0
    kCGWindowImageDefault = 0
    kCGWindowImageNominalResolution = NOMINAL_RESOLUTION
    kCGWindowOwnerPID = "kCGWindowOwnerPID"
    kCGWindowOwnerName = "kCGWindowOwnerName"
    kCGWindowLayer = "kCGWindowLayer"
    kCGWindowBounds = "kCGWindowBounds"
    kCGWindowNumber = "kCGWindowNumber"
    kCFRunLoopDefaultMode = "kCFRunLoopDefaultMode"
    kCFRunLoopRunFinished, kCFRunLoopRunTimedOut, kCFRunLoopRunHandledSource = 1, 3, 4
    kCFRunLoopRunStopped = 2
    kCFRunLoopCommonModes = "kCFRunLoopCommonModes"
    kCGEventTapDisabledByTimeout = TAP_DISABLED_BY_TIMEOUT
    kCGEventTapDisabledByUserInput = 0xFFFFFFFF
    kCGMouseEventButtonNumber = 3
    kCGKeyboardEventKeycode = 9
    CGRectInfinite = INFINITE

    def __init__(self, mac: FakeMac) -> None:
        self._mac = mac

    # Core Foundation
    def CFGetTypeID(self, value: Any) -> int:
        if value is None:
            raise ValueError("CFGetTypeID(NULL): Core Foundation crashes on a NULL reference")
        return 7001 if isinstance(value, AXValue) else 1

    def CFHash(self, value: Any) -> int:
        return hash(value) & 0xFFFFFFFF

    def CFEqual(self, first: Any, second: Any) -> bool:
        return bool(first == second)

    def CFMachPortInvalidate(self, port: Any) -> None:
        if isinstance(port, Tap):
            port.valid = port.enabled = False

    def CGEventTapEnable(self, port: Any, enable: bool) -> None:
        if isinstance(port, Tap):
            port.enabled = enable and port.valid

    def CGEventTapIsEnabled(self, port: Any) -> bool:
        return isinstance(port, Tap) and port.enabled

    def CFMachPortCreateRunLoopSource(self, allocator: Any, port: Tap, order: int) -> Source:
        port.source = Source()
        return port.source

    def CFRunLoopGetCurrent(self) -> RunLoop:
        with self._mac.wake:
            return self._mac.run_loops.setdefault(threading.get_ident(), RunLoop())

    def CFRunLoopAddSource(self, loop: RunLoop, source: Source, mode: str) -> None:
        with self._mac.wake:
            loop.sources.append((source, mode))
            self._mac.wake.notify_all()

    def CFRunLoopRemoveSource(self, loop: RunLoop, source: Source, mode: str) -> None:
        with self._mac.wake:
            loop.sources = [(s, m) for s, m in loop.sources if (s, m) != (source, mode)]

    def CFRunLoopStop(self, loop: RunLoop) -> None:
        with self._mac.wake:
            loop.stopped = True
            self._mac.wake.notify_all()

    def CFRunLoopWakeUp(self, loop: RunLoop) -> None:
        with self._mac.wake:
            self._mac.wake.notify_all()

    def CFRunLoopRunInMode(self, mode: str, seconds: float, return_after_source: bool) -> int:
        # Each thread has its own run loop; only the main one brings NSWorkspace news.
        mac = self._mac
        main = threading.current_thread() is threading.main_thread()
        if main and mac._pending:
            mac.turn_run_loop()
            return self.kCFRunLoopRunHandledSource
        loop = mac.run_loops.get(threading.get_ident())
        if loop is None or not loop.sources:
            return self.kCFRunLoopRunTimedOut if main else self.kCFRunLoopRunFinished
        deadline = time.monotonic() + seconds
        while True:
            with mac.wake:
                while True:
                    if loop.stopped:
                        loop.stopped = False
                        return self.kCFRunLoopRunStopped
                    ready = [source for source, added in loop.sources if source.pending
                             and added in (mode, self.kCFRunLoopCommonModes)]
                    if ready:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return self.kCFRunLoopRunTimedOut
                    mac.wake.wait(left)
                work = [ready[0].pending.popleft()] if return_after_source else [
                    source.pending.popleft() for source in ready for _ in range(len(source.pending))
                ]
            for call in work:  # callbacks run on this thread, outside the machine's lock
                call()
            if return_after_source:
                return self.kCFRunLoopRunHandledSource

    # Permissions
    def CGPreflightScreenCaptureAccess(self) -> bool:
        return self._mac.screen_recording

    def CGPreflightListenEventAccess(self) -> bool:
        return self._mac.input_monitoring

    def CGEventMaskBit(self, kind: int) -> int:
        return 1 << kind

    def CGEventTapCreate(
        self, location: int, place: int, options: int, mask: int, callback: Any, refcon: Any
    ) -> object | None:
        mac = self._mac
        if options == TAP_DEFAULT:
            keys_allowed = mac.accessibility_granted
        else:
            keys_allowed = mac.input_monitoring or mac.accessibility_granted
        allowed = mask if keys_allowed else mask & ~KEY_EVENT_BITS
        created = allowed != 0
        mac.taps.append((options, mask, created))
        if mask & KEY_EVENT_BITS and not keys_allowed:
            mac.system_notifications.append("deskloop was prevented from monitoring the keyboard")
        if not created:
            return None
        tap = Tap(options, allowed, callback)
        mac.created_taps.append(tap)
        return tap

    # Events
    def CGEventCreateKeyboardEvent(self, source: Any, keycode: int, down: bool) -> Event:
        return Event("key", keycode, down)

    def CGEventKeyboardSetUnicodeString(self, event: Event, length: int, text: str) -> None:
        units = text.encode("utf-16-le", "surrogatepass")[: 2 * length]
        event.text = units.decode("utf-16-le", "surrogatepass")

    def CGEventSetFlags(self, event: Event, flags: int) -> None:
        event.flags = flags

    def CGEventGetFlags(self, event: Event) -> int:
        return event.flags

    def CGEventGetLocation(self, event: Event) -> Point:
        return Point(*event.location)

    def CGEventGetIntegerValueField(self, event: Event, name: int) -> int:
        return {self.kCGKeyboardEventKeycode: event.keycode,
                self.kCGMouseEventButtonNumber: event.button}.get(name, 0)

    def CGEventKeyboardGetUnicodeString(
        self, event: Event, max_length: int, out_length: None, out_text: None
    ) -> tuple[int, str]:
        units = (event.text or "").encode("utf-16-le", "surrogatepass")[: 2 * max_length]
        return len(units) // 2, units.decode("utf-16-le", "surrogatepass")

    def CGEventCreateMouseEvent(self, source: Any, kind: int, where: Any, button: int) -> Event:
        return Event("mouse", kind)

    def CGEventSetIntegerValueField(self, event: Event, name: int, value: int) -> None:
        pass

    def CGEventCreateScrollWheelEvent(self, source: Any, unit: int, count: int, *deltas: int) -> Event:
        return Event("scroll")

    def CGWarpMouseCursorPosition(self, where: Any) -> int:
        return 0

    def CGEventPost(self, location: int, event: Event) -> None:
        if event.kind == "key" and event.down:
            if event.text is not None:
                self._mac.typed.append(event.text)
            else:
                self._mac.keys.append((event.keycode, event.flags))

    # Displays and windows
    def CGRectMake(self, x: float, y: float, width: float, height: float) -> Rect:
        return Rect(x, y, width, height)

    def CGMainDisplayID(self) -> int:
        return 1

    def CGDisplayBounds(self, display: int) -> Rect:
        return self._mac.displays[display - 1]

    def CGWindowListCopyWindowInfo(self, options: int, relative_to: int) -> list[dict[str, Any]]:
        mac = self._mac
        order = sorted(mac.apps.values(), key=lambda app: app.pid != mac.frontmost)
        info = [{"kCGWindowOwnerPID": 0, "kCGWindowOwnerName": "Window Server",
                 "kCGWindowLayer": 25, "kCGWindowNumber": 1,
                 "kCGWindowBounds": {"X": 0, "Y": 0, "Width": 1440, "Height": 24}}]
        for app in order:
            for window in app.windows:
                x, y, width, height = window.box
                info.append({"kCGWindowOwnerPID": app.pid, "kCGWindowOwnerName": app.name,
                             "kCGWindowLayer": window.layer, "kCGWindowNumber": id(window),
                             "kCGWindowBounds": {"X": x, "Y": y, "Width": width, "Height": height}})
        return info

    def CGWindowListCreateImage(self, rect: Rect, options: int, window: int, image_options: int) -> Any:
        mac = self._mac
        if rect == INFINITE:  # the union of all displays, whose corner may be negative
            left = min(d.x for d in mac.displays)
            top = min(d.y for d in mac.displays)
            right = max(d.x + d.width for d in mac.displays)
            bottom = max(d.y + d.height for d in mac.displays)
            rect = Rect(left, top, right - left, bottom - top)
        scale = 1 if image_options & NOMINAL_RESOLUTION else mac.backing_scale
        color = (30, 90, 160) if mac.screen_recording else (0, 0, 0)  # wallpaper only
        return Image.new("RGB", (int(rect.width * scale), int(rect.height * scale)), color)


@dataclass
class RunningApplication:
    """An NSRunningApplication: a snapshot of what NSWorkspace knew at the last run loop turn."""

    _mac: FakeMac
    _app: App

    def localizedName(self) -> str:
        return self._app.name

    def processIdentifier(self) -> int:
        return self._app.pid

    def bundleIdentifier(self) -> str:
        return self._app.bundle_id

    def activationPolicy(self) -> int:
        return 0 if self._app.regular else 2

    def activateWithOptions_(self, options: int) -> bool:
        # macOS 14: cooperative activation; IgnoringOtherApps is deprecated and has no effect,
        # and a background process is not let to take the front.
        if self._mac.macos_major >= 14:
            return False
        self._mac.frontmost = self._app.pid
        return True


class AppKitCalls:
    NSApplicationActivationPolicyRegular = 0
    NSApplicationActivateAllWindows = 1
    NSApplicationActivateIgnoringOtherApps = 2
    NSBitmapImageFileTypePNG = 4

    def __init__(self, mac: FakeMac) -> None:
        self._mac = mac
        mac_ = mac

        class Workspace:
            @staticmethod
            def sharedWorkspace() -> Any:
                return Workspace()

            def runningApplications(self) -> list[RunningApplication]:
                return [RunningApplication(mac_, app) for app in mac_._workspace]

            def frontmostApplication(self) -> RunningApplication | None:
                front = [a for a in mac_._workspace if a.pid == mac_._workspace_front]
                return RunningApplication(mac_, front[0]) if front else None

        class NSRunningApplication:
            @staticmethod
            def runningApplicationsWithBundleIdentifier_(bundle_id: str) -> list[RunningApplication]:
                return [RunningApplication(mac_, a) for a in mac_._workspace
                        if a.bundle_id == bundle_id]

            @staticmethod
            def runningApplicationWithProcessIdentifier_(pid: int) -> RunningApplication | None:
                found = [a for a in mac_._workspace if a.pid == pid]
                return RunningApplication(mac_, found[0]) if found else None

        class BitmapRep:
            def __init__(self, image: Image.Image | None = None) -> None:
                self.image = image

            @staticmethod
            def alloc() -> BitmapRep:
                return BitmapRep()

            def initWithCGImage_(self, image: Image.Image) -> BitmapRep:
                self.image = image
                return self

            def representationUsingType_properties_(self, kind: int, properties: Any) -> bytes:
                assert self.image is not None
                buffer = io.BytesIO()
                self.image.save(buffer, format="PNG")
                return buffer.getvalue()

        class NSNull:
            _null = object()

            @classmethod
            def null(cls) -> object:
                return cls._null

        self.NSWorkspace = Workspace
        self.NSRunningApplication = NSRunningApplication
        self.NSBitmapImageRep = BitmapRep
        self.NSNull = NSNull
        self.NSArray = list


def install(monkeypatch: pytest.MonkeyPatch) -> FakeMac:
    """A fake Mac whose modules stand in for pyobjc's for the rest of the test."""
    mac = FakeMac()
    for name, module in mac.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    return mac
