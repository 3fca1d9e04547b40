"""The person's pointer buttons and keys, heard from the X server's RECORD extension.

RECORD copies device events to a second connection as the server processes them; the
server never waits for this listener, so recording cannot slow the desktop's input. The
listener runs in its own thread (python-xlib's `record_enable_context` blocks) and hands
each press to a callback, which must be cheap (the event source queues it for its loop).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from deskloop.screen.errors import ScreenUnavailableError

# Modifier keysym names -> the neutral modifier name.
MODIFIERS = {
    "Control_L": "ctrl",
    "Control_R": "ctrl",
    "Shift_L": "shift",
    "Shift_R": "shift",
    "Alt_L": "alt",
    "Alt_R": "alt",
    "Meta_L": "alt",
    "Meta_R": "alt",
    "ISO_Level3_Shift": "altgr",
    "Super_L": "super",
    "Super_R": "super",
    "Hyper_L": "super",
    "Hyper_R": "super",
}
# Keysyms that type a character other than their name.
TYPED = {"space": " ", "Return": "", "Tab": "", "KP_Enter": ""}


@dataclass(frozen=True)
class RawInput:
    """One press or release as the X server saw it."""

    kind: Literal["press", "release", "key"]
    time: float
    x: int = 0
    y: int = 0
    button: int = 0
    key: str = ""
    modifiers: frozenset[str] = frozenset()
    text: str = ""


@lru_cache(maxsize=1)
def _keysym_names() -> dict[int, str]:
    """Keysym number -> its name ("Return", "Control_L"); python-xlib maps only name -> number."""
    from Xlib import XK

    names: dict[int, str] = {}
    for attribute in dir(XK):
        if attribute.startswith("XK_"):
            names.setdefault(int(getattr(XK, attribute)), attribute[3:])
    return names


def keysym_name(keysym: int) -> str:
    text = _keysym_text(keysym)
    if text and text.isprintable() and not text.isspace():
        return text
    return _keysym_names().get(keysym) or f"0x{keysym:x}"


def _keysym_text(keysym: int) -> str:
    """The character a keysym types ("" for function keys)."""
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if keysym & 0xFF000000 == 0x01000000:
        return chr(keysym & 0x00FFFFFF)
    return ""


class XInputListener:
    """Listens to the X server's device events through RECORD until `stop()`."""

    def __init__(self, on_input: Callable[[RawInput], None], display_name: str = "") -> None:
        self.on_input = on_input
        self.display_name = display_name or os.environ.get("DISPLAY", "")
        self._control: Any = None
        self._data: Any = None
        self._context = 0
        self._thread: threading.Thread | None = None
        self._held: set[str] = set()
        self.failure: str | None = None

    def start(self) -> None:
        """Open the two connections RECORD needs and start listening; raises with the fix
        when there is no display or the server lacks RECORD."""
        from Xlib import X, display, error
        from Xlib.ext import record

        if not self.display_name:
            raise ScreenUnavailableError(
                "no X display: DISPLAY is not set, so the pointer and keys cannot be heard. "
                "Record inside your desktop session (or set DISPLAY=:0); on Wayland there "
                "is no way to hear other apps' input"
            )
        try:
            self._control = display.Display(self.display_name)
            self._data = display.Display(self.display_name)
        except (error.DisplayError, OSError) as exc:
            self.close()
            raise ScreenUnavailableError(
                f"cannot open X display {self.display_name}: {exc}"
            ) from exc
        if not self._control.has_extension("RECORD"):
            self.close()
            raise ScreenUnavailableError(
                f"the X server on {self.display_name} has no RECORD extension, so the pointer "
                "and keys cannot be heard: enable it (Xorg loads it by default; for Xvfb "
                "pass `+extension RECORD`)"
            )
        self._context = self._control.record_create_context(
            0,
            [record.AllClients],
            [
                {
                    "core_requests": (0, 0),
                    "core_replies": (0, 0),
                    "ext_requests": (0, 0, 0, 0),
                    "ext_replies": (0, 0, 0, 0),
                    "delivered_events": (0, 0),
                    "device_events": (X.KeyPress, X.ButtonRelease),
                    "errors": (0, 0),
                    "client_started": False,
                    "client_died": False,
                }
            ],
        )
        self._control.sync()
        self._thread = threading.Thread(target=self._listen, name="deskloop-x-input", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        try:
            self._data.record_enable_context(self._context, self._on_reply)
        except Exception as exc:  # the connection broke: say so where the recorder reads it
            self.failure = f"the X input listener stopped: {exc}"

    def _on_reply(self, reply: Any) -> None:
        from Xlib.ext import record
        from Xlib.protocol import rq

        if reply.category != record.FromServer or reply.client_swapped:
            return
        data = reply.data
        while len(data) > 1:
            event, data = rq.EventField(None).parse_binary_value(
                data, self._data.display, None, None
            )
            raw = self._translate(event)
            if raw is not None:
                self.on_input(raw)

    def _translate(self, event: Any) -> RawInput | None:
        from Xlib import X

        now = time.monotonic()
        if event.type in (X.ButtonPress, X.ButtonRelease):
            if event.detail > 3:
                return None  # scroll wheel clicks: not a step
            kind: Literal["press", "release"] = (
                "press" if event.type == X.ButtonPress else "release"
            )
            return RawInput(kind, now, int(event.root_x), int(event.root_y), int(event.detail))
        if event.type not in (X.KeyPress, X.KeyRelease):
            return None
        shifted = "shift" in self._held
        keysym = self._data.keycode_to_keysym(event.detail, 1 if shifted else 0)
        if not keysym and shifted:
            keysym = self._data.keycode_to_keysym(event.detail, 0)
        name = keysym_name(keysym)
        modifier = MODIFIERS.get(name)
        if modifier is not None:
            if event.type == X.KeyPress:
                self._held.add(modifier)
            else:
                self._held.discard(modifier)
            return None
        if event.type == X.KeyRelease:
            return None
        held = frozenset(self._held)
        typing = not held & {"ctrl", "alt", "super"}
        text = TYPED.get(name, _keysym_text(keysym)) if typing else ""
        return RawInput("key", now, key=name, modifiers=held, text=text)

    def stop(self) -> None:
        if self._control is not None and self._context:
            try:
                self._control.record_disable_context(self._context)
                self._control.flush()
            except Exception:  # the server went away first: nothing left to stop
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._control is not None and self._context:
            try:
                self._control.record_free_context(self._context)
                self._control.flush()
            except Exception:
                pass
        self._context = 0
        self.close()

    def close(self) -> None:
        for connection in (self._data, self._control):
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()
        self._data = self._control = None
