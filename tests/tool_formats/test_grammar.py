"""Each family's call grammar, compiled by llguidance for the embedded model's vocabulary,
accepts the model outputs its parser reads and refuses calls that would fail their schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine
from deskloop.server.constraints import GrammarGuide, build_grammar
from deskloop.server.protocol import Tool
from deskloop.server.tool_formats import tool_format
from deskloop.server.tool_formats.hermes import HermesFormat
from tests.tool_formats.helpers import CLICK, TOOLS, run_parser
from tests.tool_formats.test_parsers import GOLDEN_OUTPUTS

pytestmark = pytest.mark.llamacpp


@pytest.fixture(scope="module")
def tokenizer() -> Iterator[Any]:
    """The embedded model's guidance tokenizer, from the engine the server uses."""
    pytest.importorskip("llama_cpp")
    engine = create_engine("llamacpp", "", context_window=512, threads=1)
    assert isinstance(engine, LocalEngine)
    yield engine.guidance_tokenizer()
    engine.close()


def guided(tokenizer: Any, grammar: str, text: str, tokens: list[int] | None = None) -> bool:
    """Whether `grammar` lets a model write `text` (as `tokens`, or as the tokenizer would)."""
    guide = GrammarGuide(tokenizer, grammar)
    for token in tokens if tokens is not None else tokenizer.tokenize_str(text):
        mask = guide.allowed_tokens()
        assert mask is not None
        if not mask[token]:
            return False
        guide.accept(token)
    return guide.is_complete()


def accepts(tokenizer: Any, family: str, choice: str, text: str, *, parallel: bool = True) -> bool:
    grammar = build_grammar(tokenizer, tool_format(family), TOOLS, choice, parallel=parallel)
    return guided(tokenizer, grammar, text)


@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_auto_accepts_the_golden_output(tokenizer: Any, family: str) -> None:
    output = GOLDEN_OUTPUTS[family][0]
    if family == "generic":  # one call per turn in this format
        output = output[: output.index("</tool_call>") + len("</tool_call>")]
    assert accepts(tokenizer, family, "auto", output)


@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_auto_and_none_accept_plain_text(tokenizer: Any, family: str) -> None:
    text = "The dialog asks whether to save. Press OK?"
    assert accepts(tokenizer, family, "auto", text)
    assert accepts(tokenizer, family, "none", text)


@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_none_refuses_a_call(tokenizer: Any, family: str) -> None:
    output = GOLDEN_OUTPUTS[family][0]
    assert not accepts(tokenizer, family, "none", output)


@pytest.mark.parametrize("family", sorted(GOLDEN_OUTPUTS))
def test_forced_refuses_text_first(tokenizer: Any, family: str) -> None:
    assert not accepts(tokenizer, family, "any", "I think I should click.")


def test_forced_accepts_a_call_from_the_first_token(tokenizer: Any) -> None:
    call = '<tool_call>{"name": "click", "arguments": {"element_id": "e12"}}</tool_call>'
    assert accepts(tokenizer, "generic", "any", call)


@pytest.mark.parametrize(
    "bad_arguments",
    [
        '{"element_id": "OK"}',  # pattern
        '{"element_id": "e1", "extra": 1}',  # additionalProperties false
        '{"double": true}',  # required element_id missing
        '{"element_id": 12}',  # type
    ],
)
def test_calls_that_fail_the_schema_are_refused(tokenizer: Any, bad_arguments: str) -> None:
    call = f'<tool_call>{{"name": "click", "arguments": {bad_arguments}}}</tool_call>'
    assert not accepts(tokenizer, "generic", "auto", call)


def test_undeclared_tool_is_refused(tokenizer: Any) -> None:
    call = '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'
    assert not accepts(tokenizer, "generic", "auto", call)


def test_enum_is_enforced(tokenizer: Any) -> None:
    good = '{"name": "scroll", "arguments": {"element_id": "e1", "direction": "down"}}'
    bad = '{"name": "scroll", "arguments": {"element_id": "e1", "direction": "sideways"}}'
    assert accepts(tokenizer, "generic", "auto", f"<tool_call>{good}</tool_call>")
    assert not accepts(tokenizer, "generic", "auto", f"<tool_call>{bad}</tool_call>")


def test_disable_parallel_allows_one_call_only(tokenizer: Any) -> None:
    one = '<tool_call>\n{"name": "click", "arguments": {"element_id": "e1"}}\n</tool_call>'
    assert accepts(tokenizer, "hermes", "auto", one, parallel=False)
    assert not accepts(tokenizer, "hermes", "auto", f"{one}\n{one}", parallel=False)
    assert accepts(tokenizer, "hermes", "auto", f"{one}\n{one}", parallel=True)


def test_generic_format_writes_one_call_per_turn(tokenizer: Any) -> None:
    one = '<tool_call>{"name": "click", "arguments": {"element_id": "e1"}}</tool_call>'
    assert accepts(tokenizer, "generic", "auto", one, parallel=True)
    assert not accepts(tokenizer, "generic", "auto", f"{one}\n{one}", parallel=True)


def test_forced_tool_allows_only_that_tool(tokenizer: Any) -> None:
    grammar = build_grammar(tokenizer, tool_format("generic"), TOOLS, "tool", "type_text")
    typed = '<tool_call>{"name": "type_text", "arguments": {"text": "hi"}}</tool_call>'
    clicked = '<tool_call>{"name": "click", "arguments": {"element_id": "e1"}}</tool_call>'
    assert guided(tokenizer, grammar, typed)
    assert not guided(tokenizer, grammar, clicked)


def test_a_tool_name_is_written_in_its_own_tokens(tokenizer: Any) -> None:
    """A one-letter token cannot stand for the start of a name (SmolLM2 took `t`, meaning
    "toggle", and was held to "type_text" where it ranked "click" above every other name)."""
    grammar = build_grammar(tokenizer, tool_format("generic"), TOOLS, "any")
    head = '<tool_call>{"name": "'
    rest = 'ype_text", "arguments": {"text": "hi"}}</tool_call>'
    letters = [*tokenizer.tokenize_str(head), *tokenizer.tokenize_str("t"),
               *tokenizer.tokenize_str(rest)]
    assert not guided(tokenizer, grammar, "", letters)
    assert guided(tokenizer, grammar, head + "t" + rest)


def test_mask_allows_only_stop_once_a_call_is_complete(tokenizer: Any) -> None:
    grammar = build_grammar(tokenizer, tool_format("generic"), TOOLS, "any", parallel=False)
    guide = GrammarGuide(tokenizer, grammar, stop_tokens=[2])
    call = '<tool_call>{"name": "click", "arguments": {"element_id": "e1"}}</tool_call>'
    for token in tokenizer.tokenize_str(call):
        guide.allowed_tokens()
        guide.accept(token)
    mask = guide.allowed_tokens()
    # Only end-of-turn tokens: the engine's (SmolLM2 has three) and the one asked for.
    assert mask is not None
    assert set(mask.nonzero()[0].tolist()) == {2, *tokenizer.eos_tokens}


def test_qwen3_coder_values_follow_their_types(tokenizer: Any) -> None:
    def call(amount: str) -> str:
        return (
            "<tool_call>\n<function=scroll>\n<parameter=element_id>\ne3\n</parameter>\n"
            "<parameter=direction>\ndown\n</parameter>\n"
            f"<parameter=amount>\n{amount}\n</parameter>\n</function>\n</tool_call>"
        )

    assert accepts(tokenizer, "qwen3_coder", "auto", call("3"))
    assert not accepts(tokenizer, "qwen3_coder", "auto", call("three"))


NO_ARGUMENTS = Tool(
    name="screenshot", description="Take a screenshot.", input_schema={"type": "object"}
)
NESTED = Tool(
    name="fill_form",
    description="Fill several fields.",
    input_schema={
        "type": "object",
        "properties": {
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "value": {"type": "string"}},
                    "required": ["id", "value"],
                },
            },
            "options": {"type": "object", "properties": {"submit": {"type": "boolean"}}},
        },
        "required": ["fields"],
    },
)
EDGE_CALLS = {
    "hermes": (
        '<tool_call>\n{"name": "screenshot", "arguments": {}}\n</tool_call>',
        '<tool_call>\n{"name": "fill_form", "arguments": {"fields": [{"id": "e1", "value": "x"}]}}\n</tool_call>',
    ),
    "generic": (
        '<tool_call>{"name": "screenshot", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "fill_form", "arguments": {"fields": [{"id": "e1", "value": "x"}]}}</tool_call>',
    ),
    "llama3": (
        '{"name": "screenshot", "parameters": {}}',
        '{"name": "fill_form", "parameters": {"fields": [{"id": "e1", "value": "x"}]}}',
    ),
    "mistral": (
        '[TOOL_CALLS] [{"name": "screenshot", "arguments": {}}]',
        '[TOOL_CALLS] [{"name": "fill_form", "arguments": {"fields": [{"id": "e1", "value": "x"}]}}]',
    ),
    "qwen3_coder": (
        "<tool_call>\n<function=screenshot>\n</function>\n</tool_call>",
        "<tool_call>\n<function=fill_form>\n<parameter=fields>\n"
        '[{"id": "e1", "value": "x"}]\n</parameter>\n</function>\n</tool_call>',
    ),
    "gemma": (
        "<start_function_call>call:screenshot{}<end_function_call>",
        "<start_function_call>call:fill_form{fields:[{id:<escape>e1<escape>,value:<escape>x<escape>}]}"
        "<end_function_call>",
    ),
}


@pytest.mark.parametrize("family", sorted(EDGE_CALLS))
def test_tools_without_arguments_or_with_nested_ones(tokenizer: Any, family: str) -> None:
    tools = [NO_ARGUMENTS, NESTED]
    for call in EDGE_CALLS[family]:
        grammar = build_grammar(tokenizer, tool_format(family), tools, "auto")
        guide = GrammarGuide(tokenizer, grammar)
        for token in tokenizer.tokenize_str(call):
            mask = guide.allowed_tokens()
            assert mask is not None and mask[token], (family, call)
            guide.accept(token)
        assert guide.is_complete()
        blocks = run_parser(tool_format(family).new_parser(tools, guided=True), [call])
        assert [block.kind for block in blocks] == ["call"], (family, call)


def test_guides_from_one_grammar_do_not_share_state(tokenizer: Any) -> None:
    grammar = build_grammar(tokenizer, tool_format("generic"), TOOLS, "any")
    first, second = GrammarGuide(tokenizer, grammar), GrammarGuide(tokenizer, grammar)
    for token in tokenizer.tokenize_str("<tool_call>"):
        first.accept(token)
    mask = second.allowed_tokens()
    assert mask is not None and mask[tokenizer.tokenize_str("<")[0]]
    assert not first.is_complete() and not second.is_complete()


class SpecialMarkerFormat(HermesFormat):
    """Hermes with markers that are special tokens in SmolLM2's vocabulary, as
    `<tool_call>` is in Qwen's: exercises the special-token path of the grammar."""

    name = "special-marker-test"
    call_opener = "<issue_start>"
    call_closer = "<issue_closed>"


def special_accepts(tokenizer: Any, choice: str, text: str) -> bool:
    grammar = build_grammar(tokenizer, SpecialMarkerFormat(), TOOLS, choice)
    guide = GrammarGuide(tokenizer, grammar)
    for token in tokenizer.tokenize_str(text, parse_special=True):
        mask = guide.allowed_tokens()
        assert mask is not None
        if not mask[token]:
            return False
        guide.accept(token)
    return guide.is_complete()


def test_special_token_markers_are_matched_as_tokens(tokenizer: Any) -> None:
    call = '<issue_start>\n{"name": "click", "arguments": {"element_id": "e1"}}\n<issue_closed>'
    grammar = build_grammar(tokenizer, SpecialMarkerFormat(), TOOLS, "auto")
    assert "<[8]>" in grammar and "<[10]>" in grammar
    assert special_accepts(tokenizer, "auto", "I will click." + call)
    assert special_accepts(tokenizer, "auto", call)
    assert special_accepts(tokenizer, "any", call)
    assert special_accepts(tokenizer, "auto", "No call needed.")
    assert not special_accepts(tokenizer, "none", call)
    bad = '<issue_start>\n{"name": "click", "arguments": {"element_id": "OK"}}\n<issue_closed>'
    assert not special_accepts(tokenizer, "auto", bad)


# As pydantic writes schemas (MCP servers): definitions under $defs, used through $ref.
WITH_DEFINITIONS = Tool(
    name="fill_form",
    input_schema={
        "$defs": {
            "Field": {
                "type": "object",
                "title": "Field",
                "properties": {
                    "id": {"type": "string", "pattern": "^e[0-9]+$"},
                    "value": {"type": "string"},
                },
                "required": ["id", "value"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "title": "FillFormInput",
        "properties": {"fields": {"type": "array", "items": {"$ref": "#/$defs/Field"}}},
        "required": ["fields"],
    },
)
FIELDS_OK = '{"fields": [{"id": "e1", "value": "x"}]}'
FIELDS_BAD = '{"fields": [{"id": "OK", "value": "x"}]}'
DEFINITION_CALLS = {
    "hermes": '<tool_call>\n{{"name": "fill_form", "arguments": {args}}}\n</tool_call>',
    "generic": '<tool_call>{{"name": "fill_form", "arguments": {args}}}</tool_call>',
    "llama3": '{{"name": "fill_form", "parameters": {args}}}',
    "mistral": '[TOOL_CALLS] [{{"name": "fill_form", "arguments": {args}}}]',
    "mistral_v11": "[TOOL_CALLS]fill_form[ARGS]{args}",
}


@pytest.mark.parametrize("family", sorted(DEFINITION_CALLS))
def test_schemas_with_definitions_are_enforced(tokenizer: Any, family: str) -> None:
    shape = DEFINITION_CALLS[family]
    tools = [CLICK, WITH_DEFINITIONS]  # two tools: definitions must survive the merge
    for arguments, expected in ((FIELDS_OK, True), (FIELDS_BAD, False)):
        grammar = build_grammar(tokenizer, tool_format(family), tools, "auto")
        guide = GrammarGuide(tokenizer, grammar)
        accepted = True
        for token in tokenizer.tokenize_str(shape.format(args=arguments)):
            mask = guide.allowed_tokens()
            assert mask is not None
            if not mask[token]:
                accepted = False
                break
            guide.accept(token)
        assert (accepted and guide.is_complete()) is expected, (family, arguments)


def test_qwen3_coder_parameter_with_definitions(tokenizer: Any) -> None:
    def call(arguments: str) -> str:
        fields = arguments[len('{"fields": ') : -1]
        return (
            "<tool_call>\n<function=fill_form>\n<parameter=fields>\n"
            f"{fields}\n</parameter>\n</function>\n</tool_call>"
        )

    grammar = build_grammar(tokenizer, tool_format("qwen3_coder"), [WITH_DEFINITIONS], "auto")
    for arguments, expected in ((FIELDS_OK, True), (FIELDS_BAD, False)):
        guide = GrammarGuide(tokenizer, grammar)
        accepted = True
        for token in tokenizer.tokenize_str(call(arguments)):
            mask = guide.allowed_tokens()
            assert mask is not None
            if not mask[token]:
                accepted = False
                break
            guide.accept(token)
        assert (accepted and guide.is_complete()) is expected
