"""Reading calls from upstream text: streamed under a constraint, or written by the model."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deskloop.engines.base import ToolCallEnd, ToolCallStart, ToolInputDelta
from deskloop.engines.upstream_calls import (
    CallReader,
    call_schema,
    could_be_call,
    prompt_tools,
    read_text_call,
)

CLICK = {
    "name": "click",
    "input_schema": {
        "type": "object",
        "properties": {"id": {"type": "string", "enum": ["e1", "e2"], "x-grounded": True}},
        "required": ["id"],
    },
}
WAIT = {"name": "wait", "input_schema": {"type": "object", "properties": {}}}


def read_in_pieces(text: str, cuts: list[int]) -> list[Any]:
    reader = CallReader()
    events: list[Any] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(text)]:
        events += reader.feed(text[start:cut])
        start = cut
    return events + reader.finish()


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=12))
def test_a_streamed_call_reads_the_same_however_it_is_cut(cuts: list[int]) -> None:
    text = '{ "name" : "type_text", "arguments": {"id": "e1", "text": "a \\"}\\" {b"} }'
    events = read_in_pieces(text, cuts)
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["type_text"]
    streamed = "".join(e.partial_json for e in events if isinstance(e, ToolInputDelta))
    assert json.loads(streamed) == {"id": "e1", "text": 'a "}" {b'}
    assert events[-1] == ToolCallEnd({"id": "e1", "text": 'a "}" {b'})


def test_arguments_before_the_name_come_whole_at_the_end() -> None:
    events = read_in_pieces('{"arguments": {"id": "e2"}, "name": "click"}', [5, 20])
    assert [type(e).__name__ for e in events] == [
        "StreamedCallStart",
        "ToolInputDelta",
        "ToolCallEnd",
    ]
    assert events[-1] == ToolCallEnd({"id": "e2"})


def test_a_call_cut_short_ends_with_what_could_be_closed() -> None:
    events = read_in_pieces('{"name": "click", "arguments": {"id": "e', [3])
    assert events[-1] == ToolCallEnd({"id": "e"})


def test_text_that_is_no_call_gives_no_events() -> None:
    reader = CallReader()
    assert reader.feed("Hello there") == []
    assert reader.finish() == [] and not reader.started


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "click", "arguments": {"id": "e1"}}',
        '  \n{"name": "click", "arguments": {"id": "e1"}}\n',
        '```json\n{"name": "click", "arguments": {"id": "e1"}}\n```',
        '```\n{"name": "click", "arguments": {"id": "e1"}}```',
        '<tool_call>\n{"name": "click", "arguments": {"id": "e1"}}\n</tool_call>',
        '<|python_tag|>{"name": "click", "parameters": {"id": "e1"}}',
        '{"name": "click", "parameters": {"id": "e1"}}',
        '{"name": "click", "arguments": "{\\"id\\": \\"e1\\"}"}',
    ],
)
def test_a_lone_call_is_read_bare_fenced_or_tagged(text: str) -> None:
    assert read_text_call(text) == ("click", {"id": "e1"})


@pytest.mark.parametrize(
    "text",
    [
        'Sure: {"name": "click", "arguments": {"id": "e1"}}',
        '{"name": "click", "arguments": {"id": "e1"}}\nDone.',
        '{"name": "click", "arguments": {"id": "e1"}} {"name": "click", "arguments": {}}',
        '{"name": "click", "arguments": {"id": "e1"}, "thought": "x"}',
        '{"name": "click", "arguments": {"id": "e1"}, "parameters": {}}',
        '{"name": 3, "arguments": {}}',
        '{"name": "click", "arguments": [1]}',
        '[{"name": "click", "arguments": {"id": "e1"}}]',
        '```json\n{"name": "click", "arguments": {"id": "e1"}}\n``` then more',
        "click e1",
    ],
)
def test_anything_else_is_not_a_call(text: str) -> None:
    assert read_text_call(text) is None


def test_could_be_call_waits_only_while_a_call_may_still_come() -> None:
    for prefix in ("", "  ", "{", '{"na', "`", "``", "```js", "<tool", "<|python"):
        assert could_be_call(prefix), prefix
    for prefix in ("I", "Sure", "<think>", "[TOOL", "`x"):
        assert not could_be_call(prefix), prefix


def test_call_schema_enforces_the_grounded_enum_as_plain_json_schema() -> None:
    schema = call_schema([CLICK, WAIT])
    assert "x-grounded" not in json.dumps(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"name": "click", "arguments": {"id": "e2"}})
    assert not validator.is_valid({"name": "click", "arguments": {"id": "e9"}})
    assert not validator.is_valid({"name": "press", "arguments": {}})
    assert validator.is_valid({"name": "wait", "arguments": {}})
    assert list(call_schema([CLICK])["properties"]) == ["name", "arguments"]


def test_prompt_tools_never_carry_grounded_values() -> None:
    shown = prompt_tools([CLICK])[0]["input_schema"]["properties"]["id"]
    assert shown == {"type": "string"}
    assert CLICK["input_schema"]["properties"]["id"]["enum"] == ["e1", "e2"]  # left as it was
