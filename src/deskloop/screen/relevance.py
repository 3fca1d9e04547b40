"""The elements a task is about: its words matched against names, roles and states.

"Tick the unticked checkbutton" is about the enabled check boxes named "checkbutton", the
unchecked one first; "Open the tab named page 2" about the tabs named "page 2" before the
radio of that name. The observation keeps these elements whatever the budget and lists
them first, so a model sees the button a task is about without find_elements. A small
model acts on what it reads first; a large one saves a search.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from deskloop.screen.tree import Element

MAX_MATCHES = 6
_WORD = re.compile(r"[a-z0-9]+")

# Phrases first ("spin button" is a spin, not a button), then single words.
ROLE_PHRASES = {
    "check box": "check",
    "check button": "check",
    "tick box": "check",
    "radio button": "radio",
    "option button": "radio",
    "toggle button": "toggle",
    "spin button": "spin",
    "push button": "button",
    "text entry": "entry",
    "text field": "entry",
    "text box": "entry",
    "text area": "entry",
    "input field": "entry",
    "drop down": "combo",
    "combo box": "combo",
}
ROLE_WORDS = {
    "tick": "check",
    "untick": "check",
    "checkbox": "check",
    "checkbutton": "check",
    "checkmark": "check",
    "radio": "radio",
    "radiobutton": "radio",
    "toggle": "toggle",
    "togglebutton": "toggle",
    "switch": "switch",
    "entry": "entry",
    "field": "entry",
    "input": "entry",
    "textbox": "entry",
    "spin": "spin",
    "spinbutton": "spin",
    "tab": "tab",
    "tabs": "tab",
    "menu": "menu",
    "button": "button",
    "slider": "slider",
    "combo": "combo",
    "dropdown": "combo",
    "link": "link",
    "row": "row",
    "item": "item",
}
# Roles that stand in for one another: a list "row" is an item or cell on most toolkits.
ROLE_ALIASES = {
    "row": {"row", "item", "cell"},
    "item": {"item", "cell", "row"},
    "menu": {"menu", "menuitem"},
    "switch": {"switch", "toggle"},
}

# What a task says about the state of the element it wants.
WANTS_OFF = (
    "unticked",
    "unchecked",
    "not ticked",
    "not checked",
    "not selected",
    "unselected",
    "not pressed",
)
WANTS_BLANK = ("empty", "blank")
WANTS_ON = ("ticked", "checked", "selected", "pressed", "active")
ON_STATES = frozenset({"checked", "selected", "pressed"})

# Words that say nothing about which element: verbs of acting, articles, the app's name.
STOP_WORDS = frozenset(
    {
        "the",
        "a",
        "an",
        "in",
        "on",
        "of",
        "to",
        "into",
        "and",
        "or",
        "with",
        "that",
        "this",
        "is",
        "it",
        "its",
        "be",
        "yet",
        "not",
        "named",
        "called",
        "window",
        "app",
        "click",
        "press",
        "select",
        "open",
        "show",
        "type",
        "write",
        "set",
        "clear",
        "tick",
        "untick",
        "choose",
        "pick",
        "enter",
        "put",
        "fill",
        "replace",
        "words",
        "word",
        "text",
        "then",
        "there",
        "from",
        "at",
        "by",
        "for",
        "as",
        "so",
        "do",
        "please",
        "one",
        "which",
    }
)


@dataclass(frozen=True)
class TaskTerms:
    """What a task's words say: the words left for names, the roles, the wanted state."""

    text: str
    words: frozenset[str]
    roles: frozenset[str]
    wants_on: bool
    wants_off: bool
    wants_blank: bool

    @property
    def empty(self) -> bool:
        return not self.words and not self.roles


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def task_terms(task: str, ignore: Iterable[str] = ()) -> TaskTerms:
    """The terms of `task`; `ignore` holds words that name the app (they match its title)."""
    text = " ".join(_words(task))
    roles = set()
    rest = f" {text} "
    for phrase, role in ROLE_PHRASES.items():
        if f" {phrase} " in rest:
            roles.add(role)
            rest = rest.replace(f" {phrase} ", " ")
    for word in rest.split():
        if word in ROLE_WORDS:
            roles.add(ROLE_WORDS[word])
    ignored = {w for label in ignore for w in _words(label)}
    # Words of a role phrase name a role, not an element ("spin button" is no "link button").
    kept = frozenset(w for w in rest.split() if w not in STOP_WORDS and w not in ignored)
    padded = f" {text} "
    wants_off = any(f" {phrase} " in padded for phrase in WANTS_OFF)
    wants_blank = any(f" {phrase} " in padded for phrase in WANTS_BLANK)
    # "not selected" contains "selected": an off-phrase wins over the on-word inside it.
    on_text = padded
    for phrase in WANTS_OFF:
        on_text = on_text.replace(f" {phrase} ", " ")
    wants_on = any(f" {phrase} " in on_text for phrase in WANTS_ON)
    return TaskTerms(text, kept, frozenset(roles), wants_on, wants_off, wants_blank)


def _role_matches(role: str, wanted: frozenset[str]) -> bool:
    return any(role in ROLE_ALIASES.get(w, {w}) for w in wanted)


def score(element: Element, terms: TaskTerms) -> int:
    """How much the task is about `element`; 0 when not at all."""
    if "disabled" in element.states or element.box is None or element.box.is_empty:
        return 0
    name_words = _words(element.name)
    points = 0
    if name_words and f" {' '.join(name_words)} " in f" {terms.text} ":
        points += 3  # named whole: "page 2", "Assistant", "checkbutton"
    elif terms.words & set(name_words):
        points += 2
    if element.value and terms.words & set(_words(element.value)):
        points += 1
    role_match = _role_matches(element.role, terms.roles)
    if role_match:
        points += 2
    if not points or not (role_match or points >= 2):
        return 0
    is_on = bool(element.states & ON_STATES)
    if terms.wants_blank:
        points += -2 if element.value else 2
    if terms.wants_off:
        points += 2 if not is_on and "mixed" not in element.states else -2
    elif terms.wants_on:
        points += 2 if is_on else -2
    return max(points, 0)


def task_matches(terms: TaskTerms, candidates: Iterable[Element]) -> list[str]:
    """Ids of the elements the task is about, best first (ties in tree order)."""
    if terms.empty:
        return []
    scored = [
        (score(element, terms), order, element.id) for order, element in enumerate(candidates)
    ]
    best = sorted((entry for entry in scored if entry[0] >= 2), key=lambda e: (-e[0], e[1]))
    return [element_id for _, _, element_id in best[:MAX_MATCHES]]
