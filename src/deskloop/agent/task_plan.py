"""A small model's way through its task: the current step, the calls it needs, the values.

The plan narrows each turn's offer to what the current step's verb needs, grounds typed
text in the task's own values, and moves to the next step once a call of the step's kind
changed the screen; `finish` comes once the last step's change has been seen.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deskloop.agent.finish import FINISH_TOOL_NAME
from deskloop.agent.grounding import grounded_enum
from deskloop.agent.task_steps import STEP_TOOLS, TaskStep, split_steps
from deskloop.agent.task_values import value_spans
from deskloop.tools import ToolOutcome
from deskloop.tools.dispatch import changed_nothing

# The parameters that carry typed text, by tool.
TYPED_PARAMETERS = {"type_text": "text", "set_value": "value"}


@dataclass
class TaskPlan:
    task: str
    steps: list[TaskStep]
    values: list[str]
    current: int = 0
    _step_values: list[list[str]] = field(default_factory=list)

    @classmethod
    def for_task(cls, task: str) -> TaskPlan:
        steps = split_steps(task)
        return cls(task, steps, value_spans(task), 0, [value_spans(s.text) for s in steps])

    @property
    def done(self) -> bool:
        return self.current >= len(self.steps)

    @property
    def step(self) -> TaskStep | None:
        return None if self.done else self.steps[self.current]

    def header(self) -> str:
        """The line that starts each turn's observation: which step is next."""
        if self.done:
            if len(self.steps) == 1 and self.steps[0].kind == "any":
                return ""
            return "every step of the task is done: call finish with one sentence for the user"
        if len(self.steps) == 1:
            return f"the task: {self.steps[0].text}"
        return f"step {self.current + 1} of {len(self.steps)}: {self.steps[self.current].text}"

    def narrowed(self, offered: Sequence[str]) -> set[str] | None:
        """The tool names this turn offers, or None to leave the offer as it is."""
        step = self.step
        if step is None:
            if any(s.kind in STEP_TOOLS for s in self.steps) and FINISH_TOOL_NAME in offered:
                return {FINISH_TOOL_NAME}
            return None
        wanted = STEP_TOOLS.get(step.kind)
        if wanted is None:
            return None
        chosen = {name for name in offered if name in wanted}
        return chosen or None

    def advance(self, outcomes: Sequence[ToolOutcome], risks: Mapping[str, str]) -> bool:
        """Move past the current step when a call of its kind did its work; True if moved."""
        step = self.step
        if step is None:
            return False
        wanted = STEP_TOOLS.get(step.kind)
        for outcome in outcomes:
            name = outcome.call.name
            if outcome.status != "ok" or name == FINISH_TOOL_NAME:
                continue
            if wanted is not None and name not in wanted:
                continue
            looks = step.kind == "look"
            if wanted is None and risks.get(name) == "read":
                continue
            if looks or not changed_nothing(outcome.content):
                self.current += 1
                return True
        return False

    def typed_values(self) -> list[str]:
        """What a typing call may write now: the current step's values, else the task's."""
        if self.step is not None and self._step_values[self.current]:
            return self._step_values[self.current]
        return self.values

    def ground_values(self, definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Typed text as an `x-grounded` enum of the task's values (where it has any)."""
        values = self.typed_values()
        if not values:
            return definitions
        grounded = []
        for definition in definitions:
            parameter = TYPED_PARAMETERS.get(definition.get("name", ""))
            properties = definition.get("input_schema", {}).get("properties", {})
            if parameter is None or parameter not in properties:
                grounded.append(definition)
                continue
            changed = copy.deepcopy(definition)
            properties = changed["input_schema"]["properties"]
            properties[parameter] = grounded_enum(properties[parameter], values)
            grounded.append(changed)
        return grounded
