"""Folding long runs of similar rows (list items, table cells, tree rows, menu items).

A 46-row list would fill a 400-token observation by itself and push the window's
buttons out (gtk3-demo's demo list did). A run of `FOLD_AT` or more rows under one list,
table, tree or menu becomes one line: the first few rows, the selected and focused ones,
and a count; the rest stay reachable through find_elements.
"""

from __future__ import annotations

from dataclasses import dataclass

from deskloop.screen.roles import ROW_CONTAINER_ROLES, ROW_ROLES
from deskloop.screen.tree import Element, Snapshot

FOLD_AT = 8  # rows in one container before they fold
FOLD_SHOWN = 3  # rows shown by name at the start of a folded run


@dataclass(frozen=True)
class FoldedRows:
    """One folded run: its container, how many rows, and the rows shown by name."""

    container: Element
    rows: int
    shown: tuple[Element, ...]
    hidden: frozenset[str]  # ids of every element the fold stands for (rows and their parts)


def _container_of(element: Element, snapshot: Snapshot) -> Element | None:
    """The nearest list/table/tree/menu above `element`, unless a row lies in between."""
    parent = element.parent
    while parent is not None:
        above = snapshot.elements[parent]
        if above.role in ROW_CONTAINER_ROLES:
            return above
        if above.role in ROW_ROLES:
            return None  # a cell inside a row: the row is the unit
        parent = above.parent
    return None


def _on_window(element: Element) -> bool:
    return element.box is not None and not element.box.is_empty


def row_label(row: Element, snapshot: Snapshot) -> str:
    """A row's name, else its text, else the first name among its parts."""
    if row.name or row.value:
        return row.name or row.value or ""
    stack = list(reversed(row.children))
    while stack:
        part = snapshot.elements[stack.pop()]
        if part.name or part.value:
            return part.name or part.value or ""
        stack.extend(reversed(part.children))
    return ""


def _descendants(element: Element, snapshot: Snapshot) -> set[str]:
    found: set[str] = set()
    stack = list(element.children)
    while stack:
        child = stack.pop()
        found.add(child)
        stack.extend(snapshot.elements[child].children)
    return found


def _marked(row: Element, parts: set[str], snapshot: Snapshot, state: str) -> bool:
    return state in row.states or any(state in snapshot.elements[p].states for p in parts)


def _row_count(rows: list[Element]) -> int:
    """Rows, counting a table's cells that share a line as one row."""
    if all(row.role == "cell" for row in rows):
        return len({row.box.y for row in rows if row.box is not None})
    return len(rows)


def fold_rows(snapshot: Snapshot) -> list[FoldedRows]:
    """The runs of rows in `snapshot` long enough to fold, in tree order."""
    groups: dict[str, list[Element]] = {}
    for element in snapshot:
        if element.role not in ROW_ROLES or not _on_window(element):
            continue
        container = _container_of(element, snapshot)
        if container is not None:
            groups.setdefault(container.id, []).append(element)
    folds = []
    for container_id, rows in groups.items():
        if len(rows) < FOLD_AT:
            continue
        parts = {row.id: _descendants(row, snapshot) for row in rows}
        marked = [
            row
            for row in rows
            if _marked(row, parts[row.id], snapshot, "selected")
            or _marked(row, parts[row.id], snapshot, "focused")
        ]
        shown = [*rows[:FOLD_SHOWN], *(row for row in marked if row not in rows[:FOLD_SHOWN])]
        hidden = {row.id for row in rows}.union(*parts.values())
        folds.append(
            FoldedRows(
                snapshot.elements[container_id], _row_count(rows), tuple(shown), frozenset(hidden)
            )
        )
    return folds


def row_states(row: Element, snapshot: Snapshot) -> list[str]:
    """The states worth naming on a folded row: selected, focused, checked."""
    parts = _descendants(row, snapshot)
    return [
        state
        for state in ("selected", "checked", "focused")
        if _marked(row, parts, snapshot, state)
    ]
