"""Gemma function-call blocks (FunctionGemma and templates that follow it).

    <start_function_call>call:click{element_id:<escape>e12<escape>,double:true}<end_function_call>

Strings sit between `<escape>` markers (so braces and commas inside them are text);
numbers, booleans, nested `{k:v}` objects and `[...]` lists are written bare. String
arguments stream as they arrive; other values stream whole once complete.
"""

from __future__ import annotations

import json
from typing import Any

from deskloop.server.protocol import Tool
from deskloop.server.tool_formats._grammar import input_schema, ordered_properties, pattern_regex
from deskloop.server.tool_formats._stepwise import StepwiseParser
from deskloop.server.tool_formats._text import partial_suffix
from deskloop.server.tool_formats.base import (
    MarkerSyntax,
    ParsedCallEnd,
    ParsedCallInvalid,
    ParsedCallStart,
    ParsedInputDelta,
    ToolCallParser,
    ToolFormat,
    ValueChoice,
    lark_string,
    small_enums,
)
from deskloop.server.tool_schema import validate_input

OPENER = "<start_function_call>"
CLOSER = "<end_function_call>"
ESCAPE = "<escape>"


class GemmaValueError(ValueError):
    """Text that is not a Gemma value."""


def read_value(text: str, at: int = 0) -> tuple[Any, int]:
    """The Gemma value starting at `at` and the index after it."""
    if text.startswith(ESCAPE, at):
        end = text.find(ESCAPE, at + len(ESCAPE))
        if end < 0:
            raise GemmaValueError("unclosed <escape> string")
        return text[at + len(ESCAPE) : end], end + len(ESCAPE)
    if text.startswith("{", at):
        return _read_object(text, at + 1)
    if text.startswith("[", at):
        items: list[Any] = []
        at += 1
        while not text.startswith("]", at):
            value, at = read_value(text, at)
            items.append(value)
            if text.startswith(",", at):
                at += 1
            elif not text.startswith("]", at):
                raise GemmaValueError(f"expected , or ] at {at}")
        return items, at + 1
    end = at
    while end < len(text) and text[end] not in ",}]":
        end += 1
    word = text[at:end].strip()
    try:
        return json.loads(word), end
    except json.JSONDecodeError:
        raise GemmaValueError(f"not a value: {word!r}") from None


def _read_object(text: str, at: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while not text.startswith("}", at):
        colon = text.find(":", at)
        if colon < 0:
            raise GemmaValueError("expected key:value")
        key = text[at:colon].strip()
        value, at = read_value(text, colon + 1)
        result.setdefault(key, value)
        if text.startswith(",", at):
            at += 1
        elif not text.startswith("}", at):
            raise GemmaValueError(f"expected , or }} at {at}")
    return result, at + 1


def write_value(value: Any) -> str:
    """`value` in Gemma's syntax (for past calls in the history)."""
    if isinstance(value, str):
        return f"{ESCAPE}{value}{ESCAPE}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{write_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(write_value(item) for item in value) + "]"
    return json.dumps(value)


class GemmaParser(StepwiseParser):
    """Text, then call blocks; see the module docstring."""

    opener = OPENER
    closer = CLOSER
    first_call_state = "name"  # then key, value, string, closing
    call_states = frozenset({"name", "key", "value", "string", "lost"})

    def _begin_call(self) -> None:
        self._tool: Tool | None = None
        self._values: dict[str, Any] = {}
        self._key = ""
        self._value = ""
        self._depth = 0
        self._in_escape = False
        self._reason = ""

    def _step_name(self, final: bool) -> None:
        brace = self._held.find("{")
        if brace < 0:
            if not "call:".startswith(self._held[:5]) or CLOSER in self._held:
                self._give_up("the call does not start with call:NAME{")
            return
        head = self._take(brace + 1)
        name = head[:-1].strip().removeprefix("call:")
        self._tool = self.tools.get(name)
        if self._tool is None:
            self._give_up(f"{name!r} is not one of the declared tools")
            return
        if self.guided:
            self._events.append(ParsedCallStart(name))
            self._events.append(ParsedInputDelta("{"))
        self._state = "key"

    def _step_key(self, final: bool) -> None:
        if self._held.startswith("}"):
            self._take(1)
            self._end_call()
            return
        if self._held.startswith(","):
            self._take(1)
            return
        colon = self._held.find(":")
        if colon < 0:
            return
        self._key = self._take(colon + 1)[:-1].strip()
        self._value, self._depth, self._in_escape = "", 0, False
        self._state = "value"

    def _step_value(self, final: bool) -> None:
        if not self._value and self._held.startswith(ESCAPE[: len(self._held)]):
            if len(self._held) < len(ESCAPE):
                return
            self._take(len(ESCAPE))
            if self.guided:
                self._events.append(ParsedInputDelta(self._key_prefix() + '"'))
            self._state = "string"
            return
        # An <escape> marker split across pieces must not be read as text.
        limit = len(self._held) - (0 if final else partial_suffix(self._held, ESCAPE))
        for index, char in enumerate(self._held[:limit]):
            rest = self._held[index:]
            if rest.startswith(ESCAPE):
                self._in_escape = not self._in_escape
            if self._in_escape:
                continue
            if char in "{[":
                self._depth += 1
            elif char in "}]" and self._depth > 0:
                self._depth -= 1
            elif char in ",}" and self._depth == 0:
                self._value += self._take(index)
                self._close_value()
                return
        self._value += self._take(limit)

    def _key_prefix(self) -> str:
        return (", " if self._values else "") + json.dumps(self._key) + ": "

    def _step_string(self, final: bool) -> None:
        at = self._held.find(ESCAPE)
        piece = self._take(at if at >= 0 else len(self._held) - partial_suffix(self._held, ESCAPE))
        self._value += piece
        if piece and self.guided:
            self._events.append(ParsedInputDelta(json.dumps(piece, ensure_ascii=False)[1:-1]))
        if at >= 0:
            self._take(len(ESCAPE))
            if self.guided:
                self._events.append(ParsedInputDelta('"'))
            self._values.setdefault(self._key, self._value)
            self._state = "key"

    def _close_value(self) -> None:
        try:
            value, _ = read_value(self._value.strip())
        except GemmaValueError as exc:
            self._give_up(str(exc))
            return
        if self.guided:
            self._events.append(
                ParsedInputDelta(self._key_prefix() + json.dumps(value, ensure_ascii=False))
            )
        self._values.setdefault(self._key, value)
        self._state = "key"

    def _end_call(self) -> None:
        assert self._tool is not None
        self._text.call_closed()
        problem = validate_input(self._tool, self._values)
        if problem is not None:
            self._events.append(ParsedCallInvalid(self._raw, problem))
        elif self.guided:
            self._events.append(ParsedInputDelta("}"))
            self._events.append(ParsedCallEnd(dict(self._values)))
        else:
            self._events.append(ParsedCallStart(self._tool.name))
            self._events.append(ParsedInputDelta(json.dumps(self._values, ensure_ascii=False)))
            self._events.append(ParsedCallEnd(dict(self._values)))
        self._state = "closing"

    def _give_up(self, reason: str) -> None:
        self._reason = reason
        self._state = "lost"
        self._step_lost(final=False)

    def _step_lost(self, final: bool) -> None:
        at = self._held.find(CLOSER)
        if at < 0:
            self._take(len(self._held))
            return
        self._take(at + len(CLOSER))
        self._text.call_closed()
        self._events.append(ParsedCallInvalid(self._raw, self._reason))
        self._state = "text"


class GemmaFormat(ToolFormat):
    name = "gemma"
    call_opener = OPENER
    closers = (ESCAPE, "}", "]", CLOSER)

    def value_choices(self, tools: list[Tool]) -> list[ValueChoice]:
        return [
            ValueChoice(f"{key}:{ESCAPE}", tuple(values), ESCAPE)
            for tool in tools
            for key, values in small_enums(tool.input_schema)
        ]

    def new_parser(self, tools: list[Tool], *, guided: bool = False) -> ToolCallParser:
        return GemmaParser(tools, guided=guided)

    def write_call(self, name: str, arguments: dict[str, Any]) -> str:
        pairs = ",".join(f"{key}:{write_value(value)}" for key, value in arguments.items())
        return f"{OPENER}call:{name}{{{pairs}}}{CLOSER}"

    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        escape = marker(ESCAPE)
        if escape.startswith('"'):
            string_rule = f"gstr: {escape} gtext\ngtext[lazy]: /(?s:.*){ESCAPE}/"
        else:
            # Text cannot contain the special token, so it ends the string.
            string_rule = f"gstr: {escape} GTEXT {escape}\nGTEXT: /(?s:.*)/"
        more = f" ({marker(OPENER)} call)*" if parallel else ""
        lines = [
            f"calls: call{more}",
            f"call: function {marker(CLOSER)}",
            "function: " + " | ".join(f"f{index}" for index in range(len(tools))),
            string_rule,
            'gvalue: gstr | NUMBER | "true" | "false" | "null" | gobject | glist',
            'gobject: "{" (KEY ":" gvalue ("," KEY ":" gvalue)*)? "}"',
            'glist: "[" (gvalue ("," gvalue)*)? "]"',
            "KEY: /[A-Za-z_][A-Za-z0-9_.-]*/",
            r"NUMBER: /-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/",
            r"INTEGER: /-?[0-9]+/",
        ]
        for index, tool in enumerate(tools):
            lines.extend(_function_rules(index, tool, marker))
        return "\n".join(lines)


def _value_expression(schema: Any, marker: MarkerSyntax) -> str:
    if not isinstance(schema, dict):
        return "gvalue"
    values = schema.get("enum")
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        # Only the listed values, like the JSON families' enums (ids are grounded this way).
        escape = marker(ESCAPE)
        choices = " | ".join(lark_string(value) for value in values)
        return f"({escape} ({choices}) {escape})"
    kind = schema.get("type")
    pattern = pattern_regex(schema) if kind == "string" else None
    if pattern is not None:
        escape = marker(ESCAPE)
        return f"({escape} {pattern} {escape})"
    return {
        "string": "gstr",
        "integer": "INTEGER",
        "number": "NUMBER",
        "boolean": '("true" | "false")',
        "object": "gobject",
        "array": "glist",
    }.get(str(kind), "gvalue")


def _sequence(items: list[tuple[str, bool]]) -> str:
    """Comma-separated items in order, optional ones may be left out (no stray commas)."""
    if not items:
        return ""
    (first, required), rest = items[0], items[1:]
    tail = " ".join(f'"," {rule}' if needed else f'("," {rule})?' for rule, needed in rest)
    with_first = f"{first} {tail}".strip()
    if required:
        return with_first
    without = _sequence(rest)
    return f"({with_first} | {without})" if without else f"({with_first})?"


def _function_rules(index: int, tool: Tool, marker: MarkerSyntax) -> list[str]:
    schema = input_schema(tool)
    lines = []
    items = []
    for number, (name, sub, required) in enumerate(ordered_properties(schema)):
        rule = f"f{index}_p{number}"
        lines.append(f"{rule}: {lark_string(name + ':')} {_value_expression(sub, marker)}")
        items.append((rule, required))
    head = marker.spelled(tool.name, before="call:", after="{")
    lines.insert(0, f'f{index}: {head} {_sequence(items)} "}}"')
    return lines
