"""Compact observation text: one element a line, filled by priority into a token budget.

A line reads `e7 check "Check" checked @120,300`: id, short role, quoted name, value,
shown states, and the element's centre relative to the window. Names are quoted and
escaped so screen text cannot forge a line of its own.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from deskloop.screen.folding import FoldedRows, fold_rows, row_label, row_states
from deskloop.screen.relevance import task_matches, task_terms
from deskloop.screen.roles import (
    HIDDEN_ROLES,
    ROW_ROLES,
    SHOWN_STATES,
    TEXT_ROLES,
    UNNAMED_WORTH_SHOWING,
    is_container,
    is_interactive,
)
from deskloop.screen.tokens import count_tokens
from deskloop.screen.tree import Box, Element, Snapshot

DEFAULT_BUDGET = 400
# For the tool descriptions and system prompt: how to read an observation.
FORMAT_HELP = (
    "One element per line: id, role, \"name\", = \"text or value\", states, and @x,y the "
    "element's centre in pixels from the window's top-left. Act on elements by id; ids are "
    "valid until the next observation shows them gone."
)
NAME_LIMIT = 60
VALUE_LIMIT = 80
# Line priorities: what the budget keeps first. Push buttons (a window's actions: OK, Save,
# Run) come first, then the other controls (entries, toggles, tabs), then rows, so a long
# list never pushes a window's buttons out.
FOCUSED_AREA, BUTTONS, CONTROLS, ROWS, REST = 0, 1, 2, 3, 4
TASK_NAMED = -1  # the elements the task names (relevance.py): before everything else
NAMED_SECTION = "what the task names, best match first:"
OTHERS_SECTION = "other elements:"


@dataclass(frozen=True)
class Wording:
    """How an observation points at what it left out: the model and the CLI differ."""

    folded: str  # after a folded run's rows
    omitted: str  # after "N more elements"


FOR_MODEL = Wording(folded="use find_elements", omitted="use find_elements")
FOR_CLI = Wording(folded="--json lists them", omitted="raise --budget N or use --json")


def quote(text: str, limit: int) -> str:
    """`text` cut to `limit` characters and quoted with escapes (no raw newlines)."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return json.dumps(text, ensure_ascii=False)


def relative_centre(box: Box, window: Box) -> tuple[int, int]:
    x, y = box.center
    return (x - window.x, y - window.y)


def element_fields(element: Element, window: Box) -> list[str]:
    """The parts of an element's line after its id: role, name, value, states, position."""
    fields = [element.role]
    if element.name:
        fields.append(quote(element.name, NAME_LIMIT))
    if element.value is not None and element.value != element.name:
        fields.append("= " + quote(element.value, VALUE_LIMIT))
    fields.extend(state for state in SHOWN_STATES if state in element.states)
    if "focused" in element.states:
        fields.append("focused")
    if element.box is not None:
        x, y = relative_centre(element.box, window)
        fields.append(f"@{x},{y}")
    return fields


def element_line(element: Element, window: Box) -> str:
    return " ".join([element.id, *element_fields(element, window)])


def _is_worth_a_line(element: Element, shown_names: dict[str, str], snapshot: Snapshot) -> bool:
    if element.role in HIDDEN_ROLES or element.box is None or element.box.is_empty:
        return False
    has_content = bool(element.name) or element.value not in (None, "")
    if is_container(element.role) and not element.name:
        return False
    if not has_content and element.role not in UNNAMED_WORTH_SHOWING:
        return "focused" in element.states
    # A label that repeats the name of the element it sits in (a button's own label) adds
    # nothing.
    parent = element.parent
    while parent is not None:
        if parent in shown_names:
            return not (element.role in TEXT_ROLES and shown_names[parent] == element.name)
        parent = snapshot.elements[parent].parent
    return True


_VISIBLE: weakref.WeakKeyDictionary[Snapshot, list[Element]] = weakref.WeakKeyDictionary()
_FIELDS: weakref.WeakKeyDictionary[Snapshot, dict[str, list[str]]] = weakref.WeakKeyDictionary()


def visible_elements(snapshot: Snapshot) -> list[Element]:
    """Elements worth a line, in tree order: on-window, non-empty, not bare containers."""
    if snapshot not in _VISIBLE:
        _VISIBLE[snapshot] = _find_visible(snapshot)
    return _VISIBLE[snapshot]


def visible_fields(snapshot: Snapshot) -> dict[str, list[str]]:
    """The line fields of every visible element by id (computed once per snapshot)."""
    if snapshot not in _FIELDS:
        _FIELDS[snapshot] = {
            element.id: element_fields(element, snapshot.window)
            for element in visible_elements(snapshot)
        }
    return _FIELDS[snapshot]


def _find_visible(snapshot: Snapshot) -> list[Element]:
    shown: list[Element] = []
    shown_names: dict[str, str] = {}
    for element in snapshot:
        if element.id == snapshot.root:
            continue
        if _is_worth_a_line(element, shown_names, snapshot):
            shown.append(element)
            shown_names[element.id] = element.name
    return shown


def _focused_area(snapshot: Snapshot) -> set[str]:
    focused = snapshot.focused
    if focused is None:
        return set()
    area = {focused.id}
    if focused.parent is not None:
        area.update(snapshot.elements[focused.parent].children)
    parent = focused.parent
    while parent is not None:
        area.add(parent)
        parent = snapshot.elements[parent].parent
    return area


def priority(element: Element, focused_area: set[str]) -> int:
    if element.id in focused_area or "default" in element.states:
        return FOCUSED_AREA
    if element.role == "button":
        return BUTTONS
    if element.role in ROW_ROLES:
        return ROWS
    if is_interactive(element.role) or (element.value is not None and element.role != "progress"):
        return CONTROLS
    return REST


def folded_line(fold: FoldedRows, snapshot: Snapshot, wording: Wording) -> str:
    """`tree "Demos" 46 rows: e40 "Application Class" selected, e41 "Assistant", …`"""
    head = fold.container.role
    if fold.container.name:
        head += " " + quote(fold.container.name, NAME_LIMIT)
    rows = [
        " ".join([row.id, quote(row_label(row, snapshot), NAME_LIMIT), *row_states(row, snapshot)])
        for row in fold.shown
    ]
    more = f", … {wording.folded}" if fold.rows > len(fold.shown) else ""
    return f"{head} {fold.rows} rows: {', '.join(rows)}{more}"


@dataclass(frozen=True)
class Observation:
    """The text the model reads and what it left out."""

    text: str
    tokens: int
    shown: tuple[str, ...]
    omitted: int
    snapshot: Snapshot


def header(snapshot: Snapshot, why: str = "") -> str:
    window = snapshot.window
    app = f" app {quote(snapshot.app, NAME_LIMIT)}"
    if snapshot.app.lower() in snapshot.title.lower():
        app = ""  # the title already names the app
    line = (
        f"window {quote(snapshot.title, NAME_LIMIT)}{app} pid {snapshot.pid} "
        f"{window.width}x{window.height} snapshot {snapshot.number}"
    )
    if why:
        line += f" ({why})"
    if snapshot.degraded:
        line += f"\ndegraded: {snapshot.degraded}"
    return line


def fit_lines(
    candidates: Iterable[tuple[int, int, str]], budget: int
) -> tuple[list[tuple[int, str]], int]:
    """Pick `(order, line)` by priority until `budget` tokens; returns them and how many left."""
    chosen: list[tuple[int, str]] = []
    used = 0
    omitted = 0
    for _, order, line in sorted(candidates):
        cost = count_tokens(line) + 1
        if used + cost <= budget:
            chosen.append((order, line))
            used += cost
        else:
            omitted += 1
    chosen.sort()
    return chosen, omitted


def render_observation(
    snapshot: Snapshot,
    budget: int = DEFAULT_BUDGET,
    wording: Wording = FOR_MODEL,
    *,
    why: str = "",
    task: str = "",
) -> Observation:
    """The observation of `snapshot` within `budget` tokens, highest priority lines first.

    Long runs of rows fold into one line each (folding.py). `why` says, in the header,
    why this window was chosen. The elements `task` names (relevance.py) come first and
    are always kept.
    """
    head = header(snapshot, why)
    elements = visible_elements(snapshot)
    area = _focused_area(snapshot)
    fields = visible_fields(snapshot)
    folds = fold_rows(snapshot)
    folded: set[str] = set()
    for fold in folds:
        folded |= fold.hidden
    named: list[str] = []
    if task:
        terms = task_terms(task, ignore=(snapshot.app, snapshot.title))
        named = task_matches(terms, elements)
        folded -= set(named)
    # (priority, order, line, ids the line shows); a fold sits where its first row was.
    entries: list[tuple[int, float, str, tuple[str, ...]]] = [
        (
            priority(element, area),
            order,
            " ".join([element.id, *fields[element.id]]),
            (element.id,),
        )
        for order, element in enumerate(elements)
        if element.id not in folded and element.id not in named
    ]
    position = {element.id: order for order, element in enumerate(elements)}
    for fold in folds:
        first = min((position[i] for i in fold.hidden if i in position), default=len(elements))
        shown_ids = tuple(row.id for row in fold.shown)
        entries.append((ROWS, first - 0.5, folded_line(fold, snapshot, wording), shown_ids))
    entries.sort(key=lambda entry: entry[1])
    # The task's elements lead, best match first, ahead of every other priority.
    entries[:0] = [
        (TASK_NAMED, -1.0, " ".join([element_id, *fields[element_id]]), (element_id,))
        for element_id in named
    ]
    candidates = [(rank, order, line) for order, (rank, _, line, _) in enumerate(entries)]
    # Keep room for the header, the two section lines and the "N more elements" line.
    reserve = count_tokens(head) + (24 if named else 12)
    chosen, omitted = fit_lines(candidates, max(budget - reserve, 0))
    lines = [head]
    if named:
        lines.append(NAMED_SECTION)
        lines.extend(line for order, line in chosen if order < len(named))
        lines.append(OTHERS_SECTION)
        lines.extend(line for order, line in chosen if order >= len(named))
    else:
        lines.extend(line for _, line in chosen)
    if omitted:
        lines.append(f"{omitted} more elements: {wording.omitted}")
    elif not elements and not snapshot.degraded:
        lines.append("no visible elements")
    text = "\n".join(lines)
    shown = tuple(element_id for order, _ in chosen for element_id in entries[order][3])
    return Observation(text, count_tokens(text), shown, omitted, snapshot)


def find_elements(snapshot: Snapshot, query: str, limit: int = 20) -> str:
    """Lines of the snapshot's elements whose role, name, value or id match every query word."""
    words = query.lower().split()
    matches = []
    for element in snapshot:
        if element.box is None or element.box.is_empty or element.id == snapshot.root:
            continue
        haystack = " ".join(
            [element.role, element.name, element.value or "", element.description]
        ).lower()
        if all(word in haystack or word == element.id for word in words):
            matches.append(element_line(element, snapshot.window))
    if not matches:
        return f"no element matches {quote(query, NAME_LIMIT)} in snapshot {snapshot.number}"
    more = len(matches) - limit
    lines = matches[:limit]
    if more > 0:
        lines.append(f"{more} more matches: narrow the query")
    return "\n".join(lines)
