"""Grammars that force what they can (issue 21): in every format family, on the family's
own vocabulary, the fixed parts of a call come out without the model (markers, the tool's
name, keys, separators, the newlines the template writes, an id's end), so fast-forward
writes them in one batch."""

from __future__ import annotations

from typing import Any

import pytest

from deskloop.server.constraints import GrammarGuide, build_grammar, build_guide, count_forced
from deskloop.server.protocol import Tool
from deskloop.server.tool_formats import TOOL_FORMATS, tool_format
from deskloop.server.tool_formats._grammar import pattern_regex
from tests.tool_formats.helpers import CLICK, SCROLL, TYPE_TEXT, grounded_click
from tests.tool_formats.vocabularies import FAMILY_VOCABULARY, family_tokenizer

pytestmark = pytest.mark.llamacpp

FAMILIES = sorted(TOOL_FORMATS)
TOOLS = [CLICK, TYPE_TEXT, SCROLL]
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("click", {"element_id": "e14"}),
    ("type_text", {"text": "Invoice 2026-311 received", "submit": True}),
    ("scroll", {"element_id": "e3", "direction": "down", "amount": 2}),
]
# The share of these calls' tokens each family's grammar forces (tool_choice naming the
# tool), as measured on its vocabulary when the grammars were made to force more; a change
# that forces less shows here.
FLOOR = {
    "generic": 0.60,
    "hermes": 0.55,
    "qwen3_coder": 0.45,
    "llama3": 0.55,
    "mistral": 0.55,
    "mistral_v11": 0.55,
    "gemma": 0.55,
}


def tokens_of(tokenizer: Any, family: str, name: str, arguments: dict[str, Any]) -> list[int]:
    text = tool_format(family).write_call(name, arguments)
    written: list[int] = tokenizer.tokenize_str(text, parse_special=True)
    return written


def forced_of(tokenizer: Any, family: str, name: str, arguments: dict[str, Any]) -> tuple[int, int]:
    guide = build_guide(tokenizer, tool_format(family), TOOLS, "tool", name)
    assert guide is not None
    tokens = tokens_of(tokenizer, family, name, arguments)
    return count_forced(guide, tokens), len(tokens)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_grammar_accepts_the_call_as_written(family: str) -> None:
    tokenizer = family_tokenizer(FAMILY_VOCABULARY[family])
    for name, arguments in CALLS:
        guide = GrammarGuide(tokenizer, build_grammar(tokenizer, tool_format(family), TOOLS, "any"))
        for token in tokens_of(tokenizer, family, name, arguments):
            mask = guide.allowed_tokens()
            assert mask is not None and mask[token], (family, name)
            guide.accept(token)
        assert guide.is_complete()


@pytest.mark.parametrize("family", FAMILIES)
def test_most_of_a_call_is_forced(family: str) -> None:
    tokenizer = family_tokenizer(FAMILY_VOCABULARY[family])
    forced = total = 0
    for name, arguments in CALLS:
        part, whole = forced_of(tokenizer, family, name, arguments)
        forced, total = forced + part, total + whole
    assert forced / total >= FLOOR[family], (family, forced, total)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_named_tools_opening_is_forced(family: str) -> None:
    """tool_choice naming the tool: up to the first argument's value the model chooses at
    most a token that a longer one could span (the `>` before a value)."""
    tokenizer = family_tokenizer(FAMILY_VOCABULARY[family])
    guide = build_guide(tokenizer, tool_format(family), TOOLS, "tool", "click")
    assert guide is not None
    call = tool_format(family).write_call("click", {"element_id": "e14"})
    head = len(call[: call.index("e14")].encode())
    tokens = tokens_of(tokenizer, family, "click", {"element_id": "e14"})
    written = choices = 0
    while written < head:
        run = guide.forced_tokens()
        if run:
            for token in run:
                guide.accept(token)
            written += len(tokenizer.decode_bytes(run))
            tokens = tokens[len(run) :]
        else:
            guide.accept(tokens[0])
            written += len(tokenizer.decode_bytes(tokens[:1]))
            tokens, choices = tokens[1:], choices + 1
    # Mistral's `[TOOL_CALLS]` is text in this vocabulary (Llama 2's: none of Mistral's
    # is on the machine) and its templates differ on the space after it: ` [` or `[`.
    assert choices <= (2 if family == "mistral" else 1), (family, choices)


@pytest.mark.parametrize("family", ["qwen3_coder", "gemma"])
def test_families_that_write_strings_bare_hold_an_id_to_its_pattern(family: str) -> None:
    tokenizer = family_tokenizer(FAMILY_VOCABULARY[family])
    grammar = build_grammar(tokenizer, tool_format(family), TOOLS, "any")
    good = tokens_of(tokenizer, family, "click", {"element_id": "e14"})
    bad = tokens_of(tokenizer, family, "click", {"element_id": "OK button"})
    assert GrammarGuide(tokenizer, grammar).matcher.validate_tokens(good) == len(good)
    assert GrammarGuide(tokenizer, grammar).matcher.validate_tokens(bad) < len(bad)


def test_only_patterns_anchored_at_both_ends_become_rules() -> None:
    assert pattern_regex({"type": "string", "pattern": "^e[0-9]+$"}) == "/e[0-9]+/"
    assert pattern_regex({"type": "string", "pattern": "^a/b$"}) == "/a\\/b/"
    # Unanchored (matches anywhere), or what llguidance's regexes cannot do: left free.
    assert pattern_regex({"type": "string", "pattern": "^(cron:|every:).+"}) is None
    assert pattern_regex({"type": "string", "pattern": "[0-9]"}) is None
    assert pattern_regex({"type": "string", "pattern": "^(?=a)b$"}) is None
    assert pattern_regex({"type": "string"}) is None


def test_a_forced_llama3_call_has_no_tag_to_choose() -> None:
    tokenizer = family_tokenizer(FAMILY_VOCABULARY["llama3"])
    guide = build_guide(tokenizer, tool_format("llama3"), TOOLS, "tool", "click")
    assert guide is not None
    assert tokenizer.decode_str(guide.forced_tokens()).startswith('{"name": "click"')
    # Where a call is optional the tag still may open it.
    auto = GrammarGuide(tokenizer, build_grammar(tokenizer, tool_format("llama3"), TOOLS, "auto"))
    tagged = tokenizer.tokenize_str(
        '<|python_tag|>{"name": "click", "parameters": {"element_id": "e1"}}', parse_special=True
    )
    assert auto.matcher.validate_tokens(tagged) == len(tagged)


def test_tools_from_the_agent_keep_compiling() -> None:
    """A schema whose pattern llguidance cannot use still compiles (the string is free)."""
    tokenizer = family_tokenizer(FAMILY_VOCABULARY["qwen3_coder"])
    tool = Tool(
        name="lookup",
        description="",
        input_schema={
            "type": "object",
            "properties": {"key": {"type": "string", "pattern": "^(?!x)[a-z]+$"}},
            "required": ["key"],
        },
    )
    assert build_guide(tokenizer, tool_format("qwen3_coder"), [tool], "any") is not None


@pytest.mark.parametrize("family", FAMILIES)
def test_a_forced_run_stops_where_a_choice_among_whole_values_opens(family: str) -> None:
    """Every id starts with `e`, which the grammar forces; the id is still scored whole
    (issue 17), so the forced run ends with the choice's opening."""
    tokenizer = family_tokenizer(FAMILY_VOCABULARY[family])
    tool = grounded_click(["e10", "e11", "e12"])
    guide = build_guide(tokenizer, tool_format(family), [tool], "tool", "click")
    assert guide is not None
    tokens = tokens_of(tokenizer, family, "click", {"element_id": "e10"})
    written = b""
    value_at = tool_format(family).write_call("click", {"element_id": "e10"}).index("e10")
    while len(written) < value_at:
        run = guide.forced_tokens() or tokens[:1]
        for token in run:
            guide.accept(token)
        written += tokenizer.decode_bytes(run)
        tokens = tokens[len(run) :]
    choice = guide.value_choice()
    assert len(written) == value_at and choice is not None, written
    assert len(choice.sequences) == 3
