"""What the chat page renders: the loop's steps through `step_to_json`, and stored sessions alike.

The page names every event by its `event` key, as the session log does. A finished tool
call also carries its result blocks here (the log keeps only errors), so the page can
show what the tool returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deskloop.agent.history import speaker
from deskloop.agent.steps import Step, ToolCallFinished, step_to_json
from deskloop.store import MessageRecord

Event = dict[str, Any]


def step_event(step: Step) -> Event:
    """One step of the loop as the JSON the page renders."""
    event = step_to_json(step)
    if isinstance(step, ToolCallFinished):
        event["content"] = step.outcome.content
    return event


def transcript_events(messages: Sequence[MessageRecord]) -> list[Event]:
    """A stored conversation as the events a live one would have sent, for the same renderer."""
    events: list[Event] = []
    names: dict[str, str] = {}
    for message in messages:
        for block in message.content:
            kind = block.get("type")
            who = speaker(message.role, block, message.content) if kind == "text" else ""
            text = str(block.get("text", ""))
            if who == "you":
                events.append({"event": "user_message", "text": text})
            elif who in ("screen", "deskloop"):
                # What deskloop sent with the person's words or a tool's result.
                events.append({"event": "context", "who": who, "text": text})
            elif kind == "text":
                events.append({"event": "text_delta", "text": text})
            elif kind == "tool_use":
                names[str(block.get("id"))] = str(block.get("name"))
                events.append(
                    {
                        "event": "tool_start",
                        "id": block.get("id"),
                        "name": block.get("name"),
                        "input": block.get("input"),
                    }
                )
            elif kind == "tool_result":
                events.append(_stored_result(block, names))
        if message.role == "assistant":
            events.append({"event": "turn_break"})
    return events


def _stored_result(block: dict[str, Any], names: dict[str, str]) -> Event:
    content = block.get("content", [])
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    tool_use_id = str(block.get("tool_use_id"))
    failed = bool(block.get("is_error", False))
    return {
        "event": "tool_end",
        "id": tool_use_id,
        "name": names.get(tool_use_id, ""),
        "status": "error" if failed else "ok",
        "content": content,
    }
