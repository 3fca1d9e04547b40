"""Tool calls through an upstream that may not enforce them.

The schema of "one call to one of these tools" (sent as the upstream's constrained-output
parameter), reading that call as it streams, and reading a call a model wrote as text.
Grounded enums (`x-grounded`: ids on screen now) go upstream only inside that schema, as
plain JSON Schema; the tools the upstream renders into the prompt never carry their values.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from deskloop.engines.base import OutputEvent, ToolCallEnd, ToolCallStart, ToolInputDelta
from deskloop.engines.openai_translate import parse_tool_arguments

# The mark a client puts on an enum of what exists right now (server/tool_schema.py).
GROUNDED_KEY = "x-grounded"
# The keys models put a call's arguments under: Hermes/Qwen "arguments", Llama 3.1 "parameters".
ARGUMENT_KEYS = ("arguments", "parameters")


@dataclass(frozen=True)
class StreamedCallStart(ToolCallStart):
    """A call read from constrained output: its input streams as it comes, already held to
    the schema upstream, so the server passes it on without holding it."""


@asynccontextmanager
async def closing(events: AsyncIterator[OutputEvent]) -> AsyncIterator[AsyncIterator[OutputEvent]]:
    """`events`, closed however the iteration ends: a client that goes away closes the
    upstream's stream through every generator in between."""
    try:
        yield events
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def plain_schema(schema: Any) -> Any:
    """The schema as any JSON Schema validator reads it: without deskloop's own marks."""
    if isinstance(schema, list):
        return [plain_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: plain_schema(value) for key, value in schema.items() if key != GROUNDED_KEY}


def _is_grounded(schema: dict[str, Any]) -> bool:
    return schema.get(GROUNDED_KEY) is True and isinstance(schema.get("enum"), list)


def prompt_schema(schema: Any) -> Any:
    """The schema as the upstream renders it into the prompt: grounded enums lose their values.

    Rendered, the ids on screen would change the prompt every turn (defeating the upstream's
    prefix cache) and make a small model name the first one listed (server/tool_schema.py).
    """
    if isinstance(schema, list):
        return [prompt_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if _is_grounded(schema):
        kept = {k: v for k, v in schema.items() if k not in ("enum", GROUNDED_KEY)}
        return {"type": "string", **kept}
    return {key: prompt_schema(value) for key, value in schema.items() if key != GROUNDED_KEY}


def prompt_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**tool, "input_schema": prompt_schema(tool["input_schema"])} for tool in tools]


def chosen_tools(tools: list[dict[str, Any]], choice: dict[str, Any]) -> list[dict[str, Any]]:
    """The tools a forced `tool_choice` allows: the named one, or all of them for `any`."""
    if choice.get("type") == "tool":
        return [tool for tool in tools if tool["name"] == choice.get("name")]
    return list(tools)


def call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON Schema of one call `{"name": ..., "arguments": {...}}` to one of `tools`.

    The name comes first (engines generate properties in schema order), so the call can
    start streaming before its arguments do; grounded enums are kept, as plain enums.
    """
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [tool["name"]]},
                "arguments": plain_schema(tool["input_schema"]),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


_CALL_PREFIX = re.compile(
    r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*'
)


@dataclass
class CallReader:
    """Reads one streamed `{"name": N, "arguments": {...}}`: a start once the name is known,
    the arguments' text as input deltas as it comes, and the end with the parsed input."""

    text: str = ""
    name: str | None = None
    _arguments_at: int = 0
    _scanned: int = 0
    _emitted: int = 0
    _arguments_end: int | None = None
    _depth: int = 0
    _in_string: bool = False
    _escaped: bool = False
    _started: bool = field(default=False)

    @property
    def started(self) -> bool:
        return self._started

    def feed(self, piece: str) -> list[OutputEvent]:
        self.text += piece
        events: list[OutputEvent] = []
        if self.name is None:
            match = _CALL_PREFIX.match(self.text)
            if match is None or match.end() == len(self.text):
                return []  # wait: the prefix may still be growing (whitespace after ':')
            self.name = json.loads(f'"{match.group(1)}"')
            self._arguments_at = self._scanned = self._emitted = match.end()
            self._started = True
            events.append(StreamedCallStart(f"toolu_{uuid.uuid4().hex[:24]}", self.name))
        self._scan()
        end = self._arguments_end if self._arguments_end is not None else self._scanned
        if end > self._emitted:
            events.append(ToolInputDelta(self.text[self._emitted : end]))
            self._emitted = end
        return events

    def _scan(self) -> None:
        """Follow the arguments' value until its object closes (strings and escapes kept)."""
        while self._arguments_end is None and self._scanned < len(self.text):
            char = self.text[self._scanned]
            self._scanned += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth <= 0:
                    self._arguments_end = self._scanned

    def finish(self) -> list[OutputEvent]:
        """The call's end; or, when the name never came first, the whole call at once.

        Empty when the text is not a call at all (the caller keeps it as text).
        """
        if self._started:
            end = self._arguments_end if self._arguments_end is not None else len(self.text)
            return [ToolCallEnd(parse_tool_arguments(self.text[self._arguments_at : end]))]
        call = read_text_call(self.text)
        if call is None:
            return []
        name, arguments = call
        self._started = True
        self.name = name
        return [
            StreamedCallStart(f"toolu_{uuid.uuid4().hex[:24]}", name),
            ToolInputDelta(json.dumps(arguments, ensure_ascii=False)),
            ToolCallEnd(arguments),
        ]


# A call written as text: in a markdown fence, in the Hermes/Qwen tags, or after Llama's
# python tag (servers often drop special tokens, so the tag may be missing: bare JSON).
_FENCED = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?[ \t]*```$", re.DOTALL)
_TAGGED = (
    re.compile(r"^<tool_call>(.*?)</tool_call>$", re.DOTALL),
    re.compile(r"^<\|python_tag\|>(.*)$", re.DOTALL),
)
# Text that could still become a call once more of it has come.
CALL_OPENINGS = ("{", "```", "<tool_call>", "<|python_tag|>")


def could_be_call(text: str) -> bool:
    """Whether text seen so far may still turn out to be a lone call (nothing before it)."""
    start = text.lstrip()
    return not start or any(
        start.startswith(opening) or opening.startswith(start) for opening in CALL_OPENINGS
    )


def read_text_call(text: str) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) when `text` is one JSON call object and nothing else but whitespace.

    The object is bare, in one markdown fence, or in its family's tags; it has a string
    `name` and an object of `arguments` (or Llama's `parameters`), and no other keys.
    Whether the name is declared and the arguments valid is for the caller to check.
    """
    body = text.strip()
    for pattern in (_FENCED, *_TAGGED):
        found = pattern.match(body)
        if found:
            body = found.group(1).strip()
            break
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    argument_keys = [key for key in ARGUMENT_KEYS if key in value]
    if len(argument_keys) != 1 or set(value) != {"name", argument_keys[0]}:
        return None
    arguments = value[argument_keys[0]]
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return value["name"], arguments
