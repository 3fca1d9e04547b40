"""One AT-SPI object described as `ElementFacts`: enough to find it again in a later run.

Reads the object, its named ancestors up to the window, its place among siblings of the
same role and its box, in a few pipelined rounds over the app's peer socket (each round
about 0.1 ms, SCREEN-NOTES.md).
"""

from __future__ import annotations

from typing import Any

from deskloop.screen.backends.atspi import constants as c
from deskloop.screen.backends.atspi.connection import Caller, DBusCallError
from deskloop.screen.backends.atspi.reader import RawNode, neutral_role, neutral_states
from deskloop.screen.recording_events import ElementFacts
from deskloop.screen.roles import INTERACTIVE_ROLES
from deskloop.screen.tree import Box

TEXT_LIMIT = 4000  # characters of a field's text kept as its value
MAX_DEPTH = 40  # ancestors walked, a guard against a cycle in a buggy tree
SIBLING_LIMIT = 400  # siblings whose roles are read to place an element among them
# What the pointer lands on inside a button or a row: the label or icon, not the control.
INSIDE_A_CONTROL = frozenset(
    {
        "label",
        "image",
        "filler",
        "panel",
        "unknown",
        "static",
        "text",
        "section",
        "redundant",
        "icon",
    }
)
CLIMB_LIMIT = 4  # levels climbed from what is under the pointer to the control it is in
WINDOW_ROLES = frozenset({c.ROLE_FRAME, 16, 28, 69, 14})  # frame, dialog, file chooser, window


def _path_of(ref: Any) -> str:
    return str(ref[1])


class ElementDescriber:
    """Describes objects of any app, given that app's connection."""

    async def basics(self, caller: Caller, path: str) -> RawNode:
        """Role, name, states, interfaces and parent of one object, in one round."""
        role, states, name, parent, interfaces = await caller.gather(
            [
                caller.request(path, c.ACCESSIBLE, "GetRole"),
                caller.request(path, c.ACCESSIBLE, "GetState"),
                caller.request(path, c.PROPERTIES, "Get", "ss", (c.ACCESSIBLE, "Name")),
                caller.request(path, c.PROPERTIES, "Get", "ss", (c.ACCESSIBLE, "Parent")),
                caller.request(path, c.ACCESSIBLE, "GetInterfaces"),
            ]
        )
        for reply in (role, states, name):
            if isinstance(reply, BaseException):
                raise reply
        parent_path = None
        if not isinstance(parent, BaseException):
            parent_path = _path_of(parent[0].value)
            if parent_path in (c.NULL_PATH, path):
                parent_path = None
        return RawNode(
            path=path,
            parent=parent_path,
            index=0,
            child_count=0,
            interfaces=frozenset()
            if isinstance(interfaces, BaseException)
            else frozenset(interfaces[0]),
            # GTK pads menu item names with spaces where the accelerator goes.
            name=str(name[0].value).strip(),
            role=int(role[0]),
            description="",
            states=c.state_bits(states[0]),
        )

    async def deepest_at(self, caller: Caller, x: int, y: int) -> str | None:
        """The deepest object at screen point (x, y) in the app, or None if none is there."""
        [roots] = await caller.call(c.ROOT_PATH, c.ACCESSIBLE, "GetChildren")
        tops = [_path_of(ref) for ref in roots]
        extents = await caller.gather(
            caller.request(path, c.COMPONENT, "GetExtents", "u", (c.COORDS_SCREEN,))
            for path in tops
        )
        states = await caller.gather(
            caller.request(path, c.ACCESSIBLE, "GetState") for path in tops
        )
        containing: list[tuple[int, str]] = []
        for path, box, state in zip(tops, extents, states, strict=True):
            if isinstance(box, BaseException) or isinstance(state, BaseException):
                continue
            bits = c.state_bits(state[0])
            if not (c.has_state(bits, c.STATE_SHOWING) or c.has_state(bits, c.STATE_VISIBLE)):
                continue
            bx, by, width, height = box[0]
            if bx <= x < bx + width and by <= y < by + height:
                containing.append((width * height, path))
        # A popup menu lies over its window and is the smaller of the two.
        for _, top in sorted(containing):
            path = top
            for _ in range(MAX_DEPTH):
                try:
                    [child] = await caller.call(
                        path, c.COMPONENT, "GetAccessibleAtPoint", "iiu", (x, y, c.COORDS_SCREEN)
                    )
                except DBusCallError:
                    break
                child_path = _path_of(child)
                if child_path in (c.NULL_PATH, path, ""):
                    break
                path = child_path
            return path
        return None

    async def items_on_screen(self, caller: Caller, path: str) -> list[tuple[Box, str]]:
        """The children of a menu with a box on screen (none while it is still closed)."""
        try:
            [children] = await caller.call(path, c.ACCESSIBLE, "GetChildren")
        except DBusCallError:
            return []
        paths = [_path_of(ref) for ref in children]
        boxes = await caller.gather(
            caller.request(child, c.COMPONENT, "GetExtents", "u", (c.COORDS_SCREEN,))
            for child in paths
        )
        found = []
        for child, reply in zip(paths, boxes, strict=True):
            box = _box(reply)
            if box is not None and not box.is_empty and box.width > 1:
                found.append((box, child))
        return found

    async def selected_child(self, caller: Caller, path: str) -> str | None:
        """The first selected child of a list or table (after a selection change)."""
        try:
            [child] = await caller.call(path, c.SELECTION, "GetSelectedChild", "i", (0,))
        except DBusCallError:
            return None
        child_path = _path_of(child)
        return None if child_path in (c.NULL_PATH, "") else child_path

    async def describe(
        self, caller: Caller, app: str, pid: int, path: str, climb: bool
    ) -> ElementFacts:
        """The facts of `path`; with `climb`, of the control it sits in (a label inside a
        button is the button, named by the label when the button has no name)."""
        node = await self.basics(caller, path)
        chain = [node]
        while chain[-1].parent is not None and len(chain) < MAX_DEPTH:
            parent = await self.basics(caller, chain[-1].parent)
            if parent.role == c.ROLE_APPLICATION:
                break
            chain.append(parent)
        target = 0
        if climb and neutral_role(node) in INSIDE_A_CONTROL:
            for level, ancestor in enumerate(chain[1 : CLIMB_LIMIT + 1], start=1):
                if neutral_role(ancestor) in INTERACTIVE_ROLES:
                    target = level
                    break
        element = chain[target]
        name = element.name or (node.name if target else "")
        if not name:
            name = await self._label_inside(caller, element)
        ancestors = chain[target + 1 :]
        window = ancestors[-1] if ancestors else element
        path_parts = tuple(
            (neutral_role(part), part.name) for part in reversed(ancestors) if part.name
        )
        box, window_box, index, value = await self._place(caller, element, window)
        role = neutral_role(element)
        secret = element.role == c.ROLE_PASSWORD_TEXT
        return ElementFacts(
            app=app,
            pid=pid,
            role=role,
            name=name,
            value=None if secret else value,
            states=neutral_states(element),
            stable_id=await self._stable_id(caller, element.path),
            path=path_parts,
            index=index,
            box=box,
            window_title=window.name,
            window_box=window_box,
            secret=secret,
        )

    async def _label_inside(self, caller: Caller, node: RawNode) -> str:
        """The text of the first named child: a list row is named by the label it holds."""
        try:
            [children] = await caller.call(node.path, c.ACCESSIBLE, "GetChildren")
        except DBusCallError:
            return ""
        names = await caller.gather(
            caller.request(_path_of(ref), c.PROPERTIES, "Get", "ss", (c.ACCESSIBLE, "Name"))
            for ref in children[:8]
        )
        for name in names:
            if not isinstance(name, BaseException) and str(name[0].value).strip():
                return str(name[0].value).strip()
        return ""

    async def _place(
        self, caller: Caller, element: RawNode, window: RawNode
    ) -> tuple[Box | None, Box | None, int, str | None]:
        """Box, window box, index among same-role siblings and text, in one round (and
        one more for the siblings' roles)."""
        wants_text = c.TEXT in element.interfaces and (
            c.EDITABLE_TEXT in element.interfaces or element.has(c.STATE_EDITABLE)
        )
        requests = [
            caller.request(element.path, c.COMPONENT, "GetExtents", "u", (c.COORDS_SCREEN,)),
            caller.request(window.path, c.COMPONENT, "GetExtents", "u", (c.COORDS_SCREEN,)),
            caller.request(element.path, c.ACCESSIBLE, "GetIndexInParent"),
        ]
        if element.parent is not None:
            requests.append(caller.request(element.parent, c.ACCESSIBLE, "GetChildren"))
        if wants_text and element.role != c.ROLE_PASSWORD_TEXT:
            requests.append(caller.request(element.path, c.TEXT, "GetText", "ii", (0, TEXT_LIMIT)))
        replies = await caller.gather(requests)
        box = _box(replies[0])
        window_box = _box(replies[1])
        value: str | None = None
        if (
            wants_text
            and element.role != c.ROLE_PASSWORD_TEXT
            and not isinstance(replies[-1], BaseException)
        ):
            value = str(replies[-1][0])
        index = -1
        own = replies[2]
        siblings = replies[3] if element.parent is not None else None
        if (
            not isinstance(own, BaseException)
            and siblings is not None
            and not isinstance(siblings, BaseException)
        ):
            position = int(own[0])
            before = [_path_of(ref) for ref in siblings[0][: min(position, SIBLING_LIMIT)]]
            roles = await caller.gather(
                caller.request(path, c.ACCESSIBLE, "GetRole") for path in before
            )
            index = sum(
                1
                for role in roles
                if not isinstance(role, BaseException) and int(role[0]) == element.role
            )
        return box, window_box, index, value

    async def _stable_id(self, caller: Caller, path: str) -> str:
        """`AccessibleId` (at-spi2-core 2.34+), where the toolkit sets one."""
        try:
            value = await caller.get_property(path, c.ACCESSIBLE, "AccessibleId")
        except (DBusCallError, TimeoutError):
            return ""
        return str(value or "")


def _box(reply: Any) -> Box | None:
    if isinstance(reply, BaseException):
        return None
    x, y, width, height = reply[0]
    if x == c.UNMAPPED:
        return None
    return Box(int(x), int(y), int(width), int(height))
