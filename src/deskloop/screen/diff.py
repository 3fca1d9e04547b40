"""What changed between two snapshots of a window, as + added, - removed, ~ changed lines."""

from __future__ import annotations

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
            lines.append(f"{omitted} more changes: observe for the whole window")
        return "\n".join(lines)


def _was(old: list[str], new: list[str]) -> str:
    gone = [field for field in old if field not in new]
    came = [field for field in new if field not in old and not field.startswith("@")]
    notes = gone + [f"not {field}" for field in came if field.isalpha()]
    return f" (was: {' '.join(notes)})" if notes else ""


def diff_snapshots(before: Snapshot, after: Snapshot) -> SnapshotDiff:
    """Compare the visible elements of two snapshots of the same window, by element id."""
    old = visible_fields(before)
    new = visible_fields(after)
    added = tuple(" ".join([i, *new[i]]) for i in new if i not in old)
    removed = tuple(" ".join([i, *old[i]]) for i in old if i not in new)
    changed = [
        f"~ {i} {' '.join(fields)}{_was(old[i], fields)}"
        for i, fields in new.items()
        if i in old and old[i] != fields
    ]
    return SnapshotDiff(
        before=before.number,
        after=after.number,
        added=tuple(f"+ {line}" for line in added),
        removed=tuple(f"- {line}" for line in removed),
        changed=tuple(changed),
    )
