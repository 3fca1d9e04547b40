"""What a replay reports: each step's outcome, how far it got, and a repair proposed.

The CLI prints it, a routine run stores its summary, and the benchmark counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# done: acted and checked; already: the postcondition held before acting, so nothing was
# done; healed: the healer did it; failed: stopped here. A dry run says found or would_fail.
OutcomeStatus = Literal["done", "already", "healed", "failed", "found", "would_fail"]
# How a step was done: through the accessibility API or with synthetic input.
Via = Literal["accessibility", "input", "model", ""]


@dataclass(frozen=True)
class StepOutcome:
    number: int
    intent: str
    status: OutcomeStatus
    detail: str = ""
    via: Via = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("done", "already", "healed", "found")

    def line(self) -> str:
        words = {
            "done": "done",
            "already": "already so",
            "healed": "healed",
            "failed": "FAILED",
            "found": "found",
            "would_fail": "WOULD FAIL",
        }[self.status]
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.number}. {self.intent} - {words}{detail}"


@dataclass(frozen=True)
class ReplayReport:
    """How far a replay got: each step's outcome, the failed step, any proposed repair."""

    recording: str
    total: int
    outcomes: tuple[StepOutcome, ...]
    dry_run: bool = False
    proposal: Path | None = None
    interrupted: bool = False
    duration_s: float = 0.0

    @property
    def steps_done(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.ok)

    @property
    def failed(self) -> StepOutcome | None:
        return next((outcome for outcome in self.outcomes if not outcome.ok), None)

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.steps_done == self.total

    def summary(self) -> str:
        """One line: how it ended, for a run record and the end of the CLI's output."""
        failed = self.failed
        if self.dry_run:
            would = [o for o in self.outcomes if not o.ok]
            if not would:
                return f"dry run of {self.recording!r}: all {self.total} steps found"
            numbers = ", ".join(str(o.number) for o in would)
            return f"dry run of {self.recording!r}: step(s) {numbers} of {self.total} would fail"
        if self.interrupted:
            head = f"interrupted after {self.steps_done} of {self.total} steps"
        elif failed is not None:
            head = (
                f"stopped at step {failed.number} of {self.total} ({failed.intent}): "
                f"{failed.detail}"
            )
        else:
            head = f"all {self.total} steps done"
        if self.proposal is not None:
            head += (
                f"; a repair is proposed in {self.proposal.name}: see it with "
                f"`deskloop recordings show {self.recording}`, apply it with "
                f"`deskloop recordings accept {self.recording}`"
            )
        return f"replay of {self.recording!r}: {head}"

    def text(self) -> str:
        return "\n".join([*(outcome.line() for outcome in self.outcomes), self.summary()])

    @property
    def accessibility_share(self) -> float:
        """The share of acted steps done through the accessibility API (the benchmark's)."""
        acted = [o for o in self.outcomes if o.via in ("accessibility", "input")]
        if not acted:
            return 0.0
        return sum(1 for o in acted if o.via == "accessibility") / len(acted)
