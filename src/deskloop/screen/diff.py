"""What changed between two snapshots of a window, as + added, - removed, ~ changed lines.

`diff_fields` works on any keyed line fields, so the browser's page snapshots share it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from deskloop.screen.observation import DEFAULT_BUDGET, fit_lines, visible_fields
from deskloop.screen.tokens import count_tokens
from deskloop.screen.tree import Snapshot


@dataclass(frozen=True)
class SnapshotDiff:
    """Lines added, removed and changed from `before` to `after` (same window)."""

    before: int
    after: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    # What the last line says to do when not every change fits the budget.
    more_hint: str = "observe for the whole window"

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def render(self, budget: int = DEFAULT_BUDGET) -> str:
        """The diff as text within `budget` tokens; what does not fit is counted."""
        head = (
            f"snapshot {self.after} (changes since {self.before}): {len(self.changed)} changed, "
            f"{len(self.added)} added, {len(self.removed)} removed"
        )
        if self.is_empty:
            return f"snapshot {self.after}: no visible change since snapshot {self.before}"
        candidates = [
            *((0, order, line) for order, line in enumerate(self.changed)),
            *((1, len(self.changed) + order, line) for order, line in enumerate(self.added)),
            *(
                (2, len(self.changed) + len(self.added) + order, line)
                for order, line in enumerate(self.removed)
            ),
        ]
        chosen, omitted = fit_lines(candidates, max(budget - count_tokens(head) - 12, 0))
        lines = [head, *(line for _, line in chosen)]
        if omitted:
            lines.append(f"{omitted} more changes: {self.more_hint}")
        return "\n".join(lines)


def _was(old: list[str], new: list[str]) -> str:
    gone = [field for field in old if field not in new]
    came = [field for field in new if field not in old and not field.startswith("@")]
    notes = gone + [f"not {field}" for field in came if field.isalpha()]
    return f" (was: {' '.join(notes)})" if notes else ""


def id_first(key: str, fields: list[str]) -> str:
    """A screen line: the element id, then its fields."""
    return " ".join([key, *fields])


def diff_fields(
    before: int,
    after: int,
    old: Mapping[str, list[str]],
    new: Mapping[str, list[str]],
    line: Callable[[str, list[str]], str] = id_first,
    more_hint: str = "observe for the whole window",
) -> SnapshotDiff:
    """Compare two snapshots' line fields by key; `line` writes one key's fields as a line."""
    added = tuple(f"+ {line(key, new[key])}" for key in new if key not in old)
    removed = tuple(f"- {line(key, old[key])}" for key in old if key not in new)
    changed = tuple(
        f"~ {line(key, fields)}{_was(old[key], fields)}"
        for key, fields in new.items()
        if key in old and old[key] != fields
    )
    return SnapshotDiff(before, after, added, removed, changed, more_hint)


def diff_snapshots(before: Snapshot, after: Snapshot) -> SnapshotDiff:
    """Compare the visible elements of two snapshots of the same window, by element id."""
    return diff_fields(
        before.number, after.number, visible_fields(before), visible_fields(after)
    )
