"""Find a step's element again: its ranked locators against a fresh read of the screen.

Locators are tried best first. One that matches several elements is ambiguous and is
never guessed at (the next one is tried); names that are times or counts ("3 hours ago",
"12 items") change between runs and are not trusted as locators.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from deskloop.recordings.recording import Locator, PathPart, Step
from deskloop.screen.tree import Box, Element, Snapshot

# Roles whose name is a window title: only its stable part is recorded, and matched as a part.
WINDOW_ROLES = frozenset({"window", "frame", "dialog", "application", "alert"})
MENU_ROLES = frozenset({"menu", "menuitem", "check", "radio"})

_UNIT = (
    r"(?:s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|mos?|months?"
    r"|y|yrs?|years?)"
)
_COUNTED = (
    r"(?:items?|files?|folders?|messages?|results?|matches|rows?|entries|comments?|"
    r"notifications?|unread|new|selected|emails?|tasks?|pages?|words?|characters?|lines?)"
)
UNTRUSTED_NAMES = (
    re.compile(rf"\b\d+\s*{_UNIT}\s+ago\b", re.IGNORECASE),
    re.compile(r"\b(?:just now|yesterday|today|tomorrow)\b", re.IGNORECASE),
    re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?\s*(?:am|pm)?$", re.IGNORECASE),
    re.compile(rf"^\(?\d[\d,.\s]*\)?\s*{_COUNTED}\b", re.IGNORECASE),
    re.compile(r"^\(?\d[\d,.\s]*\)?$"),
)


def untrusted_name(name: str) -> bool:
    """A name that is a time or a count: it will read differently on the next run."""
    text = " ".join(name.split())
    return any(pattern.search(text) for pattern in UNTRUSTED_NAMES)


def same_name(left: str, right: str) -> bool:
    # GTK pads menu item names with spaces for the accelerator column.
    return " ".join(left.split()) == " ".join(right.split())


@dataclass(frozen=True)
class Found:
    """The step's element in `snapshot`, and the locator that found it."""

    element: Element
    snapshot: Snapshot
    locator: Locator

    @property
    def enabled(self) -> bool:
        return "disabled" not in self.element.states


@dataclass(frozen=True)
class NotFound:
    """Why no locator found exactly one element, each locator's reason in order."""

    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "the step has no locators"


def describe(locator: Locator) -> str:
    if locator.kind == "stable_id":
        return f"id {locator.stable_id!r}"
    if locator.kind == "role_name":
        return f"{locator.role} {locator.name!r}"
    if locator.kind == "path":
        chain = " > ".join(f"{part.role} {part.name!r}" for part in locator.path if part.name)
        target = f"{locator.role} {locator.name!r}" if locator.name else locator.role
        return f"{target} under {chain}" if chain else target
    if locator.kind == "index":
        return f"{locator.role} number {locator.index + 1} among its siblings"
    return f"{locator.role or 'element'} at {list(locator.box or ())} in the window"


def ancestors(snapshot: Snapshot, element: Element) -> list[Element]:
    """The element's ancestors, window first."""
    chain: list[Element] = []
    parent = element.parent
    while parent is not None:
        chain.append(snapshot.elements[parent])
        parent = snapshot.elements[parent].parent
    return chain[::-1]


def named_path(snapshot: Snapshot, element: Element) -> tuple[PathPart, ...]:
    """The named ancestors, window first; the window's title is left out (it changes)."""
    parts: list[PathPart] = []
    for ancestor in ancestors(snapshot, element):
        if ancestor.role in WINDOW_ROLES:
            parts.append(PathPart(ancestor.role, ""))
        elif ancestor.name and not untrusted_name(ancestor.name):
            parts.append(PathPart(ancestor.role, ancestor.name))
    return tuple(parts)


def _part_matches(part: PathPart, ancestor: Element, snapshot: Snapshot) -> bool:
    if part.role != ancestor.role:
        return False
    if part.role in WINDOW_ROLES:
        # Only the stable part of a title is recorded: it need only appear in the title.
        wanted = " ".join(part.name.split()).lower()
        return wanted in " ".join(ancestor.name.split()).lower() or wanted in snapshot.app.lower()
    return same_name(part.name, ancestor.name)


def _path_matches(path: tuple[PathPart, ...], snapshot: Snapshot, element: Element) -> bool:
    """Every recorded ancestor appears, in order, among the element's ancestors."""
    chain = iter(ancestors(snapshot, element))
    return all(any(_part_matches(part, a, snapshot) for a in chain) for part in path)


def sibling_index(snapshot: Snapshot, element: Element) -> int:
    """Position among the parent's children of the same role (-1 for the root)."""
    if element.parent is None:
        return -1
    same_role = [
        child
        for child in snapshot.elements[element.parent].children
        if snapshot.elements[child].role == element.role
    ]
    return same_role.index(element.id)


def _on_window(element: Element) -> bool:
    return element.box is not None and not element.box.is_empty


def _candidates(snapshot: Snapshot, locator: Locator) -> Iterator[Element]:
    for element in snapshot:
        if element.id == snapshot.root:
            continue
        if locator.role and element.role != locator.role:
            continue
        if locator.kind == "role_name":
            if same_name(element.name, locator.name):
                yield element
        elif locator.kind == "path":
            named = not locator.name or same_name(element.name, locator.name)
            if named and _path_matches(locator.path, snapshot, element):
                yield element
        elif locator.kind == "index":
            if sibling_index(snapshot, element) == locator.index and _path_matches(
                locator.path, snapshot, element
            ):
                yield element
        elif locator.kind == "bounds" and locator.box is not None and _on_window(element):
            assert element.box is not None
            x, y, width, height = locator.box
            centre_x = snapshot.window.x + x + width // 2
            centre_y = snapshot.window.y + y + height // 2
            box = element.box
            if box.x <= centre_x < box.x + box.width and box.y <= centre_y < box.y + box.height:
                yield element


def _innermost(snapshot: Snapshot, elements: list[Element]) -> list[Element]:
    """Of elements that contain each other (a bounds match), the deepest ones."""
    ids = {element.id for element in elements}
    return [
        element
        for element in elements
        if not any(child in ids for child in _descendants(snapshot, element))
    ]


def _descendants(snapshot: Snapshot, element: Element) -> Iterator[str]:
    for child in element.children:
        yield child
        yield from _descendants(snapshot, snapshot.elements[child])


def match(snapshot: Snapshot, locator: Locator) -> tuple[Element | None, str]:
    """The one element `locator` names in `snapshot`, or None and why not."""
    what = describe(locator)
    if locator.kind == "stable_id":
        return None, f"{what}: this screen reader gives no toolkit ids"
    if locator.kind in ("role_name", "path") and locator.name and untrusted_name(locator.name):
        return None, f"{what}: a time or a count, not trusted as a name"
    if locator.kind == "role_name" and not locator.name:
        return None, f"{what}: no name to look for"
    if locator.kind == "bounds" and locator.box is None:
        return None, f"{what}: no box recorded"
    found = list(_candidates(snapshot, locator))
    if locator.kind == "bounds":
        found = _innermost(snapshot, found)
    # Elements on screen first: a GTK stack keeps its hidden pages' elements in the tree.
    shown = [element for element in found if _on_window(element)]
    if len(shown) == 1 or (not shown and len(found) == 1):
        return (shown or found)[0], ""
    if not found:
        return None, f"{what}: not in the window {snapshot.title!r}"
    count = len(shown) or len(found)
    return None, f"{what}: ambiguous, {count} elements match (never guessed)"


def locate(snapshot: Snapshot, step: Step) -> Found | NotFound:
    """The first locator of `step` that names exactly one element of `snapshot`."""
    if snapshot.degraded:
        return NotFound((f"{snapshot.app} gives no usable tree ({snapshot.degraded})",))
    reasons: list[str] = []
    for locator in step.locators:
        element, reason = match(snapshot, locator)
        if element is not None:
            return Found(element, snapshot, locator)
        reasons.append(reason)
    return NotFound(tuple(reasons))


def menu_item(snapshot: Snapshot, names: tuple[str, ...], depth: int) -> Element | str | None:
    """The menu or item `names[depth]`, opened from `names[depth - 1]`; a reason if several."""
    scope: set[str] | None = None
    if depth > 0:
        parent = menu_item(snapshot, names, depth - 1)
        if not isinstance(parent, Element):
            return parent
        scope = set(_descendants(snapshot, parent))
    found = [
        element
        for element in snapshot
        if element.role in MENU_ROLES
        and same_name(element.name, names[depth])
        and (scope is None or element.id in scope)
    ]
    shown = [element for element in found if _on_window(element)]
    if len(shown) == 1 or (not shown and len(found) == 1):
        return (shown or found)[0]
    if len(found) > 1:
        return f"menu {' > '.join(names[: depth + 1])!r} is ambiguous: {len(found)} match"
    return None


def locators_for(snapshot: Snapshot, element: Element) -> tuple[Locator, ...]:
    """Ranked locators for an element of a snapshot (a healed step's new ones)."""
    path = named_path(snapshot, element)
    locators: list[Locator] = []
    trusted = element.name and not untrusted_name(element.name)
    if trusted:
        locators.append(Locator("role_name", role=element.role, name=element.name))
    if path and any(part.name for part in path):
        locators.append(
            Locator("path", role=element.role, name=element.name if trusted else "", path=path)
        )
    index = sibling_index(snapshot, element)
    if index >= 0:
        locators.append(Locator("index", role=element.role, path=path, index=index))
    if element.box is not None and not element.box.is_empty:
        box = element.box
        window: Box = snapshot.window
        locators.append(
            Locator(
                "bounds",
                role=element.role,
                box=(box.x - window.x, box.y - window.y, box.width, box.height),
            )
        )
    return tuple(locators)
