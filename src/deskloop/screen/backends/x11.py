"""X11 through python-xlib: synthetic input with XTest, window focus, and screen pixels.

Used by the AT-SPI backend when an element offers no accessibility action, and for keys,
scrolling, double and right clicks. Wayland has neither global coordinates nor XTest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from deskloop.screen.errors import ActionFailedError, ScreenUnavailableError
from deskloop.screen.tree import Box

MODIFIER_KEYSYMS = {
    "ctrl": "Control_L", "control": "Control_L", "shift": "Shift_L", "alt": "Alt_L",
    "super": "Super_L", "meta": "Super_L", "cmd": "Super_L", "win": "Super_L",
}
KEY_ALIASES = {
    "enter": "Return", "return": "Return", "esc": "Escape", "escape": "Escape",
    "tab": "Tab", "space": "space", "backspace": "BackSpace", "delete": "Delete",
    "del": "Delete", "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "home": "Home", "end": "End", "pageup": "Prior", "pagedown": "Next", "insert": "Insert",
    "menu": "Menu",
}
CHARACTER_KEYSYMS = {"\n": "Return", "\t": "Tab", " ": "space"}
BUTTONS = {"left": 1, "middle": 2, "right": 3}
# Time for clients to see a keymap change (MappingNotify) before and after using it.
KEYMAP_SETTLE_S = 0.05
SCROLL_BUTTONS = {"up": 4, "down": 5, "left": 6, "right": 7}


@dataclass(frozen=True)
class WindowInfo:
    """A mapped top-level X window."""

    xid: int
    pid: int
    title: str
    box: Box


def _keysym_of_character(character: str) -> int:
    from Xlib import XK

    if character in CHARACTER_KEYSYMS:
        return int(XK.string_to_keysym(CHARACTER_KEYSYMS[character]))
    code = ord(character)
    # Latin-1 keysyms equal their code points; others live at 0x01000000 + code point.
    return code if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF else 0x01000000 | code


class X11Display:
    """One connection to the X server named by DISPLAY."""

    def __init__(self, name: str | None = None) -> None:
        from Xlib import display, error

        name = name or os.environ.get("DISPLAY", "")
        if not name:
            raise ScreenUnavailableError(
                "no X display: DISPLAY is not set. Run deskloop inside your desktop session "
                "(or set DISPLAY=:0); on Wayland, start apps under XWayland"
            )
        try:
            self.display: Any = display.Display(name)
        except (error.DisplayError, OSError) as exc:
            raise ScreenUnavailableError(f"cannot open X display {name}: {exc}") from exc
        self.root: Any = self.display.screen().root
        self.has_xtest = self.display.query_extension("XTEST") is not None

    def close(self) -> None:
        self.display.close()

    def root_property(self, name: str) -> str | None:
        """A text property of the root window (at-spi-bus-launcher sets AT_SPI_BUS there)."""
        atom = self.display.intern_atom(name, only_if_exists=True)
        if not atom:
            return None
        value = self.root.get_full_property(atom, 0)  # 0: AnyPropertyType
        if value is None or not value.value:
            return None
        raw = value.value
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return text.strip("\0").strip() or None

    @property
    def screen_box(self) -> Box:
        screen = self.display.screen()
        return Box(0, 0, int(screen.width_in_pixels), int(screen.height_in_pixels))

    # Input -------------------------------------------------------------------------

    def _require_xtest(self) -> None:
        if not self.has_xtest:
            raise ActionFailedError(
                "the X server has no XTest extension, so synthetic input is off: "
                "enable XTEST in the X server (Xvfb has it by default)"
            )

    def _fake(self, event: int, detail: int = 0, x: int = 0, y: int = 0) -> None:
        from Xlib.ext import xtest

        xtest.fake_input(self.display, event, detail, x=x, y=y)

    def move_pointer(self, x: int, y: int) -> None:
        from Xlib import X

        self._require_xtest()
        self._fake(X.MotionNotify, x=x, y=y)
        self.display.sync()

    def click(self, x: int, y: int, button: str = "left", count: int = 1) -> None:
        from Xlib import X

        self.move_pointer(x, y)
        for _ in range(count):
            self._fake(X.ButtonPress, BUTTONS[button])
            self._fake(X.ButtonRelease, BUTTONS[button])
        self.display.sync()

    def scroll(self, x: int, y: int, direction: str, amount: int) -> None:
        from Xlib import X

        self.move_pointer(x, y)
        for _ in range(amount):
            self._fake(X.ButtonPress, SCROLL_BUTTONS[direction])
            self._fake(X.ButtonRelease, SCROLL_BUTTONS[direction])
        self.display.sync()

    def _keycode(self, keysym: int) -> tuple[int, bool]:
        """A keycode that types `keysym`, and whether Shift is needed."""
        for keycode, index in self.display.keysym_to_keycodes(keysym):
            if index in (0, 1):
                return int(keycode), index == 1
        return 0, False

    @contextmanager
    def _spare_keycodes(self, keysyms: list[int]) -> Iterator[dict[int, int]]:
        """Map keysyms no key types to unused keycodes for the length of one text.

        Clients translate a key when they process it, so the mapping must outlive the key
        events: restoring right after each press lost characters under load.
        """
        if not keysyms:
            yield {}
            return
        first = self.display.display.info.min_keycode
        count = self.display.display.info.max_keycode - first + 1
        mapping = self.display.get_keyboard_mapping(first, count)
        spares = [first + i for i in reversed(range(count)) if not any(mapping[i])]
        if len(spares) < len(keysyms):
            raise ActionFailedError(
                "too many characters without a key in one text: type it in parts, or use "
                "set_value"
            )
        width = len(mapping[0])
        assigned = dict(zip(keysyms, spares, strict=False))
        for keysym, keycode in assigned.items():
            self.display.change_keyboard_mapping(keycode, [(keysym,) * width])
        self.display.sync()
        time.sleep(KEYMAP_SETTLE_S)
        try:
            yield assigned
        finally:
            self.display.sync()
            time.sleep(KEYMAP_SETTLE_S)
            for keycode in assigned.values():
                self.display.change_keyboard_mapping(keycode, [(0,) * width])
            self.display.sync()

    def _tap(self, keycode: int, shift: bool) -> None:
        from Xlib import XK, X

        shift_code = self.display.keysym_to_keycode(XK.string_to_keysym("Shift_L"))
        if shift:
            self._fake(X.KeyPress, shift_code)
        self._fake(X.KeyPress, keycode)
        self._fake(X.KeyRelease, keycode)
        if shift:
            self._fake(X.KeyRelease, shift_code)

    def type_text(self, text: str) -> None:
        self._require_xtest()
        plan = [(_keysym_of_character(character), character) for character in text]
        keys = {keysym: self._keycode(keysym) for keysym, _ in plan}
        missing = sorted({keysym for keysym, (keycode, _) in keys.items() if not keycode})
        with self._spare_keycodes(missing) as spares:
            for keysym, _ in plan:
                keycode, shift = keys[keysym]
                self._tap(keycode or spares[keysym], shift)
            self.display.sync()

    def press_keys(self, combo: str) -> None:
        """Press a combination like `ctrl+s`, `shift+Tab`, `F5` or `Return`."""
        from Xlib import XK, X

        self._require_xtest()
        parts = [part.strip() for part in combo.split("+") if part.strip()]
        if not parts:
            raise ActionFailedError("no keys given: pass a combination like ctrl+s or Return")
        keycodes = []
        for part in parts:
            name = MODIFIER_KEYSYMS.get(part.lower()) or KEY_ALIASES.get(part.lower()) or part
            keysym = XK.string_to_keysym(name)
            if not keysym and len(name) == 1:
                keysym = _keysym_of_character(name.lower())
            keycode = self.display.keysym_to_keycode(keysym) if keysym else 0
            if not keycode:
                raise ActionFailedError(
                    f"unknown key {part!r} in {combo!r}: use names like ctrl, shift, alt, "
                    "Return, Tab, Escape, F1, Up, a"
                )
            keycodes.append(keycode)
        for keycode in keycodes:
            self._fake(X.KeyPress, keycode)
        for keycode in reversed(keycodes):
            self._fake(X.KeyRelease, keycode)
        self.display.sync()

    # Windows -----------------------------------------------------------------------

    def _pid_of(self, window: Any) -> int:
        atom = self.display.intern_atom("_NET_WM_PID")
        prop = window.get_full_property(atom, 0)
        return int(prop.value[0]) if prop is not None and len(prop.value) else 0

    def _title_of(self, window: Any) -> str:
        atom = self.display.intern_atom("_NET_WM_NAME")
        prop = window.get_full_property(atom, 0)
        if prop is not None:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        return str(name or "")

    def windows(self) -> list[WindowInfo]:
        """Mapped top-level windows that name their process (client windows under frames too)."""
        from Xlib import X

        found = []
        for top in self.root.query_tree().children:
            if top.get_attributes().map_state != X.IsViewable:
                continue
            for window in [top, *top.query_tree().children]:
                pid = self._pid_of(window)
                if pid:
                    geometry = window.get_geometry()
                    origin = window.translate_coords(self.root, 0, 0)
                    box = Box(-origin.x, -origin.y, geometry.width, geometry.height)
                    found.append(WindowInfo(int(window.id), pid, self._title_of(window), box))
                    break
        return found

    def focused_pid(self) -> int:
        """The process of the window with the keyboard focus, or 0."""
        window = self.display.get_input_focus().focus
        while window and not isinstance(window, int):
            pid = self._pid_of(window)
            if pid:
                return pid
            parent = window.query_tree().parent
            if not parent or parent.id == self.root.id:
                return 0
            window = parent
        return 0

    def focus_window(self, xid: int) -> None:
        from Xlib import X, protocol

        window = self.display.create_resource_object("window", xid)
        active = self.display.intern_atom("_NET_ACTIVE_WINDOW")
        supported = self.root.get_full_property(self.display.intern_atom("_NET_SUPPORTED"), 0)
        if supported is not None and active in supported.value:
            # A window manager owns focus: ask it (EWMH), source 2 = a pager/tool.
            event = protocol.event.ClientMessage(
                window=window, client_type=active, data=(32, [2, X.CurrentTime, 0, 0, 0])
            )
            mask = X.SubstructureRedirectMask | X.SubstructureNotifyMask
            self.root.send_event(event, event_mask=mask)
        else:
            window.configure(stack_mode=X.Above)
            window.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.display.sync()

    # Pixels ------------------------------------------------------------------------

    def capture(self, box: Box) -> tuple[int, int, bytes]:
        """Raw BGRX pixels of `box` (clipped to the screen) from the root window."""
        from Xlib import X

        area = box.intersection(self.screen_box)
        if area is None:
            raise ActionFailedError("the area to capture is off the screen: observe again")
        image = self.root.get_image(area.x, area.y, area.width, area.height, X.ZPixmap, 0xFFFFFFFF)
        return area.width, area.height, bytes(image.data)
