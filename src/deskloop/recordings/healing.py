"""Healing one step: when replay cannot find a step's element (or its postcondition fails),
a `Healer` the caller passes in (the agent's model, in agent/heal_step.py) gets that one
step and tries to do it. What it did becomes a proposed repair beside the recording
(`NAME.proposed.json`), shown by `recordings show` and applied only by `recordings accept`.

Nothing is healed without a healer, nor a destructive step (delete, send, overwrite): those
stop the replay and say which step failed and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from deskloop.recordings.locate import describe, locators_for
from deskloop.recordings.recording import Recording, RecordingFiles, Step
from deskloop.screen.tree import Element, Snapshot


@dataclass(frozen=True)
class HealRequest:
    """The one step to do: its intent in words, its recorded locators, and the screen now."""

    recording: str
    number: int
    step: Step
    # Why replay could not do it (each locator's reason, or the postcondition that failed).
    failure: str
    # A fresh observation of the step's window, as the model reads one.
    observation: str

    def task(self) -> str:
        """The step as a task for a model, in words."""
        step = self.step
        tried = "; ".join(describe(locator) for locator in step.locators) or "none"
        lines = [
            f"Do exactly one step of the recorded routine {self.recording!r} "
            f"(step {self.number}): {step.intent}.",
            f"The app is {step.app or 'the focused one'}."
            + (f" Its window is {step.window!r}." if step.window else ""),
            f"The recording looked for: {tried}. That failed: {self.failure}.",
        ]
        if step.action == "set_text":
            lines.append(f"Replace the field's whole text with {step.text!r} (set_value).")
        if step.action == "keys":
            lines.append(f"Click the element, then press {step.text!r}.")
        if step.postcondition is not None:
            lines.append(f"Afterwards the element {step.postcondition.describe()}.")
        lines.append(
            "Find the element that does this now (its name may have changed), act on it "
            "once, then finish. Do nothing else."
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class Healed:
    """What a healer did: the element it acted on, in a read made after acting."""

    element: Element
    snapshot: Snapshot
    summary: str = ""


class Healer(Protocol):
    async def heal(self, request: HealRequest) -> Healed | None:
        """Do the step; None when it could not (the replay then stops at this step)."""
        ...


def repaired_step(step: Step, healed: Healed) -> Step:
    """The step with locators for the element the healer used, best first."""
    return replace(step, locators=locators_for(healed.snapshot, healed.element))


def propose(files: RecordingFiles, recording: Recording, repairs: dict[int, Step]) -> Recording:
    """Write the recording with `repairs` (by step number) as its proposed change."""
    steps = tuple(repairs.get(number, step) for number, step in enumerate(recording.steps, start=1))
    proposal = replace(recording, steps=steps)
    files.save_proposal(proposal)
    return proposal
