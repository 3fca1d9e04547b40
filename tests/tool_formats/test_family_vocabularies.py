"""Every format family's call grammar on a real tokenizer of that family (issue 17):
tool names in the vocabulary's own tokens, grounded enums enforced but never rendered,
and only declared properties, required ones first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deskloop.server.chat_template import render_chat
from deskloop.server.constraints import GrammarGuide, build_grammar
from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats import tool_format
from deskloop.server.tool_schema import compact_enums
from tests.tool_formats.helpers import CLICK, SCROLL, TYPE_TEXT
from tests.tool_formats.test_render import template_for
from tests.tool_formats.vocabularies import FAMILY_VOCABULARY, family_tokenizer

pytestmark = pytest.mark.llamacpp

FAMILIES = sorted(FAMILY_VOCABULARY)
IDS = ["e19", "e22", "e26"]


def grounded(ids: list[str], *, extra: dict[str, Any] | None = None) -> Tool:
    """click with its element id grounded in one observation, as the agent sends it."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "element_id": {"type": "string", "enum": ids, "x-grounded": True},
            "double": {"type": "boolean"},
        },
        "required": ["element_id"],
        **(extra or {}),
    }
    return Tool(name="click", description="Click an element.", input_schema=schema)


TOOLS = [CLICK, TYPE_TEXT, SCROLL]


def _value(family: str, value: Any) -> str:
    if family == "gemma":
        return f"<escape>{value}<escape>" if isinstance(value, str) else json.dumps(value)
    return value if isinstance(value, str) else json.dumps(value)


def call_text(family: str, name: str, arguments: dict[str, Any]) -> str:
    """The call as the family's model writes it."""
    body = json.dumps(arguments)
    if family == "qwen3_coder":
        parameters = "".join(
            f"<parameter={key}>\n{_value(family, value)}\n</parameter>\n"
            for key, value in arguments.items()
        )
        return f"<tool_call>\n<function={name}>\n{parameters}</function>\n</tool_call>"
    if family == "gemma":
        pairs = ",".join(f"{key}:{_value(family, value)}" for key, value in arguments.items())
        return f"<start_function_call>call:{name}{{{pairs}}}<end_function_call>"
    return {
        "generic": f'<tool_call>{{"name": "{name}", "arguments": {body}}}</tool_call>',
        "hermes": f'<tool_call>\n{{"name": "{name}", "arguments": {body}}}\n</tool_call>',
        "llama3": f'{{"name": "{name}", "parameters": {body}}}',
        "mistral": f'[TOOL_CALLS] [{{"name": "{name}", "arguments": {body}}}]',
        "mistral_v11": f"[TOOL_CALLS]{name}[ARGS]{body}",
    }[family]


def follows(tokenizer: Any, grammar: str, tokens: list[int]) -> bool:
    guide = GrammarGuide(tokenizer, grammar)
    for token in tokens:
        mask = guide.allowed_tokens()
        assert mask is not None
        if not mask[token]:
            return False
        guide.accept(token)
    return guide.is_complete()


def written(tokenizer: Any, text: str) -> list[int]:
    tokens: list[int] = tokenizer.tokenize_str(text, parse_special=True)
    return tokens


def forced(family: str, tools: list[Tool]) -> tuple[Any, str]:
    tokenizer = family_tokenizer(FAMILY_VOCABULARY[family])
    return tokenizer, build_grammar(tokenizer, tool_format(family), tools, "any")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_call_is_accepted_as_the_vocabulary_writes_it(family: str) -> None:
    tokenizer, grammar = forced(family, TOOLS)
    for name, arguments in (
        ("type_text", {"text": "hello, world", "submit": True}),
        ("scroll", {"element_id": "e3", "direction": "down", "amount": 2}),
    ):
        text = call_text(family, name, arguments)
        assert follows(tokenizer, grammar, written(tokenizer, text)), text


@pytest.mark.parametrize("family", FAMILIES)
def test_a_tool_name_is_written_in_its_own_tokens(family: str) -> None:
    """A one-letter token cannot start a name: `t` is not "type_text"'s first token in any of
    these vocabularies, and SmolLM2 took it meaning "toggle"."""
    tokenizer, grammar = forced(family, TOOLS)
    own = tokenizer.tokenize_str("type_text")
    assert f"<[{own[0]}]>" in grammar, grammar  # the name's first token, by its id
    before, after = call_text(family, "\x00", {"text": "hi"}).split("\x00")
    letters = [
        *written(tokenizer, before),
        *tokenizer.tokenize_str("t"),
        *written(tokenizer, "ype_text" + after),
    ]
    assert tokenizer.tokenize_str("t")[0] not in own
    assert not follows(tokenizer, grammar, letters)
    assert follows(tokenizer, grammar, written(tokenizer, before + "type_text" + after))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_grounded_enum_is_enforced_but_never_rendered(family: str) -> None:
    tool = grounded(IDS)
    tokenizer, grammar = forced(family, [tool, TYPE_TEXT])
    on_screen = call_text(family, "click", {"element_id": "e22"})
    elsewhere = call_text(family, "click", {"element_id": "e7"})
    assert follows(tokenizer, grammar, written(tokenizer, on_screen))
    assert not follows(tokenizer, grammar, written(tokenizer, elsewhere))
    # As the server renders the prompt: the ids change every turn and lead a small model
    # to name the first of them, so the template never sees them.
    fmt = tool_format(family)
    messages = [Message(role="user", content="Click OK.")]
    template_input = fmt.template_input("You operate the desktop.", messages, compact_enums([tool]))
    prompt = render_chat(
        template_for(family),
        template_input.messages,
        tools=template_input.tools,
        bos_token="<s>" if family.startswith("mistral") else "",
        eos_token="</s>" if family.startswith("mistral") else "",
    )
    assert "click" in prompt
    assert not any(element in prompt for element in IDS), prompt
    assert "x-grounded" not in prompt


@pytest.mark.parametrize("family", FAMILIES)
def test_only_declared_properties_and_required_ones_first(family: str) -> None:
    tokenizer, grammar = forced(family, [grounded(IDS)])
    good = call_text(family, "click", {"element_id": "e19", "double": True})
    assert follows(tokenizer, grammar, written(tokenizer, good))
    # No additionalProperties in the schema: an undeclared property is not a way to go on
    # (SmolLM2 wrote {"id": "e2", "args": {...}} four objects deep until max_tokens).
    extra = call_text(family, "click", {"element_id": "e19", "args": "x"})
    assert not follows(tokenizer, grammar, written(tokenizer, extra))
    optional_first = call_text(family, "click", {"double": True, "element_id": "e19"})
    assert not follows(tokenizer, grammar, written(tokenizer, optional_first))


@pytest.mark.parametrize("family", ["generic", "hermes", "llama3", "mistral", "mistral_v11"])
def test_a_schema_that_allows_extras_keeps_them(family: str) -> None:
    tokenizer, grammar = forced(family, [grounded(IDS, extra={"additionalProperties": True})])
    extra = call_text(family, "click", {"element_id": "e19", "args": "x"})
    assert follows(tokenizer, grammar, written(tokenizer, extra))
