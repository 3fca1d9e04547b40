"""Read one macOS window through AX into neutral nodes: one batched call per element."""

from __future__ import annotations

from typing import Any

from deskloop.screen.backends.macos.ax import AX_API_DISABLED, AX_SUCCESS, AxApi
from deskloop.screen.errors import ScreenUnavailableError
from deskloop.screen.tree import Box, NodeData, WindowRead

ATTRIBUTES = [
    "AXRole", "AXSubrole", "AXTitle", "AXDescription", "AXValue", "AXPosition", "AXSize",
    "AXFocused", "AXEnabled", "AXSelected", "AXExpanded", "AXChildren",
]
NODE_LIMIT = 3000

ROLE_NAMES = {
    "AXButton": "button", "AXMenuButton": "button", "AXDisclosureTriangle": "button",
    "AXCheckBox": "check", "AXRadioButton": "radio", "AXTextField": "entry",
    "AXTextArea": "entry", "AXSecureTextField": "password", "AXComboBox": "combo",
    "AXPopUpButton": "combo", "AXStaticText": "label", "AXSlider": "slider",
    "AXIncrementor": "spin", "AXProgressIndicator": "progress", "AXMenuBar": "menubar",
    "AXMenuBarItem": "menu", "AXMenu": "menu", "AXMenuItem": "menuitem", "AXTabGroup": "tabs",
    "AXTable": "table", "AXOutline": "tree", "AXList": "list", "AXRow": "row", "AXCell": "cell",
    "AXColumn": "group", "AXLink": "link", "AXImage": "image", "AXGroup": "group",
    "AXScrollArea": "scrollpane", "AXScrollBar": "scrollbar", "AXSplitGroup": "split",
    "AXSplitter": "separator", "AXToolbar": "toolbar", "AXWindow": "window",
    "AXSheet": "dialog", "AXHeading": "heading", "AXWebArea": "document",
    "AXLayoutArea": "pane", "AXValueIndicator": "slider", "AXApplication": "application",
}
SUBROLE_NAMES = {"AXTabButton": "tab", "AXSwitch": "switch", "AXSearchField": "entry"}
VALUE_ROLES = frozenset({"entry", "combo", "slider", "spin", "progress"})


def neutral_role(attributes: dict[str, Any]) -> str:
    subrole = SUBROLE_NAMES.get(str(attributes.get("AXSubrole") or ""))
    return subrole or ROLE_NAMES.get(str(attributes.get("AXRole") or ""), "unknown")


def _box(attributes: dict[str, Any]) -> Box | None:
    position, size = attributes.get("AXPosition"), attributes.get("AXSize")
    if position is None or size is None:
        return None
    return Box(round(position[0]), round(position[1]), round(size[0]), round(size[1]))


def _check_state(value: Any) -> str | None:
    """Check boxes report 0, 1, or 2 for mixed; some apps a word instead, which says nothing."""
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return {1: "checked", 2: "mixed"}.get(number, "unchecked")


def neutral_node(
    ref: str, parent_ref: str | None, attributes: dict[str, Any], box: Box | None
) -> NodeData:
    role = neutral_role(attributes)
    value = attributes.get("AXValue")
    states = set()
    if attributes.get("AXFocused"):
        states.add("focused")
    if attributes.get("AXEnabled") is False:
        states.add("disabled")
    if attributes.get("AXSelected"):
        states.add("selected")
    if attributes.get("AXExpanded") is True:
        states.add("expanded")
    if role in ("check", "radio", "switch", "tab"):
        state = _check_state(value)
        if state is not None:
            states.add(state)
    shown_value = None
    if role in VALUE_ROLES and value is not None:
        shown_value = str(value)
    actions = ["click"] if role not in ("label", "image", "group", "window") else []
    if role in ("entry", "combo"):
        actions.append("type")
    if role in ("slider", "spin", "entry"):
        actions.append("set_value")
    name = str(attributes.get("AXTitle") or attributes.get("AXDescription") or "")
    if role == "label" and not name and value is not None:
        name = str(value)
    return NodeData(
        ref=ref,
        parent_ref=parent_ref,
        role=role,
        name=name,
        value=shown_value,
        description=str(attributes.get("AXDescription") or "") if attributes.get("AXTitle") else "",
        box=box,
        states=frozenset(states - {"unchecked"}),
        actions=tuple(actions),
    )


def window_of(ax: AxApi, app: Any) -> Any | None:
    """The app's focused window, else its first window; raises when AX is off."""
    error, window = ax.copy_attribute(app, "AXFocusedWindow")
    if error == AX_API_DISABLED:
        raise ScreenUnavailableError(
            "macOS refuses accessibility calls: run `deskloop doctor` for the permission fix"
        )
    if error == AX_SUCCESS and window is not None:
        return window
    error, windows = ax.copy_attribute(app, "AXWindows")
    return windows[0] if error == AX_SUCCESS and windows else None


def read_window(ax: AxApi, name: str, pid: int) -> tuple[WindowRead, dict[str, Any]]:
    """The app's window as neutral nodes in tree order, and the AX element of each ref."""
    app = ax.application(pid)
    window = window_of(ax, app)
    if window is None:
        empty = WindowRead(name, pid, name, Box(0, 0, 0, 0), (), "the app has no open window")
        return empty, {}
    elements: dict[str, Any] = {}
    nodes: list[NodeData] = []
    window_attributes = ax.copy_attributes(window, ATTRIBUTES)
    window_box = _box(window_attributes) or Box(0, 0, 0, 0)
    stack: list[tuple[Any, str | None, dict[str, Any] | None]] = [(window, None, window_attributes)]
    while stack and len(nodes) < NODE_LIMIT:
        element, parent_ref, attributes = stack.pop()
        attributes = attributes if attributes is not None else ax.copy_attributes(element, ATTRIBUTES)
        ref = ax.element_key(element)
        box = _box(attributes)
        clipped = box.intersection(window_box) if box is not None else None
        if box is not None and not box.is_empty and clipped is None and parent_ref is not None:
            continue  # scrolled out of the window: neither it nor its children are seen
        elements[ref] = element
        nodes.append(neutral_node(ref, parent_ref, attributes, clipped))
        children = attributes.get("AXChildren") or []
        stack.extend((child, ref, None) for child in reversed(list(children)) if child is not None)
    title = str(window_attributes.get("AXTitle") or name)
    degraded = None
    if len(nodes) <= 1:
        degraded = "the app's window exposes no elements; use capture_screenshot to see it"
    return WindowRead(name, pid, title, window_box, tuple(nodes), degraded), elements
