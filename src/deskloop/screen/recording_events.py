"""What a recorder hears: the person's input and the accessibility events, platform-neutral.

A platform's event source (AT-SPI plus X input on Linux, AXObserver plus a listen-only
event tap on macOS) turns what it hears into these, with the element already described
(`ElementFacts`) at the moment of the event: at a button press, the element under the
pointer is looked up then, not at release, because the UI has often changed by release.
`recordings/` collapses them into steps; nothing here knows about steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from deskloop.screen.tree import Box


@dataclass(frozen=True)
class ElementFacts:
    """One element as it was when an event named it: enough to find it again later."""

    app: str
    pid: int
    role: str
    name: str
    value: str | None = None
    states: frozenset[str] = frozenset()
    # A toolkit's own id where it has one (macOS AXIdentifier, GTK buildable id).
    stable_id: str = ""
    # Named ancestors as (role, name), window first, the element itself excluded.
    path: tuple[tuple[str, str], ...] = ()
    # Position among the parent's children of the same role.
    index: int = -1
    # On screen, and relative to its window (for a bounds locator).
    box: Box | None = None
    window_title: str = ""
    window_box: Box | None = None
    # A password role or a protected field: its text is never recorded.
    secret: bool = False


@dataclass(frozen=True)
class PointerEvent:
    """A button press (or release) at screen (x, y); `element` is what was under it at press."""

    kind: Literal["press", "release"]
    x: int
    y: int
    button: int
    time: float
    element: ElementFacts | None = None


@dataclass(frozen=True)
class KeyEvent:
    """One key pressed, by its key name ("a", "Return", "ctrl") with the modifiers held."""

    key: str
    modifiers: frozenset[str]
    time: float
    # The text the key typed, if any ("" for Return, arrows, chords).
    text: str = ""
    # Typed into a password role or protected field: `key` and `text` are withheld ("").
    secret: bool = False


ElementEventKind = Literal[
    "checked",
    "unchecked",
    "selected",
    "unselected",
    "focused",
    "text_inserted",
    "text_deleted",
    "selection_changed",
    "window_activated",
    "menu_chosen",
    # A new window appeared (macOS AXWindowCreated); it may not have come forward.
    "window_opened",
]


@dataclass(frozen=True)
class ElementEvent:
    """An accessibility event: a state changed, text changed, a window came forward."""

    kind: ElementEventKind
    element: ElementFacts
    time: float
    # text_inserted/text_deleted: the text; the element's value after it, when known.
    detail: str = ""


RecordedEvent = PointerEvent | KeyEvent | ElementEvent


class EventSource(Protocol):
    """A platform's listener; `events()` yields until `stop()` is called."""

    def events(self) -> AsyncIterator[RecordedEvent]: ...

    async def stop(self) -> None: ...
