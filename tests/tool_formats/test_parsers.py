"""Each family's parser reads its model's output into text and calls, however the output is split."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deskloop.server.tool_formats import tool_format
from tests.tool_formats.helpers import TOOLS, check_calls, run_parser, summary

TRICKY_TEXT = 'a } brace, </tool_call> and "quotes" – ünïcødé ✓'

# family -> (model output, what the user should get)
GOLDEN_OUTPUTS: dict[str, tuple[str, list[tuple[str, Any]]]] = {
    "hermes": (
        "I'll click OK.\n<tool_call>\n"
        '{"name": "click", "arguments": {"element_id": "e12", "double": true}}\n</tool_call>\n'
        '<tool_call>\n{"name": "type_text", "arguments": {"text": '
        + '"a } brace, </tool_call> and \\"quotes\\" – ünïcødé ✓"'
        + "}}\n</tool_call>",
        [
            ("text", "I'll click OK."),
            ("call", ("click", {"element_id": "e12", "double": True})),
            ("call", ("type_text", {"text": TRICKY_TEXT})),
        ],
    ),
    "generic": (
        'I\'ll click OK.\n<tool_call>{"name": "click", "arguments": {"element_id": "e12", "double": true}}'
        '</tool_call>\n<tool_call>{"name": "type_text", "arguments": {"text": '
        + '"a } brace, </tool_call> and \\"quotes\\" – ünïcødé ✓"'
        + "}}</tool_call>",
        [
            ("text", "I'll click OK."),
            ("call", ("click", {"element_id": "e12", "double": True})),
            ("call", ("type_text", {"text": TRICKY_TEXT})),
        ],
    ),
    "llama3": (
        '{"name": "scroll", "parameters": {"element_id": "e3", "direction": "down", "amount": 3}}',
        [("call", ("scroll", {"element_id": "e3", "direction": "down", "amount": 3}))],
    ),
    "mistral": (
        '[TOOL_CALLS] [{"name": "click", "arguments": {"element_id": "e12"}}, '
        '{"name": "scroll", "arguments": {"element_id": "e3", "direction": "down", "amount": 3}}]',
        [
            ("call", ("click", {"element_id": "e12"})),
            ("call", ("scroll", {"element_id": "e3", "direction": "down", "amount": 3})),
        ],
    ),
    "mistral_v11": (
        '[TOOL_CALLS]click[ARGS]{"element_id": "e12"}'
        '[TOOL_CALLS]type_text[ARGS]{"text": "a } brace, </tool_call> and \\"quotes\\" – ünïcødé ✓"}',
        [
            ("call", ("click", {"element_id": "e12"})),
            ("call", ("type_text", {"text": TRICKY_TEXT})),
        ],
    ),
    "qwen3_coder": (
        "Typing now.\n<tool_call>\n<function=type_text>\n<parameter=text>\n"
        + "line one\n"
        + TRICKY_TEXT
        + "\n</parameter>\n<parameter=submit>\ntrue\n</parameter>\n</function>\n</tool_call>\n"
        "<tool_call>\n<function=scroll>\n<parameter=element_id>\ne3\n</parameter>\n"
        "<parameter=direction>\ndown\n</parameter>\n<parameter=amount>\n3\n</parameter>\n"
        "</function>\n</tool_call>",
        [
            ("text", "Typing now."),
            ("call", ("type_text", {"text": "line one\n" + TRICKY_TEXT, "submit": True})),
            ("call", ("scroll", {"element_id": "e3", "direction": "down", "amount": 3})),
        ],
    ),
    "gemma": (
        "Sure.<start_function_call>call:click{element_id:<escape>e12<escape>,double:true}"
        "<end_function_call><start_function_call>call:type_text{text:<escape>"
        + TRICKY_TEXT
        + "<escape>}<end_function_call>",
        [
            ("text", "Sure."),
            ("call", ("click", {"element_id": "e12", "double": True})),
            ("call", ("type_text", {"text": TRICKY_TEXT})),
        ],
    ),
}


@pytest.mark.parametrize("guided", [False, True], ids=["unguided", "guided"])
@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_golden_output_parses_to_the_expected_blocks(family: str, guided: bool) -> None:
    output, expected = GOLDEN_OUTPUTS[family]
    blocks = run_parser(tool_format(family).new_parser(TOOLS, guided=guided), [output])
    assert summary(blocks) == expected
    check_calls(blocks)


@pytest.mark.parametrize("guided", [False, True], ids=["unguided", "guided"])
@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_any_split_gives_the_same_blocks(family: str, guided: bool) -> None:
    output, expected = GOLDEN_OUTPUTS[family]
    fmt = tool_format(family)
    for cut in range(1, len(output)):
        blocks = run_parser(fmt.new_parser(TOOLS, guided=guided), [output[:cut], output[cut:]])
        assert summary(blocks) == expected, f"split at {cut}: {output[:cut]!r}"
        check_calls(blocks)
    one_by_one = run_parser(fmt.new_parser(TOOLS, guided=guided), list(output))
    assert summary(one_by_one) == expected
    check_calls(one_by_one)


@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_guided_input_streams_in_pieces_as_it_arrives(family: str) -> None:
    output, _ = GOLDEN_OUTPUTS[family]
    blocks = run_parser(tool_format(family).new_parser(TOOLS, guided=True), list(output))
    calls = [block for block in blocks if block.kind == "call"]
    assert calls
    assert all(len(call.deltas) > 3 for call in calls), [call.deltas for call in calls]


@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_plain_text_passes_through_unchanged(family: str) -> None:
    text = "The dialog asks to save. Should I press OK?\n\n  - yes {maybe}\n"
    for guided in (False, True):
        blocks = run_parser(tool_format(family).new_parser(TOOLS, guided=guided), list(text))
        assert summary(blocks) == [("text", text)]


def test_llama3_json_is_a_call_only_at_the_start() -> None:
    parser = tool_format("llama3").new_parser(TOOLS)
    text = 'Use {"name": "click"} to click.'
    assert summary(run_parser(parser, [text])) == [("text", text)]
    tagged = '<|python_tag|>{"name": "click", "parameters": {"element_id": "e1"}}'
    blocks = run_parser(tool_format("llama3").new_parser(TOOLS), [tagged])
    assert summary(blocks) == [("call", ("click", {"element_id": "e1"}))]


def test_unguided_arguments_written_as_a_json_string_are_read() -> None:
    output = '<tool_call>{"name": "click", "arguments": "{\\"element_id\\": \\"e4\\"}"}</tool_call>'
    blocks = run_parser(tool_format("hermes").new_parser(TOOLS), [output])
    assert summary(blocks) == [("call", ("click", {"element_id": "e4"}))]


LONG_TEXT = ('lorem {ipsum} "dolor" \\ sit – amet, ' * 3000)[:100_000]
LONG_CALLS = {
    "hermes": '<tool_call>\n{"name": "type_text", "arguments": {"text": '
    + json.dumps(LONG_TEXT)
    + "}}\n</tool_call>",
    "qwen3_coder": "<tool_call>\n<function=type_text>\n<parameter=text>\n"
    + LONG_TEXT
    + "\n</parameter>\n</function>\n</tool_call>",
    "gemma": "<start_function_call>call:type_text{text:<escape>"
    + LONG_TEXT
    + "<escape>}<end_function_call>",
}


@pytest.mark.parametrize("guided", [False, True], ids=["unguided", "guided"])
@pytest.mark.parametrize("family", sorted(LONG_CALLS))
def test_a_long_argument_streamed_in_token_sized_pieces(family: str, guided: bool) -> None:
    # A file's content as an argument: 100 kB in 4-character pieces, as tokens arrive.
    output = LONG_CALLS[family]
    pieces = [output[index : index + 4] for index in range(0, len(output), 4)]
    blocks = run_parser(tool_format(family).new_parser(TOOLS, guided=guided), pieces)
    assert summary(blocks) == [("call", ("type_text", {"text": LONG_TEXT}))]
    check_calls(blocks)
