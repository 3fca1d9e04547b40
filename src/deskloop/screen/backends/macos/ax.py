"""The few AX, CGEvent and AppKit calls the macOS backend makes, behind one small interface.

`PyObjCAx` makes the real calls (pyobjc imported on first use, so this module imports on
Linux); tests run it against a fake Mac (tests/screen/fake_macos.py), and feed recorded
attribute data to the backend through a fake with the same methods as `AxApi`.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any, Protocol

# AXError codes (HIServices/AXError.h).
AX_SUCCESS = 0
AX_FAILURE = -25200
AX_ILLEGAL_ARGUMENT = -25201
AX_INVALID_ELEMENT = -25202
AX_CANNOT_COMPLETE = -25204
AX_ATTRIBUTE_UNSUPPORTED = -25205
AX_ACTION_UNSUPPORTED = -25206
AX_NOT_IMPLEMENTED = -25208
AX_API_DISABLED = -25211
AX_NO_VALUE = -25212
AX_ERROR_NAMES = {
    AX_SUCCESS: "success", AX_FAILURE: "failure", AX_ILLEGAL_ARGUMENT: "illegal argument",
    AX_INVALID_ELEMENT: "invalid element: the app may have quit", -25203: "invalid observer",
    AX_CANNOT_COMPLETE: "cannot complete", AX_ATTRIBUTE_UNSUPPORTED: "attribute unsupported",
    AX_ACTION_UNSUPPORTED: "action unsupported", -25207: "notification unsupported",
    AX_NOT_IMPLEMENTED: "not implemented", AX_API_DISABLED: "API disabled",
    AX_NO_VALUE: "no value", -25213: "parameterized attribute unsupported",
    -25214: "not enough precision",
}

# Per-element messaging timeout: a hung app must not hang the read (seconds).
MESSAGING_TIMEOUT_S = 0.5
# Run loop passes that bring NSWorkspace's queued launch and quit news in, at most.
RUN_LOOP_PASSES = 50
SCREEN_RECORDING_PANE = (
    "System Settings > Privacy & Security > Screen & System Audio Recording (Screen Recording "
    "before macOS 15)"
)


def describe_ax_error(code: int) -> str:
    return f"AXError {code} ({AX_ERROR_NAMES.get(code, 'unknown')})"


class AxApi(Protocol):
    """What the backend needs from macOS; values come back as plain Python data."""

    def is_process_trusted(self) -> bool:
        """`AXIsProcessTrusted()`: this process's cached answer, stale after a re-sign."""
        ...

    def application(self, pid: int) -> Any: ...

    def copy_attribute(self, element: Any, name: str) -> tuple[int, Any]:
        """(AXError, value) of one attribute."""
        ...

    def copy_attributes(self, element: Any, names: list[str]) -> dict[str, Any]:
        """Many attributes in one call (`AXUIElementCopyMultipleAttributeValues`); missing
        and null ones are left out; AXValue points and sizes come back as tuples."""
        ...

    def set_messaging_timeout(self, element: Any, seconds: float) -> None: ...

    def perform_action(self, element: Any, action: str) -> int: ...

    def set_attribute(self, element: Any, name: str, value: Any) -> int: ...

    def element_key(self, element: Any) -> str:
        """A key equal for equal elements (CFHash), used as the element's ref."""
        ...

    def running_apps(self) -> list[tuple[str, int]]:
        """(name, pid) of the apps running now, including those started since the last call."""
        ...

    def frontmost_pid(self) -> int | None: ...

    def finder_pid(self) -> int | None: ...

    def activate(self, pid: int) -> None: ...

    def accessibility_tap_allowed(self) -> bool:
        """Whether the live permission database grants Accessibility (not the cached flag)."""
        ...

    def screen_recording_allowed(self) -> bool: ...

    def input_monitoring_allowed(self) -> bool: ...

    def post_click(self, x: int, y: int, button: str, count: int) -> None: ...

    def post_text(self, text: str) -> None: ...

    def post_keys(self, combo: str) -> None: ...

    def post_scroll(self, x: int, y: int, direction: str, amount: int) -> None: ...

    def screen_box(self) -> tuple[int, int, int, int]:
        """The main display in points; its origin is (0, 0) by definition."""
        ...

    def capture_png(self, box: tuple[int, int, int, int]) -> bytes:
        """A PNG of the box (global points); its pixels may be points or backing pixels."""
        ...


# Virtual key codes (HIToolbox Events.h, kVK_*). Letters, digits and punctuation are the
# keys' positions on the ANSI layout: on another layout the same position may type another
# character (a known limit: layout-aware codes need UCKeyTranslate, which pyobjc lacks).
KEY_CODES = {
    "a": 0x00, "s": 0x01, "d": 0x02, "f": 0x03, "h": 0x04, "g": 0x05, "z": 0x06, "x": 0x07,
    "c": 0x08, "v": 0x09, "b": 0x0B, "q": 0x0C, "w": 0x0D, "e": 0x0E, "r": 0x0F, "y": 0x10,
    "t": 0x11, "1": 0x12, "2": 0x13, "3": 0x14, "4": 0x15, "6": 0x16, "5": 0x17, "=": 0x18,
    "9": 0x19, "7": 0x1A, "-": 0x1B, "8": 0x1C, "0": 0x1D, "]": 0x1E, "o": 0x1F, "u": 0x20,
    "[": 0x21, "i": 0x22, "p": 0x23, "l": 0x25, "j": 0x26, "'": 0x27, "k": 0x28, ";": 0x29,
    "\\": 0x2A, ",": 0x2B, "/": 0x2C, "n": 0x2D, "m": 0x2E, ".": 0x2F, "`": 0x32,
    "return": 0x24, "enter": 0x24, "tab": 0x30, "space": 0x31, "backspace": 0x33,
    # "delete" as on other desktops: forward delete (the Mac key labelled delete is backspace).
    "delete": 0x75, "del": 0x75, "forwarddelete": 0x75, "escape": 0x35, "esc": 0x35,
    "help": 0x72, "insert": 0x72, "home": 0x73, "end": 0x77, "pageup": 0x74,
    "pagedown": 0x79, "left": 0x7B, "right": 0x7C, "down": 0x7D, "up": 0x7E,
    "minus": 0x1B, "equal": 0x18, "comma": 0x2B, "period": 0x2F, "slash": 0x2C,
    "f1": 0x7A, "f2": 0x78, "f3": 0x63, "f4": 0x76, "f5": 0x60, "f6": 0x61, "f7": 0x62,
    "f8": 0x64, "f9": 0x65, "f10": 0x6D, "f11": 0x67, "f12": 0x6F, "f13": 0x69,
    "f14": 0x6B, "f15": 0x71, "f16": 0x6A, "f17": 0x40, "f18": 0x4F, "f19": 0x50,
    "f20": 0x5A,
}
# Modifier names, as the X11 backend takes them too; super/win/meta are Command on a Mac.
MODIFIER_FLAGS = {
    "cmd": "kCGEventFlagMaskCommand", "command": "kCGEventFlagMaskCommand",
    "super": "kCGEventFlagMaskCommand", "win": "kCGEventFlagMaskCommand",
    "meta": "kCGEventFlagMaskCommand", "ctrl": "kCGEventFlagMaskControl",
    "control": "kCGEventFlagMaskControl", "alt": "kCGEventFlagMaskAlternate",
    "option": "kCGEventFlagMaskAlternate", "opt": "kCGEventFlagMaskAlternate",
    "shift": "kCGEventFlagMaskShift", "fn": "kCGEventFlagMaskSecondaryFn",
    "function": "kCGEventFlagMaskSecondaryFn",
}


def parse_combo(combo: str) -> tuple[list[str], int]:
    """(flag constant names, key code) of a combo like cmd+shift+t; raises on unknown parts."""
    from deskloop.screen.errors import ActionFailedError

    parts = [part.strip().lower() for part in combo.split("+")]
    if combo.endswith("++"):  # cmd++: the last key is "+" itself, which is shift+=
        parts = [*parts[:-2], "shift", "="]
    *modifiers, key = parts
    unknown = [name for name in modifiers if name not in MODIFIER_FLAGS]
    if unknown:
        raise ActionFailedError(
            f"unknown modifier {unknown[0]!r}: use cmd, ctrl, alt (option), shift or fn"
        )
    if key not in KEY_CODES:
        raise ActionFailedError(f"unknown key {key!r}: use names like cmd+s, Return, Tab, F5")
    return [MODIFIER_FLAGS[name] for name in modifiers], KEY_CODES[key]


def _pass_event(proxy: Any, kind: int, event: Any, refcon: Any) -> Any:
    return event


class PyObjCAx:
    """The real calls, through pyobjc (install deskloop[macos])."""

    def __init__(self) -> None:
        try:
            import AppKit
            import ApplicationServices
            import Quartz
        except ImportError as exc:
            from deskloop.screen.errors import ScreenUnavailableError

            raise ScreenUnavailableError(
                "pyobjc is missing: pip install 'deskloop[macos]'"
            ) from exc
        self.ax: Any = ApplicationServices
        self.quartz: Any = Quartz
        self.appkit: Any = AppKit
        self.null: Any = AppKit.NSNull.null()

    def is_process_trusted(self) -> bool:
        return bool(self.ax.AXIsProcessTrusted())

    def application(self, pid: int) -> Any:
        element = self.ax.AXUIElementCreateApplication(pid)
        self.set_messaging_timeout(element, MESSAGING_TIMEOUT_S)
        return element

    def copy_attribute(self, element: Any, name: str) -> tuple[int, Any]:
        error, value = self.ax.AXUIElementCopyAttributeValue(element, name, None)
        return int(error), self._plain(value)

    def copy_attributes(self, element: Any, names: list[str]) -> dict[str, Any]:
        self.set_messaging_timeout(element, MESSAGING_TIMEOUT_S)
        error, values = self.ax.AXUIElementCopyMultipleAttributeValues(element, names, 0, None)
        if error != AX_SUCCESS or values is None:
            return {}
        result = {}
        for name, value in zip(names, values, strict=False):
            # A null value first: CFGetTypeID(NULL) crashes.
            if self._is_null(value) or self._is_ax_error(value):
                continue  # missing attributes come back as AXValue-wrapped errors
            result[name] = self._plain(value)
        return result

    def _is_null(self, value: Any) -> bool:
        # pyobjc hands kCFNull over as None; the NSNull singleton is the same object.
        return value is None or value is self.null

    def _is_ax_value(self, value: Any) -> bool:
        return bool(self.quartz.CFGetTypeID(value) == self.ax.AXValueGetTypeID())

    def _is_ax_error(self, value: Any) -> bool:
        return self._is_ax_value(value) and bool(
            self.ax.AXValueGetType(value) == self.ax.kAXValueAXErrorType
        )

    def _plain(self, value: Any) -> Any:
        if self._is_null(value):
            return None
        if isinstance(value, (list, tuple, self.appkit.NSArray)):
            return [self._plain(item) for item in value if not self._is_null(item)]
        if self._is_ax_value(value):
            kind = self.ax.AXValueGetType(value)
            if kind == self.ax.kAXValueCGPointType:
                _, point = self.ax.AXValueGetValue(value, kind, None)
                return (point.x, point.y)
            if kind == self.ax.kAXValueCGSizeType:
                _, size = self.ax.AXValueGetValue(value, kind, None)
                return (size.width, size.height)
        return value

    def set_messaging_timeout(self, element: Any, seconds: float) -> None:
        self.ax.AXUIElementSetMessagingTimeout(element, seconds)

    def perform_action(self, element: Any, action: str) -> int:
        return int(self.ax.AXUIElementPerformAction(element, action))

    def set_attribute(self, element: Any, name: str, value: Any) -> int:
        return int(self.ax.AXUIElementSetAttributeValue(element, name, value))

    def element_key(self, element: Any) -> str:
        return f"ax{self.quartz.CFHash(element):x}"

    def _turn_main_run_loop(self) -> None:
        """Let NSWorkspace take in launches and quits: its lists "only change when the main
        run loop runs in a common mode" (Apple, NSWorkspace.runningApplications), and
        asyncio never runs it. Off the main thread this turns that thread's own run loop,
        which brings nothing: `_window_owners` covers that case."""
        q = self.quartz
        for _ in range(RUN_LOOP_PASSES):
            handled = q.CFRunLoopRunInMode(q.kCFRunLoopDefaultMode, 0, True)
            if handled != q.kCFRunLoopRunHandledSource:
                return

    def _window_owners(self) -> list[tuple[str, int]]:
        """(name, pid) of the owners of on-screen normal windows, front window first: asked
        of the window server on each call, no run loop needed (owner names and pids need
        no Screen Recording, window titles would)."""
        q = self.quartz
        options = q.kCGWindowListOptionOnScreenOnly | q.kCGWindowListExcludeDesktopElements
        owners: list[tuple[str, int]] = []
        for window in q.CGWindowListCopyWindowInfo(options, q.kCGNullWindowID) or []:
            if window.get(q.kCGWindowLayer) != 0:
                continue  # menu bar, Dock, overlays: not an app's normal window
            owner = (str(window.get(q.kCGWindowOwnerName) or ""), int(window.get(q.kCGWindowOwnerPID, 0)))
            if owner[1] and owner not in owners:
                owners.append(owner)
        return owners

    def running_apps(self) -> list[tuple[str, int]]:
        self._turn_main_run_loop()
        apps = {
            int(app.processIdentifier()): str(app.localizedName() or "")
            for app in self.appkit.NSWorkspace.sharedWorkspace().runningApplications()
            if app.activationPolicy() == self.appkit.NSApplicationActivationPolicyRegular
        }
        for name, pid in self._window_owners():  # started since NSWorkspace last heard
            apps.setdefault(pid, name)
        return [(name, pid) for pid, name in apps.items()]

    def frontmost_pid(self) -> int | None:
        # The app with the keyboard focus, asked live; without Accessibility, the owner of
        # the front window; NSWorkspace's answer last (it lags like its app list).
        system = self.ax.AXUIElementCreateSystemWide()
        self.set_messaging_timeout(system, MESSAGING_TIMEOUT_S)
        error, app = self.copy_attribute(system, "AXFocusedApplication")
        if error == AX_SUCCESS and app is not None:
            error, pid = self.ax.AXUIElementGetPid(app, None)
            if error == AX_SUCCESS and pid:
                return int(pid)
        owners = self._window_owners()
        if owners:
            return owners[0][1]
        self._turn_main_run_loop()
        front = self.appkit.NSWorkspace.sharedWorkspace().frontmostApplication()
        return int(front.processIdentifier()) if front is not None else None

    def finder_pid(self) -> int | None:
        self._turn_main_run_loop()
        apps = self.appkit.NSRunningApplication.runningApplicationsWithBundleIdentifier_(
            "com.apple.finder"
        )
        return int(apps[0].processIdentifier()) if apps else None

    def activate(self, pid: int) -> None:
        # Since macOS 14 `activateWithOptions_` from a background process is only a request
        # (NSApplicationActivateIgnoringOtherApps is deprecated and has no effect); setting
        # the app's AXFrontmost brings it forward. The request stays as the fallback.
        if self.set_attribute(self.application(pid), "AXFrontmost", True) == AX_SUCCESS:
            return
        self._turn_main_run_loop()
        app = self.appkit.NSRunningApplication.runningApplicationWithProcessIdentifier_(pid)
        if app is not None:
            app.activateWithOptions_(self.appkit.NSApplicationActivateIgnoringOtherApps)

    def accessibility_tap_allowed(self) -> bool:
        # An active (filtering) tap on key events needs the Accessibility grant, asked of
        # the live permission database; a listen-only tap needs Input Monitoring instead, and
        # mouse events need neither (WWDC19 session 701; CGEventTapCreate clears the bits not
        # permitted and returns NULL when none are left). The tap is disabled and removed at
        # once, before it is ever added to a run loop.
        q = self.quartz
        mask = q.CGEventMaskBit(q.kCGEventKeyDown) | q.CGEventMaskBit(q.kCGEventKeyUp)
        tap = q.CGEventTapCreate(
            q.kCGSessionEventTap, q.kCGHeadInsertEventTap, q.kCGEventTapOptionDefault, mask,
            _pass_event, None,
        )
        if tap is None:
            return False
        q.CGEventTapEnable(tap, False)
        q.CFMachPortInvalidate(tap)
        return True

    def screen_recording_allowed(self) -> bool:
        preflight = getattr(self.quartz, "CGPreflightScreenCaptureAccess", None)
        return True if preflight is None else bool(preflight())  # None: before macOS 10.15

    def input_monitoring_allowed(self) -> bool:
        preflight = getattr(self.quartz, "CGPreflightListenEventAccess", None)
        return True if preflight is None else bool(preflight())

    def post_click(self, x: int, y: int, button: str, count: int) -> None:
        q = self.quartz
        down, up, which = {
            "left": (q.kCGEventLeftMouseDown, q.kCGEventLeftMouseUp, q.kCGMouseButtonLeft),
            "right": (q.kCGEventRightMouseDown, q.kCGEventRightMouseUp, q.kCGMouseButtonRight),
            "middle": (q.kCGEventOtherMouseDown, q.kCGEventOtherMouseUp, q.kCGMouseButtonCenter),
        }[button]
        for click in range(1, count + 1):
            for kind in (down, up):
                event = q.CGEventCreateMouseEvent(None, kind, (x, y), which)
                q.CGEventSetIntegerValueField(event, q.kCGMouseEventClickState, click)
                q.CGEventPost(q.kCGHIDEventTap, event)

    def post_text(self, text: str) -> None:
        q = self.quartz
        for character in text:
            # The length is in UTF-16 units: an emoji is two (a surrogate pair).
            units = len(character.encode("utf-16-le")) // 2
            for down in (True, False):
                event = q.CGEventCreateKeyboardEvent(None, 0, down)
                q.CGEventKeyboardSetUnicodeString(event, units, character)
                q.CGEventPost(q.kCGHIDEventTap, event)

    def post_keys(self, combo: str) -> None:
        q = self.quartz
        flag_names, keycode = parse_combo(combo)
        flags = 0
        for name in flag_names:
            flags |= getattr(q, name)
        for down in (True, False):
            event = q.CGEventCreateKeyboardEvent(None, keycode, down)
            q.CGEventSetFlags(event, flags)
            q.CGEventPost(q.kCGHIDEventTap, event)

    def post_scroll(self, x: int, y: int, direction: str, amount: int) -> None:
        q = self.quartz
        q.CGWarpMouseCursorPosition((x, y))
        dy = {"up": amount, "down": -amount}.get(direction, 0)
        dx = {"left": amount, "right": -amount}.get(direction, 0)
        event = q.CGEventCreateScrollWheelEvent(None, q.kCGScrollEventUnitLine, 2, dy, dx)
        q.CGEventPost(q.kCGHIDEventTap, event)

    def screen_box(self) -> tuple[int, int, int, int]:
        q = self.quartz
        bounds = q.CGDisplayBounds(q.CGMainDisplayID())
        return (round(bounds.origin.x), round(bounds.origin.y),
                round(bounds.size.width), round(bounds.size.height))

    def capture_png(self, box: tuple[int, int, int, int]) -> bytes:
        from deskloop.screen.errors import ActionFailedError

        if not self.screen_recording_allowed():
            # Without it macOS still returns an image: the desktop picture and the menu bar.
            raise ActionFailedError(
                f"macOS has not given deskloop Screen Recording: a capture would show only the "
                f"desktop picture. Turn deskloop (or the terminal running it) on in "
                f"{SCREEN_RECORDING_PANE}, then quit and reopen it"
            )
        q = self.quartz
        # CGWindowListCreateImage is deprecated in macOS 14 and left out of the macOS 15 SDK;
        # pyobjc still finds it at run time while the OS ships it. When it is gone (or gives
        # nothing), `screencapture` captures through Apple's current path (ScreenCaptureKit).
        # A direct ScreenCaptureKit call (SCScreenshotManager, macOS 14+) is the planned
        # replacement: it answers on a completion handler, so it needs a wait on a queue.
        create = getattr(q, "CGWindowListCreateImage", None)
        image = None
        if create is not None:
            # Nominal resolution: one pixel per point, as the box is in points.
            image = create(q.CGRectMake(*box), q.kCGWindowListOptionOnScreenOnly,
                           q.kCGNullWindowID, q.kCGWindowImageNominalResolution)
        if image is None:
            return _screencapture(box)
        bitmap = self.appkit.NSBitmapImageRep.alloc().initWithCGImage_(image)
        data = bitmap.representationUsingType_properties_(self.appkit.NSBitmapImageFileTypePNG, {})
        return bytes(data)


def _screencapture(box: tuple[int, int, int, int]) -> bytes:
    """The box through /usr/sbin/screencapture (-x: no sound); pixels at backing scale."""
    from deskloop.screen.errors import ActionFailedError

    x, y, width, height = box
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "capture.png"
        command = ["screencapture", "-x", "-t", "png", "-R", f"{x},{y},{width},{height}", str(path)]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=15)
            return path.read_bytes()
        except (OSError, subprocess.SubprocessError) as exc:
            raise ActionFailedError(f"macOS returned no image: {exc}") from exc
