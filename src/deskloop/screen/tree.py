"""The neutral element tree every backend produces, and snapshots that bind ids to it.

Ids like `e12` name one element of one snapshot. Within a session an element keeps its
id while the backend reports the same object, so diffs compare like with like; an id
that the latest snapshot no longer has is stale.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from deskloop.screen.errors import ElementNotFoundError, StaleElementError


@dataclass(frozen=True)
class Box:
    """A rectangle in screen pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def center(self) -> tuple[int, int]:
        return (self.x + self.width // 2, self.y + self.height // 2)

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersection(self, other: Box) -> Box | None:
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.width, other.x + other.width)
        bottom = min(self.y + self.height, other.y + other.height)
        if right <= left or bottom <= top:
            return None
        return Box(left, top, right - left, bottom - top)

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]


@dataclass(frozen=True)
class NodeData:
    """One element as a backend reads it, before the session gives it an id.

    `ref` is the backend's handle (an AT-SPI object path, an AX element key); `role`
    is a neutral short role (see `roles.py`); `box` is already clipped to the window.
    """

    ref: str
    parent_ref: str | None
    role: str
    name: str = ""
    value: str | None = None
    description: str = ""
    box: Box | None = None
    states: frozenset[str] = frozenset()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class WindowRead:
    """What a backend read of one window: its nodes in tree order, root first."""

    app: str
    pid: int
    title: str
    box: Box
    nodes: tuple[NodeData, ...]
    degraded: str | None = None
    # A cheap digest the backend can recompute to tell "nothing changed" (None: none).
    fingerprint: int | None = None


@dataclass(frozen=True)
class Element:
    """One element of a snapshot: what the model sees of it, plus the backend's handle."""

    id: str
    ref: str
    role: str
    name: str
    value: str | None
    description: str
    box: Box | None
    states: frozenset[str]
    actions: tuple[str, ...]
    parent: str | None
    children: tuple[str, ...]

    @property
    def identity(self) -> tuple[str, str]:
        """What must still match before acting on this element."""
        return (self.role, self.name)

    def to_json(self, window: Box | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "role": self.role, "name": self.name}
        if self.value is not None:
            data["value"] = self.value
        if self.description:
            data["description"] = self.description
        if self.box is not None:
            data["box"] = self.box.as_list()
        data["states"] = sorted(self.states)
        data["actions"] = list(self.actions)
        data["children"] = list(self.children)
        return data


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One read of one window, with ids bound to its elements (tree order, root first).

    Compared by identity: each read is its own snapshot (and can key caches).
    """

    number: int
    app: str
    pid: int
    title: str
    window: Box
    elements: Mapping[str, Element]
    root: str
    degraded: str | None = None
    fingerprint: int | None = None

    @property
    def focused(self) -> Element | None:
        for element in self.elements.values():
            if "focused" in element.states:
                return element
        return None

    def __iter__(self) -> Iterator[Element]:
        return iter(self.elements.values())

    def to_json(self) -> dict[str, Any]:
        focused = self.focused
        return {
            "snapshot": self.number,
            "app": self.app,
            "pid": self.pid,
            "title": self.title,
            "window": self.window.as_list(),
            "focused": focused.id if focused else None,
            "degraded": self.degraded,
            "elements": [element.to_json() for element in self],
        }


@dataclass
class IdAllocator:
    """Hands out `e1`, `e2`, … and gives the same backend object the same id in a session."""

    by_ref: dict[tuple[int, str], str] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    snapshots: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def id_for(self, pid: int, ref: str) -> str:
        """The id of backend object `ref` of process `pid` (refs repeat across apps)."""
        key = (pid, ref)
        if key not in self.by_ref:
            element_id = f"e{next(self.counter)}"
            self.by_ref[key] = element_id
            self.issued.add(element_id)
        return self.by_ref[key]

    def known(self, element_id: str) -> bool:
        return element_id in self.issued


def build_snapshot(read: WindowRead, ids: IdAllocator) -> Snapshot:
    """Give the nodes of one window read ids and link parents to children."""
    id_of = {node.ref: ids.id_for(read.pid, node.ref) for node in read.nodes}
    children: dict[str, list[str]] = {element_id: [] for element_id in id_of.values()}
    for node in read.nodes:
        parent_id = id_of.get(node.parent_ref) if node.parent_ref else None
        if parent_id is not None:
            children[parent_id].append(id_of[node.ref])
    elements: dict[str, Element] = {}
    for node in read.nodes:
        element_id = id_of[node.ref]
        elements[element_id] = Element(
            id=element_id,
            ref=node.ref,
            role=node.role,
            name=node.name,
            value=node.value,
            description=node.description,
            box=node.box,
            states=node.states,
            actions=node.actions,
            parent=id_of.get(node.parent_ref) if node.parent_ref else None,
            children=tuple(children[element_id]),
        )
    root = id_of[read.nodes[0].ref] if read.nodes else ""
    return Snapshot(
        number=next(ids.snapshots),
        app=read.app,
        pid=read.pid,
        title=read.title,
        window=read.box,
        elements=elements,
        root=root,
        degraded=read.degraded,
        fingerprint=read.fingerprint,
    )


def _number(element_id: str) -> int | None:
    digits = element_id.strip()[1:]
    return int(digits) if element_id.strip().startswith("e") and digits.isdigit() else None


def ids_near(snapshot: Snapshot, element_id: str, count: int = 6) -> list[str]:
    """The on-window ids of `snapshot` closest in number to `element_id` (for error messages)."""
    wanted = _number(element_id)
    on_window = [
        element.id
        for element in snapshot
        if element.box is not None and not element.box.is_empty and element.id != snapshot.root
    ]
    if wanted is None:
        return on_window[:count]
    return sorted(on_window, key=lambda i: (abs((_number(i) or 0) - wanted), i))[:count]


def resolve(snapshot: Snapshot, element_id: str, ids: IdAllocator) -> Element:
    """The element `element_id` names in the latest snapshot, or a clear error."""
    element = snapshot.elements.get(element_id.strip())
    if element is not None:
        return element
    near = ", ".join(
        f"{i} ({snapshot.elements[i].role} {snapshot.elements[i].name!r})"
        for i in sorted(ids_near(snapshot, element_id), key=lambda i: _number(i) or 0)
    )
    near_text = f". Ids on screen near it: {near}" if near else ""
    if ids.known(element_id):
        raise StaleElementError(
            f"stale id: {element_id} is not in the current snapshot {snapshot.number} "
            f"(the window changed): observe again and use a current id{near_text}"
        )
    raise ElementNotFoundError(
        f"no element {element_id!r} in snapshot {snapshot.number}: use an id from the latest "
        f"observation, or find_elements to search for one{near_text}"
    )
