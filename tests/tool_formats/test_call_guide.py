"""The call guide's two aids to the decode loop (issue 17), on the embedded model's
vocabulary: what it writes to close an open call, and the whole values it offers for a
choice; and the schemas its grammars are built from (declared properties only)."""

from __future__ import annotations

from typing import Any

import pytest

from deskloop.server.constraints import GrammarGuide, build_guide
from deskloop.server.protocol import Tool
from deskloop.server.tool_formats import tool_format
from deskloop.server.tool_formats._grammar import declared_properties_only, input_schema
from tests.tool_formats.helpers import TYPE_TEXT, grounded_click
from tests.tool_formats.vocabularies import family_tokenizer

pytestmark = pytest.mark.llamacpp


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return family_tokenizer("smollm2")


def guide_after(
    tokenizer: Any, tools: list[Tool], text: str, *, choice: str = "any", family: str = "generic"
) -> GrammarGuide:
    guide = build_guide(tokenizer, tool_format(family), tools, choice, parallel=False)
    assert guide is not None
    for token in tokenizer.tokenize_str(text, parse_special=True):
        guide.accept(token)
    assert not guide.failed
    return guide


def closing_tokens(guide: GrammarGuide) -> list[int]:
    """What the guide writes to close its call, when nothing is left to the model."""
    written: list[int] = []
    while not guide.is_complete():
        step = guide.closing_step()
        assert step, "the model would have to choose here"
        for token in step:
            guide.accept(token)
        written.extend(step)
    return written


def close(tokenizer: Any, guide: GrammarGuide) -> str:
    return str(tokenizer.decode_str(closing_tokens(guide)))


def test_an_open_string_is_closed_with_the_call(tokenizer: Any) -> None:
    head = '<tool_call>{"name": "type_text", "arguments": {"text": "Dear Sir, the sea is'
    guide = guide_after(tokenizer, [TYPE_TEXT], head)
    need = guide.closing_need(64)
    written = closing_tokens(guide)
    assert tokenizer.decode_str(written) == '"}}</tool_call>'
    assert need == len(written)  # the decoder plans with what closing will write


def test_a_required_property_is_written_before_the_call_closes(tokenizer: Any) -> None:
    # Nothing written yet of the arguments: closing still needs the required "text".
    guide = guide_after(tokenizer, [TYPE_TEXT], '<tool_call>{"name": "type_text", "arguments": ')
    assert close(tokenizer, guide) == '{"text": ""}}</tool_call>'


def test_nothing_needs_closing_outside_a_call(tokenizer: Any) -> None:
    guide = guide_after(tokenizer, [TYPE_TEXT], "I will type it now.", choice="auto")
    assert guide.closing_need(64) is None and guide.closing_step() == []
    assert not guide.required
    assert guide_after(tokenizer, [TYPE_TEXT], "<tool_call>").required


def test_a_call_after_the_forced_one_is_optional(tokenizer: Any) -> None:
    one = '<tool_call>\n{"name": "type_text", "arguments": {"text": "hi"}}\n</tool_call>'
    guide = build_guide(tokenizer, tool_format("hermes"), [TYPE_TEXT], "any", parallel=True)
    assert guide is not None and guide.required
    for token in tokenizer.tokenize_str(one + "\n<tool_call>\n{", parse_special=True):
        guide.accept(token)
    # The second call is open, but the answer already holds the call it had to.
    assert not guide.is_complete() and not guide.required


def test_qwen3_coder_and_gemma_calls_close_with_their_own_markers(tokenizer: Any) -> None:
    qwen = guide_after(
        tokenizer,
        [TYPE_TEXT],
        "<tool_call>\n<function=type_text>\n<parameter=text>\nDear Sir",
        family="qwen3_coder",
    )
    # The newline before </tool_call> is fixed, as the template writes it (issue 21).
    assert close(tokenizer, qwen) == "\n</parameter>\n</function>\n</tool_call>"
    gemma = guide_after(
        tokenizer,
        [TYPE_TEXT],
        "<start_function_call>call:type_text{text:<escape>Dear Sir",
        family="gemma",
    )
    assert close(tokenizer, gemma) == "<escape>}<end_function_call>"


def test_ids_are_offered_whole_where_the_value_starts(tokenizer: Any) -> None:
    ids = [f"e{number}" for number in range(1, 41)]
    head = '<tool_call>{"name": "click", "arguments": {"element_id": '
    before = guide_after(tokenizer, [grounded_click(ids)], head)
    assert before.value_choice() is None
    guide = guide_after(tokenizer, [grounded_click(ids)], head + '"')
    choice = guide.value_choice()
    assert choice is not None
    assert [tokenizer.decode_str(tokens) for tokens in choice.sequences] == ids
    assert choice.ends[tokenizer.tokenize_str('"')[0]]
    assert choice.ends[tokenizer.tokenize_str('"}')[0]]
    assert not choice.ends[tokenizer.tokenize_str("e")[0]]


def test_no_values_are_offered_inside_a_free_string_under_the_same_key(tokenizer: Any) -> None:
    # Another tool's free "element_id" string opens the same way: every id would pass there.
    free = Tool(
        name="describe",
        input_schema={
            "type": "object",
            "properties": {"element_id": {"type": "string"}},
            "required": ["element_id"],
        },
    )
    tools = [grounded_click(["e1", "e2"]), free]
    head = '<tool_call>{"name": "describe", "arguments": {"element_id": "'
    assert guide_after(tokenizer, tools, head).value_choice() is None
    head = '<tool_call>{"name": "click", "arguments": {"element_id": "'
    assert guide_after(tokenizer, tools, head).value_choice() is not None


def test_qwen3_coder_and_gemma_offer_ids_whole_too(tokenizer: Any) -> None:
    tools = [grounded_click(["e1", "e2", "e12"])]
    qwen = guide_after(
        tokenizer,
        tools,
        "<tool_call>\n<function=click>\n<parameter=element_id>\n",
        family="qwen3_coder",
    )
    gemma = guide_after(
        tokenizer, tools, "<start_function_call>call:click{element_id:<escape>", family="gemma"
    )
    for guide in (qwen, gemma):
        choice = guide.value_choice()
        assert choice is not None and len(choice.sequences) == 3


# -- declared properties only -------------------------------------------------------------


def test_objects_admit_only_their_declared_properties_required_first() -> None:
    schema = {
        "type": "object",
        "properties": {
            "double": {"type": "boolean"},
            "id": {"type": "string"},
            "at": {"type": "object", "properties": {"x": {"type": "integer"}}},
            "headers": {"type": "object"},
        },
        "required": ["id", "missing"],
    }
    closed = declared_properties_only(schema, top=True)
    assert list(closed["properties"]) == ["id", "missing", "double", "at", "headers"]
    assert closed["properties"]["missing"] == {}  # required: declared, whatever its value
    assert closed["additionalProperties"] is False
    assert closed["properties"]["at"]["additionalProperties"] is False
    # A nested object that declares nothing is a free mapping: closed it could only be {}.
    assert closed["properties"]["headers"] == {"type": "object"}
    assert schema["properties"]["at"] == {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
    }


@pytest.mark.parametrize(
    "extras", [True, {"type": "string"}], ids=["additionalProperties true", "a schema"]
)
def test_a_schema_that_says_what_extras_it_takes_keeps_them(extras: object) -> None:
    schema = {"type": "object", "properties": {"id": {}}, "additionalProperties": extras}
    assert declared_properties_only(schema, top=True)["additionalProperties"] == extras


def test_a_tool_without_arguments_takes_an_empty_object() -> None:
    screenshot = Tool(name="screenshot", input_schema={"type": "object"})
    assert input_schema(screenshot) == {"type": "object", "additionalProperties": False}
    composed = Tool(name="either", input_schema={"anyOf": [{"type": "object"}]})
    assert "additionalProperties" not in input_schema(composed)
