"""Shared pieces for the tool-format tests: desktop tools, a conversation, and output readers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats.base import (
    ParsedCallEnd,
    ParsedCallInvalid,
    ParsedCallStart,
    ParsedEvent,
    ParsedInputDelta,
    ParsedText,
    ToolCallParser,
)
from deskloop.server.tool_schema import validate_input

TEMPLATES = Path(__file__).parent / "templates"
GOLDEN = Path(__file__).parent / "golden"

CLICK = Tool(
    name="click",
    description="Click an element of the screen by its id. Ids come from the latest observation.",
    input_schema={
        "type": "object",
        "properties": {
            "element_id": {"type": "string", "pattern": "^e[0-9]+$", "description": "Like e12."},
            "double": {"type": "boolean", "description": "Double-click instead."},
        },
        "required": ["element_id"],
        "additionalProperties": False,
    },
)
TYPE_TEXT = Tool(
    name="type_text",
    description="Type text into the focused element.",
    input_schema={
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "submit": {"type": "boolean"},
        },
        "required": ["text"],
        "additionalProperties": False,
    },
)
SCROLL = Tool(
    name="scroll",
    description="Scroll an element.",
    input_schema={
        "type": "object",
        "properties": {
            "element_id": {"type": "string", "pattern": "^e[0-9]+$"},
            "direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
            "amount": {"type": "integer", "minimum": 1, "maximum": 20},
        },
        "required": ["element_id", "direction"],
        "additionalProperties": False,
    },
)


def grounded_click(ids: list[str]) -> Tool:
    """CLICK with its element id grounded in one observation's ids, as the agent sends it."""
    schema = {
        **CLICK.input_schema,
        "properties": {
            **CLICK.input_schema["properties"],
            "element_id": {"type": "string", "enum": ids, "description": "An id on screen."},
        },
    }
    return CLICK.model_copy(update={"input_schema": schema})


TOOLS = [CLICK, TYPE_TEXT, SCROLL]
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}

SCREEN = (
    "window 'Save changes?' (dialog)\n"
    "  e10 label 'Save changes to report.txt before closing?'\n"
    "  e11 button 'Cancel'\n"
    "  e12 button 'OK'"
)


def conversation() -> list[Message]:
    """A conversation with every block kind the formats must render."""
    raw: list[dict[str, Any]] = [
        {"role": "system", "content": "Prefer keyboard shortcuts."},
        {
            "role": "user",
            "content": [{"type": "text", "text": f"{SCREEN}\n\nClick OK, then type hi."}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "The OK button is e12.", "signature": "x"},
                {"type": "text", "text": "Clicking OK and typing."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "click",
                    "input": {"element_id": "e12"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_02",
                    "name": "type_text",
                    "input": {"text": "hi"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "clicked e12"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "no focused element"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AA=="},
                        },
                    ],
                },
                {"type": "text", "text": "Try again."},
            ],
        },
        {"role": "system", "content": "The dialog has closed."},
    ]
    return [Message.model_validate(message) for message in raw]


@dataclass
class Block:
    """A content block as a client would assemble it from the parser's events."""

    kind: str  # text | call | invalid
    text: str = ""
    name: str = ""
    input: Any = None
    streamed_json: str = ""
    deltas: list[str] = field(default_factory=list)


def assemble(events: list[ParsedEvent]) -> list[Block]:
    """Blocks from events, the way the server turns them into content (adjacent text merged)."""
    blocks: list[Block] = []
    open_call: Block | None = None
    for event in events:
        if isinstance(event, ParsedText):
            assert open_call is None, "text inside an open call"
            if blocks and blocks[-1].kind == "text":
                blocks[-1].text += event.text
            else:
                blocks.append(Block("text", text=event.text))
        elif isinstance(event, ParsedCallStart):
            assert open_call is None, "call started inside a call"
            open_call = Block("call", name=event.name)
            blocks.append(open_call)
        elif isinstance(event, ParsedInputDelta):
            assert open_call is not None, "input delta outside a call"
            open_call.streamed_json += event.partial_json
            open_call.deltas.append(event.partial_json)
        elif isinstance(event, ParsedCallEnd):
            assert open_call is not None, "call end without a start"
            open_call.input = event.input
            open_call = None
        elif isinstance(event, ParsedCallInvalid):
            if open_call is not None:
                blocks.remove(open_call)
                open_call = None
            blocks.append(Block("invalid", text=event.raw))
    assert open_call is None, "a call was left open"
    return blocks


def run_parser(parser: ToolCallParser, pieces: list[str]) -> list[Block]:
    events: list[ParsedEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.finish())
    return assemble(events)


def summary(blocks: list[Block]) -> list[tuple[str, Any]]:
    """What a user checks: text, calls with their inputs, invalid raw text."""
    out: list[tuple[str, Any]] = []
    for block in blocks:
        if block.kind == "call":
            out.append(("call", (block.name, block.input)))
        else:
            out.append((block.kind, block.text))
    return out


def check_calls(blocks: list[Block]) -> None:
    """Every call names a declared tool, validates, and its streamed JSON is exactly its input."""
    for block in blocks:
        if block.kind != "call":
            continue
        tool = TOOLS_BY_NAME[block.name]
        assert validate_input(tool, block.input) is None, (block.name, block.input)
        assert json.loads(block.streamed_json) == block.input, block.streamed_json
