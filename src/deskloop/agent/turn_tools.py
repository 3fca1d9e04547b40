"""What one turn offers the model: which tools, grounded in what exists, and the tool choice.

The session's offer (agent/tool_routing.py), less a tool a repeat left out, narrowed to
what a small model's current step needs (agent/task_plan.py); for a small model, lean
schemas; with a deskloop server, ids, apps and typed values as enums of what exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anthropic.types import ToolChoiceParam

from deskloop.agent.finish import FINISH_TOOL_NAME
from deskloop.agent.grounding import (
    ground_definitions,
    ground_refs,
    lean_definitions,
    screen_grounds,
)
from deskloop.agent.task_plan import TaskPlan
from deskloop.agent.tool_routing import SessionTools
from deskloop.screen.desktop_entries import installed_apps
from deskloop.tools import Dispatcher, ToolOutcome
from deskloop.tools.browser import grounded_values


class TurnTools:
    def __init__(
        self,
        dispatcher: Dispatcher,
        session_tools: SessionTools | None,
        *,
        calls_required: bool,
        small_model: bool,
        grounded: bool,
    ) -> None:
        self.dispatcher = dispatcher
        self.session_tools = session_tools
        self.calls_required = calls_required
        self.small_model = small_model
        self.grounded = grounded
        self._installed_apps: tuple[str, ...] | None = None

    def tool_choice(
        self, plan: TaskPlan | None, last_outcomes: Sequence[ToolOutcome]
    ) -> ToolChoiceParam:
        """Any tool when every turn is a call; `finish` only right after the model asked
        again for the action that had just worked (it had nothing else left to do), or
        once every step of the task is done."""
        # One call a turn for a small model: its task goes step by step, and Qwen2.5-Coder-
        # 0.5B, allowed several, wrote calls until max_tokens (1,024 tokens, 240 s).
        single = self.small_model
        if not self.calls_required:
            return {"type": "auto", "disable_parallel_tool_use": single}
        if self.finish_only(plan, last_outcomes):
            return {"type": "tool", "name": FINISH_TOOL_NAME, "disable_parallel_tool_use": single}
        if plan is not None:
            names = [d["name"] for d in self.offered(plan, last_outcomes, consume=False)]
            narrowed = plan.narrowed(names)
            if narrowed is not None and len(narrowed) == 1:
                (name,) = narrowed
                return {"type": "tool", "name": name, "disable_parallel_tool_use": single}
        return {"type": "any", "disable_parallel_tool_use": single}

    def finish_only(self, plan: TaskPlan | None, last_outcomes: Sequence[ToolOutcome]) -> bool:
        if FINISH_TOOL_NAME not in self.dispatcher.registry:
            return False
        if any(outcome.status == "repeated" for outcome in last_outcomes):
            return True
        return plan is not None and plan.narrowed([FINISH_TOOL_NAME]) == {FINISH_TOOL_NAME}

    def offered(
        self, plan: TaskPlan | None, last_outcomes: Sequence[ToolOutcome], *, consume: bool = True
    ) -> list[dict[str, Any]]:
        """The tools this turn offers: the session's offer, less what a repeat left out.
        What the current step needs is forced through the tool choice, not by leaving
        tools out, so the prompt stays the same from turn to turn."""
        registry = self.dispatcher.registry
        withheld = self.dispatcher.withheld
        if consume:
            self.dispatcher.withheld = set()
        tools = list(registry)
        if self.session_tools is not None:
            tools = self.session_tools.offered_tools(tools)
        return [tool.definition() for tool in tools if tool.name not in withheld]

    async def definitions(
        self, plan: TaskPlan | None, last_outcomes: Sequence[ToolOutcome]
    ) -> list[dict[str, Any]]:
        """The tools as this turn sends them: grounded in what exists, where that is on."""
        definitions = self.offered(plan, last_outcomes)
        registry = self.dispatcher.registry
        screen_tools = frozenset(t.name for t in registry if t.source == "screen")
        if self.calls_required:
            definitions = lean_definitions(definitions, screen_tools)
        if not self.grounded:
            return definitions
        if self._installed_apps is None:
            self._installed_apps = tuple(app.name for app in installed_apps())
        step = plan.step if plan is not None else None
        grounds = await screen_grounds(
            self.dispatcher.context.screen,
            self._installed_apps,
            step=step.text if step is not None and step.kind in ("point", "type") else "",
        )
        definitions = ground_definitions(definitions, grounds, screen_tools)
        if plan is not None:
            definitions = plan.ground_values(definitions)
        browser_tools = frozenset(t.name for t in registry if t.source == "browser")
        refs = grounded_values(self.dispatcher.context)["ref"]
        return ground_refs(definitions, refs, browser_tools)
