"""`ask_followup`: the model asks the user a question with quick replies; the turn ends there."""

from __future__ import annotations

from typing import Any

from deskloop.tools.contract import TimeoutTier, Tool, ToolContext, ToolFamily, ToolOutput

FOLLOWUP_TOOL_NAME = "ask_followup"


async def _shown(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    return "The question was shown to the user; their answer is the next message."


ASK_FOLLOWUP = Tool(
    name=FOLLOWUP_TOOL_NAME,
    description=(
        "Ask the user a question when only they can answer it, with up to 4 short quick "
        "replies. Make it the last call of your turn: the turn ends and the answer comes back "
        "as the user's next message."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "question": {"type": "string", "description": "The question, in one sentence."},
            "options": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": 4,
                "description": "Quick replies the user can pick.",
            },
        },
        "required": ["question"],
        "additionalProperties": False,
    },
    risk="read",
    timeout_tier=TimeoutTier.INTERNAL,
    run=_shown,
    source="native",
)


FOLLOWUP_FAMILY = ToolFamily(
    name="followup",
    routing="A question only the user can answer: ask it with ask_followup, then end the turn.",
    build=lambda context: [ASK_FOLLOWUP],
    needs_person=True,
)
