"""The few AX, CGEvent and AppKit calls the macOS backend makes, behind one small interface.

`PyObjCAx` makes the real calls (pyobjc imported on first use, so this module imports on
Linux); tests feed recorded attribute data through a fake with the same methods.
"""

from __future__ import annotations

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

# Per-element messaging timeout: a hung app must not hang the read (seconds).
MESSAGING_TIMEOUT_S = 0.5


class AxApi(Protocol):
    """What the backend needs from macOS; values come back as plain Python data."""

    def is_process_trusted(self) -> bool: ...

    def application(self, pid: int) -> Any: ...

    def copy_attribute(self, element: Any, name: str) -> tuple[int, Any]:
        """(AXError, value) of one attribute."""
        ...

    def copy_attributes(self, element: Any, names: list[str]) -> dict[str, Any]:
        """Many attributes in one call (`AXUIElementCopyMultipleAttributeValues`); missing
        ones are left out; AXValue points and sizes come back as tuples."""
        ...

    def set_messaging_timeout(self, element: Any, seconds: float) -> None: ...

    def perform_action(self, element: Any, action: str) -> int: ...

    def set_attribute(self, element: Any, name: str, value: Any) -> int: ...

    def element_key(self, element: Any) -> str:
        """A key equal for equal elements (CFHash), used as the element's ref."""
        ...

    def running_apps(self) -> list[tuple[str, int]]: ...

    def frontmost_pid(self) -> int | None: ...

    def finder_pid(self) -> int | None: ...

    def activate(self, pid: int) -> None: ...

    def event_tap_allowed(self) -> bool:
        """A listen-only event tap: asks the live permission database, not the cache."""
        ...

    def post_click(self, x: int, y: int, button: str, count: int) -> None: ...

    def post_text(self, text: str) -> None: ...

    def post_keys(self, combo: str) -> None: ...

    def post_scroll(self, x: int, y: int, direction: str, amount: int) -> None: ...

    def capture_png(self, box: tuple[int, int, int, int] | None) -> bytes: ...


# Virtual key codes (HIToolbox Events.h) for named keys; letters go as Unicode text.
KEY_CODES = {
    "return": 36, "enter": 36, "tab": 48, "space": 49, "delete": 51, "backspace": 51,
    "escape": 53, "esc": 53, "left": 123, "right": 124, "down": 125, "up": 126,
    "home": 115, "end": 119, "pageup": 116, "pagedown": 121, "f1": 122, "f2": 120,
    "f3": 99, "f4": 118, "f5": 96, "a": 0, "s": 1, "d": 2, "f": 3, "z": 6, "x": 7,
    "c": 8, "v": 9, "w": 13, "q": 12, "n": 45, "o": 31, "p": 35, "t": 17,
}


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
            # Missing attributes come back as AXValue-wrapped errors: leave them out.
            is_ax_value = self.ax.AXValueGetTypeID() == self.quartz.CFGetTypeID(value)
            if is_ax_value and self.ax.AXValueGetType(value) == self.ax.kAXValueAXErrorType:
                continue
            result[name] = self._plain(value)
        return result

    def _plain(self, value: Any) -> Any:
        if value is None:
            return None
        if self.quartz.CFGetTypeID(value) == self.ax.AXValueGetTypeID():
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

    def running_apps(self) -> list[tuple[str, int]]:
        workspace = self.appkit.NSWorkspace.sharedWorkspace()
        return [
            (str(app.localizedName() or ""), int(app.processIdentifier()))
            for app in workspace.runningApplications()
            if app.activationPolicy() == self.appkit.NSApplicationActivationPolicyRegular
        ]

    def frontmost_pid(self) -> int | None:
        app = self.appkit.NSWorkspace.sharedWorkspace().frontmostApplication()
        return int(app.processIdentifier()) if app is not None else None

    def finder_pid(self) -> int | None:
        apps = self.appkit.NSRunningApplication.runningApplicationsWithBundleIdentifier_(
            "com.apple.finder"
        )
        return int(apps[0].processIdentifier()) if apps else None

    def activate(self, pid: int) -> None:
        app = self.appkit.NSRunningApplication.runningApplicationWithProcessIdentifier_(pid)
        if app is not None:
            app.activateWithOptions_(self.appkit.NSApplicationActivateIgnoringOtherApps)

    def event_tap_allowed(self) -> bool:
        q = self.quartz
        tap = q.CGEventTapCreate(
            q.kCGSessionEventTap, q.kCGHeadInsertEventTap, q.kCGEventTapOptionListenOnly,
            q.CGEventMaskBit(q.kCGEventMouseMoved), lambda *args: args[2], None,
        )
        if tap is None:
            return False
        q.CFMachPortInvalidate(tap)
        return True

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
            for down in (True, False):
                event = q.CGEventCreateKeyboardEvent(None, 0, down)
                q.CGEventKeyboardSetUnicodeString(event, len(character), character)
                q.CGEventPost(q.kCGHIDEventTap, event)

    def post_keys(self, combo: str) -> None:
        q = self.quartz
        flags_by_name = {
            "cmd": q.kCGEventFlagMaskCommand, "command": q.kCGEventFlagMaskCommand,
            "ctrl": q.kCGEventFlagMaskControl, "control": q.kCGEventFlagMaskControl,
            "alt": q.kCGEventFlagMaskAlternate, "option": q.kCGEventFlagMaskAlternate,
            "shift": q.kCGEventFlagMaskShift,
        }
        *modifiers, key = [part.strip().lower() for part in combo.split("+")]
        if key not in KEY_CODES:
            from deskloop.screen.errors import ActionFailedError

            raise ActionFailedError(f"unknown key {key!r}: use names like cmd+s, Return, Tab")
        flags = 0
        for modifier in modifiers:
            flags |= flags_by_name.get(modifier, 0)
        for down in (True, False):
            event = q.CGEventCreateKeyboardEvent(None, KEY_CODES[key], down)
            q.CGEventSetFlags(event, flags)
            q.CGEventPost(q.kCGHIDEventTap, event)

    def post_scroll(self, x: int, y: int, direction: str, amount: int) -> None:
        q = self.quartz
        q.CGWarpMouseCursorPosition((x, y))
        dy = {"up": amount, "down": -amount}.get(direction, 0)
        dx = {"left": amount, "right": -amount}.get(direction, 0)
        event = q.CGEventCreateScrollWheelEvent(None, q.kCGScrollEventUnitLine, 2, dy, dx)
        q.CGEventPost(q.kCGHIDEventTap, event)

    def capture_png(self, box: tuple[int, int, int, int] | None) -> bytes:
        q = self.quartz
        rect = q.CGRectInfinite if box is None else q.CGRectMake(*box)
        image = q.CGWindowListCreateImage(
            rect, q.kCGWindowListOptionOnScreenOnly, q.kCGNullWindowID, q.kCGWindowImageDefault
        )
        if image is None:
            from deskloop.screen.errors import ActionFailedError

            raise ActionFailedError(
                "macOS returned no image: grant Screen Recording to this app in System "
                "Settings > Privacy & Security, then quit and reopen it"
            )
        bitmap = self.appkit.NSBitmapImageRep.alloc().initWithCGImage_(image)
        data = bitmap.representationUsingType_properties_(self.appkit.NSBitmapImageFileTypePNG, {})
        return bytes(data)
