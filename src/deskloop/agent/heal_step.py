"""The model as a replay's healer: one failed step, one short unattended session.

The session is the usual one (grounded, constrained calls; the screen tools), given only
the step: its intent in words, the locators that failed and a fresh observation. It may
use the screen tools that act on one element, within the caller's approved list (a
routine's), and nothing else. The element it acted on last is what the repair records.
"""

from __future__ import annotations

from dataclasses import dataclass

from deskloop.agent.session import SessionOptions, open_session
from deskloop.errors import DeskloopError
from deskloop.recordings.healing import Healed, HealRequest
from deskloop.screen.errors import ScreenError

# What a healing session may call: reading, and acting on one element.
HEALING_TOOLS = frozenset(
    {"observe", "find_elements", "click", "type_text", "set_value", "press_keys", "scroll"}
)
# The calls whose `id` names the element the step acted on.
ACTING_TOOLS = ("click", "type_text", "set_value")
HEALING_TURNS = 8


@dataclass
class ModelHealer:
    """Heals a step with a model session; `allowed_tools` narrows what it may run."""

    endpoint: str | None = None
    model: str | None = None
    allowed_tools: frozenset[str] | None = None
    max_turns: int = HEALING_TURNS
    # Why the last heal failed, for the caller's report.
    problem: str = ""

    def tools(self) -> frozenset[str]:
        if self.allowed_tools is None:
            return HEALING_TOOLS
        return HEALING_TOOLS & self.allowed_tools

    async def heal(self, request: HealRequest) -> Healed | None:
        task = f"{request.task()}\n\nThe window now:\n{request.observation}"
        options = SessionOptions(
            endpoint=self.endpoint,
            model=self.model,
            title=f"heal step {request.number} of recording {request.recording}",
            unattended=True,
            allowed_tools=self.tools(),
            max_turns=self.max_turns,
            task=task,
        )
        try:
            async with open_session(options) as session:
                async for _ in session.send(task):
                    pass
                acted = [
                    call
                    for call in session.store.tool_calls(session.session_id)
                    if call.name in ACTING_TOOLS
                    and call.status == "ok"
                    and isinstance(call.input, dict)
                    and isinstance(call.input.get("id"), str)
                ]
                screen = session.dispatcher.context.screen
                if not acted or screen is None:
                    self.problem = "the model acted on no element"
                    return None
                element_id = str(acted[-1].input["id"])
                snapshot = await screen.read()
                element = snapshot.elements.get(element_id)
                if element is None:
                    self.problem = f"the element the model used ({element_id}) is gone"
                    return None
                return Healed(element, snapshot, f"the model used {element.role} {element.name!r}")
        except (DeskloopError, ScreenError) as error:
            self.problem = str(error)
            return None
