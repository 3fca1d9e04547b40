"""`save_observer_card`: the background observer's notes for the user (insight, pattern,
skill created, knowledge-graph update). A card starts pending; the user's side (web UI,
`set_card_status`) marks it shown, acted on or dismissed."""

from __future__ import annotations

from typing import Any

from deskloop.store import CARD_KINDS
from deskloop.tools.contract import (
    BadToolArguments,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROUTING = "Something worth telling the user later: save an observer card."

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"enum": list(CARD_KINDS)},
        "title": {"type": "string"},
        "body": {"type": "string"},
    },
    "required": ["kind", "title"],
    "additionalProperties": False,
}


async def save_observer_card(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    title = " ".join(str(tool_input["title"]).split())
    if not title:
        raise BadToolArguments("title is empty; say in a few words what the card is about")
    card = context.store.add_observer_card(
        tool_input["kind"], title, str(tool_input.get("body", "")), context.session_id
    )
    return f"saved card {card.id} ({card.kind}, {card.status})"


def build_observer_tools(context: ToolContext) -> list[Tool]:
    return [
        Tool(
            "save_observer_card",
            "Save a card for the user to see later.",
            SCHEMA,
            "act",
            TimeoutTier.INTERNAL,
            save_observer_card,
        )
    ]


OBSERVER_FAMILY = ToolFamily("observer", ROUTING, build_observer_tools)
