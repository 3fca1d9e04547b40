"""Describe one AX element as `ElementFacts`: what a recorded step needs to find it again."""

from __future__ import annotations

from typing import Any

from deskloop.screen.backends.macos.ax import AX_SUCCESS, PyObjCAx
from deskloop.screen.backends.macos.reader import ATTRIBUTES, neutral_node
from deskloop.screen.recording_events import ElementFacts
from deskloop.screen.tree import Box

FACT_ATTRIBUTES = [*ATTRIBUTES, "AXIdentifier", "AXParent", "AXTitleUIElement"]
# NSSecureTextField is role AXTextField with this subrole; some apps report it as the role.
SECURE = "AXSecureTextField"
# A press on a control's own text or image lands on that child: climb this far to the control.
# A table's text sits in an AXCell inside the AXRow that is selected: cells are climbed past.
CLIMB_LIMIT = 3
CONTROL_ROLES = frozenset({
    "button", "check", "radio", "switch", "tab", "entry", "password", "combo", "slider",
    "spin", "menuitem", "menu", "row", "link",
})
# Ancestors read on the way to the window, at most (a runaway AXParent chain stops here).
PATH_LIMIT = 40
# Siblings compared for the index (one message to the app each); past this it is left out.
SIBLING_LIMIT = 100
# Roles whose unnamed elements take the name of their own text (a row of a table).
NAMED_BY_TEXT = frozenset({"row", "cell", "button", "menuitem", "link", "tab", "check", "radio"})


def is_secret(attributes: dict[str, Any]) -> bool:
    return SECURE in (attributes.get("AXRole"), attributes.get("AXSubrole"))


def box_of(attributes: dict[str, Any]) -> Box | None:
    position, size = attributes.get("AXPosition"), attributes.get("AXSize")
    if position is None or size is None:
        return None
    return Box(round(position[0]), round(position[1]), round(size[0]), round(size[1]))


class Describer:
    """Reads elements through `PyObjCAx` (any thread: AX calls need no run loop)."""

    def __init__(self, api: PyObjCAx) -> None:
        self.api = api
        self.app_names: dict[int, str] = {}

    def pid_of(self, element: Any) -> int:
        error, pid = self.api.ax.AXUIElementGetPid(element, None)
        return int(pid) if error == AX_SUCCESS and pid else 0

    def app_name(self, pid: int) -> str:
        if pid not in self.app_names:
            _, title = self.api.copy_attribute(self.api.application(pid), "AXTitle")
            self.app_names[pid] = str(title or "")
        return self.app_names[pid]

    def element_at(self, x: float, y: float) -> Any | None:
        """The control under screen point (x, y): the hit element, or the control it is part of."""
        system = self.api.ax.AXUIElementCreateSystemWide()
        self.api.set_messaging_timeout(system, 0.5)
        error, hit = self.api.ax.AXUIElementCopyElementAtPosition(system, float(x), float(y), None)
        if error != AX_SUCCESS or hit is None:
            return None
        element = hit
        for _ in range(CLIMB_LIMIT + 1):
            attributes = self.api.copy_attributes(element, ["AXRole", "AXSubrole", "AXParent"])
            if is_secret(attributes) or neutral_node("", None, attributes, None).role in CONTROL_ROLES:
                return element
            element = attributes.get("AXParent")
            if element is None:
                break
        return hit

    def focused(self) -> Any | None:
        system = self.api.ax.AXUIElementCreateSystemWide()
        error, element = self.api.copy_attribute(system, "AXFocusedUIElement")
        return element if error == AX_SUCCESS else None

    def focused_is_secret(self) -> bool:
        element = self.focused()
        return element is not None and is_secret(
            self.api.copy_attributes(element, ["AXRole", "AXSubrole"])
        )

    def name_of(self, attributes: dict[str, Any]) -> str:
        node = neutral_node("", None, attributes, None)
        if node.name:
            return node.name
        name = ""
        label = attributes.get("AXTitleUIElement")  # a separate label names it ("To:")
        if label is not None:
            said = self.api.copy_attributes(label, ["AXValue", "AXTitle"])
            name = str(said.get("AXValue") or said.get("AXTitle") or "").strip().rstrip(":")
        if name or node.role not in NAMED_BY_TEXT:
            return name
        return self._text_within(attributes.get("AXChildren") or [], depth=2)

    def _text_within(self, children: list[Any], depth: int) -> str:
        """The first text among the first few children (a row's is in its cell: depth 2)."""
        for child in children[:4]:
            inner = self.api.copy_attributes(child, ["AXRole", "AXValue", "AXTitle", "AXChildren"])
            if inner.get("AXRole") == "AXStaticText":
                return str(inner.get("AXValue") or inner.get("AXTitle") or "")
            if depth > 1 and inner.get("AXRole") in ("AXCell", "AXGroup"):
                text = self._text_within(inner.get("AXChildren") or [], depth - 1)
                if text:
                    return text
        return ""

    def facts(self, element: Any) -> ElementFacts | None:
        """The element as it is now; None when it no longer answers (gone, or its app quit)."""
        attributes = self.api.copy_attributes(element, FACT_ATTRIBUTES)
        if not attributes:
            return None
        secret = is_secret(attributes)
        if secret:
            attributes.pop("AXValue", None)  # never read further than this
        node = neutral_node("", None, attributes, None)
        pid = self.pid_of(element)
        path: list[tuple[str, str]] = []
        window_title, window_box = "", None
        if attributes.get("AXRole") == "AXWindow":
            window_title, window_box = str(attributes.get("AXTitle") or ""), box_of(attributes)
        parent = attributes.get("AXParent")
        for _ in range(PATH_LIMIT):
            if parent is None:
                break
            above = self.api.copy_attributes(parent, FACT_ATTRIBUTES)
            role = above.get("AXRole")
            if role == "AXApplication" or not above:
                break
            name = self.name_of(above) if role != "AXWindow" else str(above.get("AXTitle") or "")
            if name:
                path.append((neutral_node("", None, above, None).role, name))
            if role == "AXWindow":
                window_title, window_box = name, box_of(above)
                break
            parent = above.get("AXParent")
        return ElementFacts(
            app=self.app_name(pid) if pid else "",
            pid=pid,
            role="password" if secret else node.role,
            name=self.name_of(attributes),
            value=None if secret else node.value,
            states=node.states,
            stable_id=str(attributes.get("AXIdentifier") or ""),
            path=tuple(reversed(path)),
            index=self.index_of(element, attributes),
            box=box_of(attributes),
            window_title=window_title,
            window_box=window_box,
            secret=secret,
        )

    def index_of(self, element: Any, attributes: dict[str, Any]) -> int:
        parent = attributes.get("AXParent")
        if parent is None:
            return -1
        error, siblings = self.api.copy_attribute(parent, "AXChildren")
        if error != AX_SUCCESS or not siblings or len(siblings) > SIBLING_LIMIT:
            return -1
        role = attributes.get("AXRole")
        index = 0
        for sibling in siblings:
            if self.api.quartz.CFEqual(sibling, element):
                return index
            if self.api.copy_attribute(sibling, "AXRole")[1] == role:
                index += 1
        return -1
