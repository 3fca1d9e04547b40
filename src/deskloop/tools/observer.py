"""`save_observer_card`: the background observer's notes for the user (insight, pattern,
skill created, knowledge-graph update), each pending until shown, acted on or dismissed."""

from __future__ import annotations

from typing import Any

from deskloop.store import CARD_KINDS, CARD_STATUSES, add_card, set_card_status
from deskloop.tools import (
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
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "body": {"type": "string", "maxLength": 4000},
        "id": {"type": "integer", "description": "A card to change the status of."},
        "status": {"enum": list(CARD_STATUSES)},
    },
    "additionalProperties": False,
}


async def save_observer_card(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    if "id" in tool_input:
        if "status" not in tool_input:
            raise BadToolArguments("with id, give the new status (shown, acted or dismissed)")
        with context.store.transaction() as db:
            card = set_card_status(db, int(tool_input["id"]), tool_input["status"])
        if card is None:
            raise BadToolArguments(
                f"no observer card {tool_input['id']}; SELECT id, title FROM observer_cards lists them"
            )
        return f"card {card.id} is now {card.status}"
    if "kind" not in tool_input or "title" not in tool_input:
        raise BadToolArguments(
            "a new card needs kind and title (or give id and status to update one)"
        )
    with context.store.transaction() as db:
        card = add_card(
            db,
            tool_input["kind"],
            str(tool_input["title"]),
            str(tool_input.get("body", "")),
            context.session_id,
        )
        if tool_input.get("status", "pending") != "pending":
            card = set_card_status(db, card.id, tool_input["status"]) or card
    return f"saved card {card.id} ({card.kind}, {card.status})"


def build_observer_tools(context: ToolContext) -> list[Tool]:
    return [
        Tool(
            "save_observer_card",
            "Save a card for the user (kind, title, body), or set a card's status by id.",
            SCHEMA,
            "act",
            TimeoutTier.INTERNAL,
            save_observer_card,
        )
    ]


OBSERVER_FAMILY = ToolFamily("observer", ROUTING, build_observer_tools)
