"""AT-SPI protocol constants: interface names, role numbers and state bits (AT-SPI 2 enums)."""

from __future__ import annotations

ACCESSIBLE = "org.a11y.atspi.Accessible"
ACTION = "org.a11y.atspi.Action"
APPLICATION = "org.a11y.atspi.Application"
CACHE = "org.a11y.atspi.Cache"
COMPONENT = "org.a11y.atspi.Component"
EDITABLE_TEXT = "org.a11y.atspi.EditableText"
SELECTION = "org.a11y.atspi.Selection"
TEXT = "org.a11y.atspi.Text"
VALUE = "org.a11y.atspi.Value"
STATUS = "org.a11y.Status"
PROPERTIES = "org.freedesktop.DBus.Properties"

REGISTRY = "org.a11y.atspi.Registry"
ROOT_PATH = "/org/a11y/atspi/accessible/root"
NULL_PATH = "/org/a11y/atspi/null"
CACHE_PATH = "/org/a11y/atspi/cache"
COORDS_SCREEN = 0
# Extents of a widget that is not mapped come back as this (INT_MIN) on x and y.
UNMAPPED = -(2**31)

# AtspiRole number -> neutral short role (roles.py); unlisted roles become "unknown".
ROLE_NAMES: dict[int, str] = {
    2: "alert", 3: "image", 4: "button", 5: "calendar", 6: "canvas", 7: "check",
    8: "menuitem", 9: "colorbutton", 10: "header", 11: "combo", 12: "entry", 14: "window",
    16: "dialog", 18: "canvas", 19: "filechooser", 20: "filler", 22: "fontchooser",
    23: "window", 24: "pane", 25: "document", 26: "image", 27: "image", 28: "window",
    29: "label", 30: "layered", 31: "list", 32: "item", 33: "menu", 34: "menubar",
    35: "menuitem", 36: "pane", 37: "tab", 38: "tabs", 39: "panel", 40: "password",
    41: "menu", 42: "progress", 43: "button", 44: "radio", 45: "menuitem", 46: "pane",
    47: "header", 48: "scrollbar", 49: "scrollpane", 50: "separator", 51: "slider",
    52: "spin", 53: "split", 54: "statusbar", 55: "table", 56: "cell", 57: "header",
    58: "header", 59: "menuitem", 60: "terminal", 61: "text", 62: "toggle", 63: "toolbar",
    64: "tooltip", 65: "tree", 66: "tree", 67: "unknown", 68: "viewport", 69: "window",
    71: "header", 72: "footer", 73: "paragraph", 75: "application", 76: "combo",
    78: "embedded", 79: "entry", 82: "document", 83: "heading", 84: "page", 85: "section",
    86: "redundant", 87: "form", 88: "link", 90: "row", 91: "item", 94: "document",
    95: "document", 98: "list", 99: "group", 101: "alert", 102: "alert", 103: "progress",
    110: "section", 116: "static", 129: "button",
}
ROLE_FRAME = 23
ROLE_PASSWORD_TEXT = 40
ROLE_SCROLL_BAR = 48
ROLE_APPLICATION = 75

# AtspiStateType bit numbers.
STATE_ACTIVE = 1
STATE_CHECKED = 4
STATE_COLLAPSED = 5
STATE_EDITABLE = 7
STATE_ENABLED = 8
STATE_EXPANDABLE = 9
STATE_EXPANDED = 10
STATE_FOCUSABLE = 11
STATE_FOCUSED = 12
STATE_MULTI_LINE = 17
STATE_PRESSED = 20
STATE_SELECTED = 23
STATE_SENSITIVE = 24
STATE_SHOWING = 25
STATE_VISIBLE = 30
STATE_MANAGES_DESCENDANTS = 31
STATE_INDETERMINATE = 32
STATE_IS_DEFAULT = 39
STATE_READ_ONLY = 43

# AT-SPI state bit -> neutral state name (what observations and diffs use).
STATE_NAMES: dict[int, str] = {
    STATE_ACTIVE: "active",
    STATE_CHECKED: "checked",
    STATE_EDITABLE: "editable",
    STATE_EXPANDED: "expanded",
    STATE_FOCUSABLE: "focusable",
    STATE_FOCUSED: "focused",
    STATE_INDETERMINATE: "mixed",
    STATE_IS_DEFAULT: "default",
    STATE_MULTI_LINE: "multiline",
    STATE_PRESSED: "pressed",
    STATE_SELECTED: "selected",
    STATE_SHOWING: "showing",
}


def state_bits(words: list[int] | tuple[int, ...]) -> int:
    """The 64-bit state set from the two 32-bit words AT-SPI sends."""
    low, high = ([*list(words), 0, 0])[:2]
    return int(low) | (int(high) << 32)


def has_state(bits: int, state: int) -> bool:
    return bool(bits >> state & 1)
