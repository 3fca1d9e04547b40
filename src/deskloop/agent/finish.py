"""`finish`: how a model that must always call a tool says the task is done.

Small local models do not reliably choose between writing text and calling a tool, so
with them every turn is a forced tool call (`tool_choice: any`, which the server makes
valid by construction) and the session ends when the model calls `finish`.
"""

from __future__ import annotations

from typing import Any

from deskloop.tools import TimeoutTier, Tool, ToolContext, ToolOutput

FINISH_TOOL_NAME = "finish"

REQUIRED_CALLS_RULE = (
    "Every reply you give is a tool call. When the task is done, or cannot be done, call "
    "finish with one sentence for the user saying what you did."
)


async def _finished(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    return "The task is marked done."


FINISH = Tool(
    name=FINISH_TOOL_NAME,
    description="End the task: a one-sentence summary of what was done, for the user.",
    input_schema={
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "What you did, in one sentence."}
        },
        "required": ["summary"],
        "additionalProperties": False,
    },
    risk="read",
    timeout_tier=TimeoutTier.INTERNAL,
    run=_finished,
    source="native",
)
