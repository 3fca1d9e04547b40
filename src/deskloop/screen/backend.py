"""The interface every platform backend implements, and the types it speaks in.

Backends import this module; none is imported here (`platforms.py` picks one by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from deskloop.screen.tree import Box, WindowRead


@dataclass(frozen=True)
class AppInfo:
    """An application that shows up in the accessibility tree."""

    name: str
    pid: int
    titles: tuple[str, ...] = ()  # its windows' titles, where the backend knows them


@dataclass(frozen=True)
class Target:
    """Which window to read: an app by name, by pid, or (neither) the focused one."""

    app: str | None = None
    pid: int | None = None

    def describe(self) -> str:
        if self.pid is not None:
            return f"pid {self.pid}"
        if self.app is not None:
            return f"app {self.app!r}"
        return "the focused window"


class ScreenBackend(Protocol):
    """Reads windows and acts on elements by their backend `ref` within an app (`pid`)."""

    name: str

    async def list_apps(self) -> list[AppInfo]: ...

    async def read(self, target: Target) -> WindowRead:
        """One read of the target's window; degraded (with a reason) when it has no tree."""
        ...

    async def fingerprint(self, pid: int) -> int | None:
        """The app's current digest, comparable with `WindowRead.fingerprint` (None: none)."""
        ...

    async def identity(self, pid: int, ref: str) -> tuple[str, str]:
        """The element's current neutral role and name, read live (for the stale check)."""
        ...

    async def press(self, pid: int, ref: str) -> bool:
        """The element's default accessibility action; False when it offers none."""
        ...

    async def focus_element(self, pid: int, ref: str) -> bool: ...

    async def insert_text(self, pid: int, ref: str, text: str) -> bool:
        """Insert `text` at the caret through the accessibility API; False if not editable."""
        ...

    async def set_value(self, pid: int, ref: str, value: str) -> bool:
        """Replace the text or numeric value; False when the element has neither."""
        ...

    async def click_at(self, x: int, y: int, button: str, count: int) -> None: ...

    async def type_keys(self, text: str) -> None: ...

    async def press_keys(self, combo: str) -> None: ...

    async def scroll_at(self, x: int, y: int, direction: str, amount: int) -> None: ...

    async def focus_window(self, pid: int, title: str = "") -> None:
        """Raise and focus the app's window, the one titled `title` when there are several."""
        ...

    async def launch(self, command: list[str]) -> int:
        """Start an application; returns its process id."""
        ...

    async def capture(self, box: Box | None) -> Image.Image:
        """Pixels of `box` on screen, or the whole screen."""
        ...

    async def close(self) -> None: ...
