"""Read one window of one app into neutral nodes, fast.

The recipe measured in SCREEN-NOTES.md: one `Cache.GetItems` for everything the app
has cached, `GetChildren` only where the cache is incomplete (tables and tree views
that manage their own cells, GTK4), pipelined `GetExtents` for showing nodes only, and
clipping to the window's box, level by level so scrolled-out rows are never expanded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from deskloop.screen.backends.atspi import constants as c
from deskloop.screen.backends.atspi.connection import Caller, DBusCallError
from deskloop.screen.roles import UNNAMED_WORTH_SHOWING
from deskloop.screen.tree import Box, NodeData, WindowRead

TEXT_LIMIT = 2000  # characters of an editable field's text read per snapshot
NODE_LIMIT = 5000  # nodes fetched one by one per read, a guard against huge tables
EXTENTS_CHUNK = 48  # uncached children whose extents are asked at once
# Accessible properties read one by one where a toolkit has no Properties.GetAll.
PROPERTY_NAMES = ("Name", "Description", "ChildCount")


def _never_shown(node: RawNode) -> bool:
    """Unnamed nodes without text, value or focus never get an observation line, so their
    extents are not worth a call (about a third of a GTK window); their children are still
    walked and clipped one by one."""
    if node.name or node.has(c.STATE_FOCUSED) or c.TEXT in node.interfaces:
        return False
    return c.VALUE not in node.interfaces and neutral_role(node) not in UNNAMED_WORTH_SHOWING


@dataclass
class RawNode:
    """One accessible object as AT-SPI describes it."""

    path: str
    parent: str | None
    index: int
    child_count: int
    interfaces: frozenset[str]
    name: str
    role: int
    description: str
    states: int
    children: list[str] = field(default_factory=list)
    box: Box | None = None
    text: str | None = None

    def has(self, state: int) -> bool:
        return c.has_state(self.states, state)


@dataclass
class ToolkitQuirks:
    """What one app's toolkit leaves out of AT-SPI, learnt on first contact and kept per app."""

    toolkit: str = ""  # Application.ToolkitName: "GTK", "Qt", "Chromium", ...
    version: str = ""
    properties_get_all: bool = True

    @property
    def sets_showing(self) -> bool:
        """GTK 4 sets SHOWING on windows but not on the widgets in them (gtk4-demo, 4.8)."""
        return not (self.toolkit == "GTK" and self.version.startswith("4."))


def _path_of(ref: Any) -> str:
    """An object reference `(bus name, path)` as its path (a peer is one app)."""
    return str(ref[1])


def node_from_cache_item(item: Any) -> RawNode:
    path, _app, parent, index, child_count, interfaces, name, role, description, states = item
    parent_path = _path_of(parent)
    return RawNode(
        path=_path_of(path),
        parent=None if parent_path in (c.NULL_PATH, _path_of(path)) else parent_path,
        index=int(index),
        child_count=int(child_count),
        interfaces=frozenset(interfaces),
        name=str(name),
        role=int(role),
        description=str(description),
        states=c.state_bits(states),
    )


def cache_fingerprint(items: list[Any]) -> int | None:
    """A cheap digest of everything the cache says (names, states, links); None if empty."""
    return hash(repr(items)) if items else None


class WindowReader:
    """Reads windows of one app over its connection (a peer socket when it offers one)."""

    def __init__(
        self,
        caller: Caller,
        app_name: str,
        pid: int,
        known: dict[str, tuple[int, frozenset[str]]] | None = None,
        quirks: ToolkitQuirks | None = None,
    ) -> None:
        self.caller = caller
        self.quirks = quirks or ToolkitQuirks()
        self.known = known if known is not None else {}
        self.app_name = app_name
        self.pid = pid
        self.nodes: dict[str, RawNode] = {}
        self.fetched_one_by_one = 0
        self.fingerprint: int | None = None
        self._reached: set[str] = set()  # showing nodes found by the current walk
        self._completed: set[str] = set()  # nodes whose children were asked for

    async def load_cache(self) -> list[str]:
        """Everything the app has cached, with children linked in index order; returns the
        paths of the top-level windows, asked for in the same batch (one round trip)."""
        cached, roots = await self.caller.gather(
            [
                self.caller.request(c.CACHE_PATH, c.CACHE, "GetItems"),
                self.caller.request(c.ROOT_PATH, c.ACCESSIBLE, "GetChildren"),
            ]
        )
        if isinstance(roots, BaseException):
            raise roots
        if isinstance(cached, BaseException) and not isinstance(cached, DBusCallError):
            raise cached
        # GTK4 and some toolkits have no cache: the walk then fetches nodes one by one.
        items = [] if isinstance(cached, BaseException) else cached[0]
        self.nodes = {}
        self.fingerprint = cache_fingerprint(items)
        for item in items:
            node = node_from_cache_item(item)
            self.nodes[node.path] = node
        for node in sorted(self.nodes.values(), key=lambda n: n.index):
            if node.parent in self.nodes and node.path != node.parent:
                self.nodes[node.parent].children.append(node.path)
        return [_path_of(ref) for ref in roots[0]]

    async def fetch_node(self, path: str, parent: str | None) -> RawNode:
        """One node the cache left out: state and properties, plus role and interfaces the
        first time (an object keeps those for life, so `known` remembers them)."""
        known = self.known.get(path)
        # Decided per call: other fetches of the same batch may learn the quirk meanwhile.
        get_all = self.quirks.properties_get_all
        requests = [
            self.caller.request(path, c.ACCESSIBLE, "GetState"),
            *self._property_requests(path, get_all),
        ]
        if known is None:
            requests += [
                self.caller.request(path, c.ACCESSIBLE, "GetRole"),
                self.caller.request(path, c.ACCESSIBLE, "GetInterfaces"),
            ]
        results = await self.caller.gather(requests)
        answered = not isinstance(results[0], BaseException)
        if get_all and answered and isinstance(results[1], DBusCallError):
            # It answered GetState but not GetAll: the toolkit lacks GetAll (Qt 6).
            self.quirks.properties_get_all = False
            return await self.fetch_node(path, parent)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        properties = 1 if get_all else len(PROPERTY_NAMES)
        if known is None:
            role, interfaces = results[1 + properties], results[2 + properties]
            known = (int(role[0]), frozenset(interfaces[0]))
            self.known[path] = known
        if get_all:
            props = {key: variant.value for key, variant in results[1][0].items()}
        else:
            replies = results[1 : 1 + properties]
            props = {name: reply[0].value for name, reply in zip(PROPERTY_NAMES, replies, strict=True)}
        self.fetched_one_by_one += 1
        return RawNode(
            path=path,
            parent=parent,
            index=0,
            child_count=int(props.get("ChildCount", 0)),
            interfaces=known[1],
            name=str(props.get("Name", "")),
            role=known[0],
            description=str(props.get("Description", "")),
            states=c.state_bits(results[0][0]),
        )

    def _property_requests(self, path: str, get_all: bool) -> list[asyncio.Future[list[Any]]]:
        if get_all:
            return [self.caller.request(path, c.PROPERTIES, "GetAll", "s", (c.ACCESSIBLE,))]
        return [
            self.caller.request(path, c.PROPERTIES, "Get", "ss", (c.ACCESSIBLE, name))
            for name in PROPERTY_NAMES
        ]

    async def top_windows(self, paths: list[str]) -> list[RawNode]:
        """The app's top-level windows (the root's children), cached or fetched."""
        missing = [path for path in paths if path not in self.nodes]
        fetched = await self.caller.gather(self.fetch_node(path, None) for path in missing)
        for path, node in zip(missing, fetched, strict=True):
            if isinstance(node, BaseException):
                raise node
            self.nodes[path] = node
        return [self.nodes[path] for path in paths]

    async def _extents(self, nodes: list[RawNode]) -> None:
        with_component = [node for node in nodes if c.COMPONENT in node.interfaces]
        results = await self.caller.gather(
            self.caller.request(node.path, c.COMPONENT, "GetExtents", "u", (c.COORDS_SCREEN,))
            for node in with_component
        )
        for node, result in zip(with_component, results, strict=True):
            if isinstance(result, BaseException):
                continue
            x, y, width, height = result[0]
            node.box = None if x == c.UNMAPPED else Box(x, y, width, height)

    async def _complete_children(self, parents: list[RawNode], window: Box) -> list[RawNode]:
        """Ask for the children the cache left out and read the ones inside the window;
        returns the parents whose child lists changed."""
        incomplete = [
            node
            for node in parents
            if node.path not in self._completed
            and node.child_count != 0
            and (node.child_count < 0 or node.child_count != len(node.children))
        ]
        if not incomplete:
            return []
        self._completed.update(node.path for node in incomplete)
        replies = await self.caller.gather(
            self.caller.request(node.path, c.ACCESSIBLE, "GetChildren") for node in incomplete
        )
        completed: list[RawNode] = []
        searches = []
        for node, reply in zip(incomplete, replies, strict=True):
            if isinstance(reply, BaseException):
                continue
            node.children = [_path_of(ref) for ref in reply[0]]
            completed.append(node)
            unknown = [path for path in node.children if path not in self.nodes]
            searches.append(self._children_in_window(node.path, unknown, window))
        found = await asyncio.gather(*searches)
        wanted = [item for items in found for item in items]
        fetched = await self.caller.gather(
            self.fetch_node(path, parent) for path, parent, _ in wanted
        )
        for (_, _, box), node in zip(wanted, fetched, strict=True):
            if isinstance(node, RawNode):
                node.box = box
                self.nodes[node.path] = node
        return completed

    async def _children_in_window(
        self, parent: str, paths: list[str], window: Box
    ) -> list[tuple[str, str, Box]]:
        """Extents first, in chunks: a table's rows come in order, so once rows were inside
        the window and a whole chunk falls outside, the rest are scrolled out too."""
        inside: list[tuple[str, str, Box]] = []
        seen_inside = False
        for start in range(0, len(paths), EXTENTS_CHUNK):
            room = NODE_LIMIT - self.fetched_one_by_one - len(inside)
            chunk = paths[start : start + min(EXTENTS_CHUNK, max(room, 0))]
            if not chunk:
                break
            boxes = await self.caller.gather(
                self.caller.request(path, c.COMPONENT, "GetExtents", "u", (c.COORDS_SCREEN,))
                for path in chunk
            )
            chunk_inside = False
            for path, reply in zip(chunk, boxes, strict=True):
                if isinstance(reply, BaseException) or reply[0][0] == c.UNMAPPED:
                    continue
                box = Box(*reply[0])
                if box.is_empty or box.intersection(window) is not None:
                    inside.append((path, parent, box))
                    chunk_inside = True
            if seen_inside and not chunk_inside:
                break
            seen_inside = seen_inside or chunk_inside
        return inside

    async def _read_texts(self, nodes: list[RawNode]) -> None:
        editable = [
            node
            for node in nodes
            if c.TEXT in node.interfaces
            and node.role != c.ROLE_PASSWORD_TEXT
            and (c.EDITABLE_TEXT in node.interfaces or node.has(c.STATE_EDITABLE))
        ]
        with_value = [
            node for node in nodes if c.VALUE in node.interfaces and node.role != c.ROLE_SCROLL_BAR
        ]
        # Both kinds go out in one batch: one round trip, not two.
        texts, values = await asyncio.gather(
            self.caller.gather(
                self.caller.request(node.path, c.TEXT, "GetText", "ii", (0, TEXT_LIMIT))
                for node in editable
            ),
            self.caller.gather(
                self.caller.request(node.path, c.PROPERTIES, "Get", "ss", (c.VALUE, "CurrentValue"))
                for node in with_value
            ),
        )
        for node, text in zip(editable, texts, strict=True):
            if not isinstance(text, BaseException):
                node.text = str(text[0])
        for node, value in zip(with_value, values, strict=True):
            if not isinstance(value, BaseException) and node.text is None:
                number = float(value[0].value)
                node.text = str(int(number)) if number.is_integer() else f"{number:g}"

    def _showing_below(self, roots: list[RawNode], showing_state: int) -> list[RawNode]:
        """Showing nodes reachable from `roots` through known child links (no I/O)."""
        found: list[RawNode] = []
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node.path in self._reached:
                continue
            self._reached.add(node.path)
            found.append(node)
            for path in node.children:
                child = self.nodes.get(path)
                if child is not None and child.has(showing_state):
                    stack.append(child)
        return found

    async def read_window(self, window: RawNode) -> tuple[RawNode, list[RawNode]]:
        """The window and its showing, on-window descendants, in tree order.

        The cache gives the structure without round trips, so only the parts it leaves out
        (tables, tree views) cost extra rounds, and all extents go out in one batch.
        """
        # GTK4 sets no SHOWING below the window; VISIBLE plus the box check stands in
        # (SCREEN-NOTES.md).
        uses_showing = window.has(c.STATE_SHOWING) and self.quirks.sets_showing
        showing_state = c.STATE_SHOWING if uses_showing else c.STATE_VISIBLE
        await self._extents([window])
        window_box = window.box or Box(0, 0, 0, 0)
        self._reached = set()
        self._completed = set()
        showing = {node.path: node for node in self._showing_below([window], showing_state)}
        frontier = list(showing.values())
        while frontier:
            completed = await self._complete_children(frontier, window_box)
            # Walk the completed parents again: their new children may lead anywhere.
            self._reached.difference_update(node.path for node in completed)
            frontier = self._showing_below(completed, showing_state)
            showing.update((node.path, node) for node in frontier)
        await self._extents(
            [node for node in showing.values() if node.box is None and not _never_shown(node)]
        )
        ordered: list[RawNode] = []
        placed: set[str] = set()
        stack = [window.path]
        while stack:
            path = stack.pop()
            if path in placed:
                continue  # a child listed twice, or a cycle in a buggy tree
            placed.add(path)
            node = self.nodes[path]
            ordered.append(node)
            kept_children = []
            for child_path in node.children:
                child = self.nodes.get(child_path)
                if (
                    child is None
                    or child_path not in self._reached
                    or not self._on_window(child, window_box)
                ):
                    continue
                # Cached parent links can point at nodes outside the cache; the walk is truth.
                child.parent = path
                kept_children.append(child_path)
            stack.extend(reversed(kept_children))
        await self._read_texts(ordered)
        return window, ordered

    @staticmethod
    def _on_window(node: RawNode, window: Box) -> bool:
        """Clip to the window. SHOWING is not "on screen": scrolled-out rows still say it
        (SCREEN-NOTES.md). A degenerate box (mousepad's hidden tab reports -1 × -1) says
        nothing about where the children are, so it is kept and walked."""
        box = node.box
        if box is None or box.is_empty:
            node.box = None
            return True
        node.box = box.intersection(window)
        return node.box is not None


def neutral_states(node: RawNode) -> frozenset[str]:
    return _state_names(node.states)


@lru_cache(maxsize=1024)
def _state_names(bits: int) -> frozenset[str]:
    # A window has a handful of distinct state sets; each is worked out once.
    names = {name for bit, name in c.STATE_NAMES.items() if c.has_state(bits, bit)}
    if c.has_state(bits, c.STATE_EXPANDABLE) and not c.has_state(bits, c.STATE_EXPANDED):
        names.add("collapsed")
    if not c.has_state(bits, c.STATE_SENSITIVE):
        names.add("disabled")
    return frozenset(names)


def neutral_role(node: RawNode) -> str:
    role = c.ROLE_NAMES.get(node.role, "unknown")
    if role == "text" and (node.has(c.STATE_EDITABLE) or c.EDITABLE_TEXT in node.interfaces):
        return "entry"
    return role


def neutral_actions(node: RawNode) -> tuple[str, ...]:
    actions = []
    if c.ACTION in node.interfaces:
        actions.append("click")
    if c.EDITABLE_TEXT in node.interfaces:
        actions.append("type")
    if c.VALUE in node.interfaces:
        actions.append("set_value")
    if node.has(c.STATE_FOCUSABLE):
        actions.append("focus")
    return tuple(actions)


def to_window_read(
    app_name: str,
    pid: int,
    window: RawNode,
    nodes: list[RawNode],
    degraded: str | None,
    fingerprint: int | None = None,
) -> WindowRead:
    """The neutral form of one read: AT-SPI roles and states mapped to shared names."""
    neutral = tuple(
        NodeData(
            ref=node.path,
            parent_ref=node.parent if node is not window else None,
            role=neutral_role(node),
            name=node.name,
            value=node.text,
            description=node.description,
            box=node.box,
            states=neutral_states(node),
            actions=neutral_actions(node),
        )
        for node in nodes
    )
    return WindowRead(
        app=app_name,
        pid=pid,
        title=window.name or app_name,
        box=window.box or Box(0, 0, 0, 0),
        nodes=neutral,
        degraded=degraded,
        fingerprint=fingerprint,
    )
