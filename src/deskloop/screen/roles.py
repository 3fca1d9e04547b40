"""The neutral role vocabulary shared by all backends, and how observations treat each role.

Roles are short on purpose: they appear on every observation line the model reads.
"""

from __future__ import annotations

# Roles a user acts on: named ones get into an observation before plain text.
INTERACTIVE_ROLES = frozenset(
    {
        "button", "toggle", "check", "radio", "entry", "combo", "spin", "slider",
        "menuitem", "tab", "link", "item", "cell", "switch", "scrollbar", "menu",
        "calendar", "colorbutton",
    }
)

# Roles that only arrange other elements: shown only when they carry a name.
CONTAINER_ROLES = frozenset(
    {
        "panel", "pane", "group", "filler", "viewport", "scrollpane", "split", "section",
        "layered", "form", "redundant", "unknown", "embedded", "application", "window",
        "table", "list", "tree", "toolbar", "tabs", "menubar", "statusbar", "row",
        "header", "footer", "document",
    }
)

# Roles never worth a line.
HIDDEN_ROLES = frozenset({"separator", "filler", "redundant", "tooltip", "accel"})

# Roles worth a line even without a name or text: a model can still type into or toggle them.
UNNAMED_WORTH_SHOWING = frozenset({"entry", "combo", "spin", "slider", "check", "radio", "toggle"})

TEXT_ROLES = frozenset({"label", "text", "heading", "paragraph", "image", "caption", "static"})

# Roles that hold no text of their own to type into (unless the element says "editable").
TAKES_NO_TEXT = frozenset(
    {
        "button", "toggle", "check", "radio", "menuitem", "menu", "menubar", "tab", "tabs",
        "link", "switch", "scrollbar", "slider", "image", "label", "heading", "separator",
        "colorbutton", "toolbar", "statusbar", "caption", "static",
    }
)

# Roles that come in long runs of similar rows; a long run folds into one observation line.
ROW_ROLES = frozenset({"item", "cell", "menuitem", "row"})
# The rows of a list or table (not of a menu): clicked with the pointer, since their
# accessible action selects nothing on GTK.
LIST_ROW_ROLES = ROW_ROLES - {"menuitem"}

# Containers whose rows fold: a run of rows is grouped under the nearest of these.
ROW_CONTAINER_ROLES = frozenset({"list", "table", "tree", "menu"})

# States shown on an observation line, in the order shown. "default": the window's default
# button (Enter presses it).
SHOWN_STATES = (
    "checked", "mixed", "pressed", "selected", "expanded", "collapsed", "disabled", "default",
)


def is_interactive(role: str) -> bool:
    return role in INTERACTIVE_ROLES


def is_container(role: str) -> bool:
    return role in CONTAINER_ROLES


def takes_text(role: str, states: frozenset[str]) -> bool:
    """Whether typing into an element of this role can land in it."""
    return "editable" in states or role not in TAKES_NO_TEXT
