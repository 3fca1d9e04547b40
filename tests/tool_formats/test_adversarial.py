"""Broken model output never crashes a parser and never becomes a call that fails its schema."""

from __future__ import annotations

import pytest

from deskloop.server.tool_formats import tool_format
from tests.tool_formats.helpers import TOOLS, check_calls, run_parser, summary

ADVERSARIAL: dict[str, list[str]] = {
    "hermes": [
        '<tool_call>\n{"name": "click", "arguments": {"element_id": "e12"',  # cut mid-call
        '<tool_call>\n{"name": "click", "arguments": {"element_id": "e1}"}}',  # no closer
        '<tool_call>\n{"name": "rm_rf", "arguments": {}}\n</tool_call>',  # undeclared tool
        '<tool_call>\n{"name": "click", "arguments": {"element_id": 12}}\n</tool_call>',
        '<tool_call>\n{"name": "click", "arguments": {"id": "e1"}}\n</tool_call>',
        "<tool_call>\nclick(e12)\n</tool_call> and more text",
        "<tool_call>\n1}</tool_call><tool_response>ok</tool_response>",
        "<tool_call><tool_call><tool_call>",
        '<tool_call>\n{"name": "type_text", "arguments": {"text": "\\ud83d"}}\n</tool_call>',
        '<tool_call>\n{"name": "click", "arguments": {"element_id": "e1",}}\n</tool_call>',
        '<tool_call>\n{"name": ["click"], "arguments": {}}</tool_call>',
        "<tool_",
        'text }}} {{{ "\\ <tool_call>{{"name": "click"}}',
        '<tool_call>{"arguments": {"element_id": "e5"}, "name": "click"}</tool_call>',
    ],
    "generic": [
        '<tool_call>{"name": "click", "arguments": {"element_id": "e',
        '<tool_call>{"name": "scroll", "arguments": {"element_id": "e1", "direction": "sideways"}}</tool_call>',
        '<tool_call>{"name": "click", "arguments": {"element_id": "e1"}}</tool_response>',
        "<tool_call>{'name': 'click', 'arguments': {'element_id': 'e3'}}</tool_call>",
        '```json\n{"name": "click"}\n```',
    ],
    "llama3": [
        '{"name": "click", "parameters": {"element_id": ',
        '{"name": "delete_everything", "parameters": {}}',
        "{not json at all",
        '<|python_tag|>{"name": "click", "parameters": {"element_id": "x"}}',
        "   \n",
    ],
    "mistral": [
        '[TOOL_CALLS] [{"name": "click", "arguments": {"element_id": "e1',
        '[TOOL_CALLS] [{"name": "click", "arguments": {"element_id": "e1"}}, {"name": ',
        '[TOOL_CALLS] {"name": "click"}',
        '[TOOL_CALLS] [{"name": "scroll", "arguments": {"element_id": "e1"}}]',
        "[TOOL_CALLS",
    ],
    "mistral_v11": [
        '[TOOL_CALLS]click[ARGS]{"element_id": "e1',
        '[TOOL_CALLS]format_disk[ARGS]{"drive": "c"}',
        '[TOOL_CALLS]click[ARGS]{"element_id": 5}',
        "[TOOL_CALLS]" + "x" * 300,
        '[TOOL_CALLS]click{"element_id": "e1"}',
    ],
    "qwen3_coder": [
        "<tool_call>\n<function=click>\n<parameter=element_id>\ne1",
        "<tool_call>\n<function=launch_missiles>\n</function>\n</tool_call>",
        "<tool_call>\n<function=scroll>\n<parameter=element_id>\ne1\n</parameter>\n</function>\n</tool_call>",
        "<tool_call>\n<function=scroll>\n<parameter=amount>\nmany\n</parameter>\n</function>\n</tool_call>",
        "<tool_call>\nclick e1\n</tool_call>",
        "<tool_call>\n<function=click",
    ],
    "gemma": [
        "<start_function_call>call:click{element_id:<escape>e1",
        "<start_function_call>call:nope{}<end_function_call>",
        "<start_function_call>call:scroll{element_id:<escape>e1<escape>,amount:lots}<end_function_call>",
        "<start_function_call>click e1<end_function_call>",
        "<start_function_call>call:click{element_id:<escape>e1<escape>,double:maybe}<end_function_call>",
    ],
}

CASES = [(family, output) for family, outputs in ADVERSARIAL.items() for output in outputs]


@pytest.mark.parametrize("guided", [False, True], ids=["unguided", "guided"])
@pytest.mark.parametrize(("family", "output"), CASES)
def test_broken_output_yields_no_invalid_call(family: str, output: str, guided: bool) -> None:
    fmt = tool_format(family)
    whole = run_parser(fmt.new_parser(TOOLS, guided=guided), [output])
    check_calls(whole)
    for cut in range(1, len(output)):
        blocks = run_parser(fmt.new_parser(TOOLS, guided=guided), [output[:cut], output[cut:]])
        check_calls(blocks)
        assert summary(blocks) == summary(whole), f"split at {cut}"


@pytest.mark.parametrize("family", sorted(ADVERSARIAL))
def test_output_cut_mid_call_is_invalid_not_a_call(family: str) -> None:
    output = ADVERSARIAL[family][0]
    blocks = run_parser(tool_format(family).new_parser(TOOLS, guided=True), [output])
    assert [block.kind for block in blocks] == ["invalid"]
    assert blocks[0].text == output.lstrip()


def test_unguided_repair_keeps_what_the_model_meant() -> None:
    output = "<tool_call>{'name': 'click', 'arguments': {'element_id': 'e3'}}</tool_call>"
    blocks = run_parser(tool_format("generic").new_parser(TOOLS), [output])
    assert summary(blocks) == [("call", ("click", {"element_id": "e3"}))]


def test_undeclared_tool_comes_back_as_its_raw_text() -> None:
    output = '<tool_call>\n{"name": "rm_rf", "arguments": {}}\n</tool_call>'
    blocks = run_parser(tool_format("hermes").new_parser(TOOLS), [output])
    assert [block.kind for block in blocks] == ["invalid"]
    assert "rm_rf" in blocks[0].text
