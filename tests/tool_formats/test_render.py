"""Each family renders tools, past calls and results through its model's chat template.

Golden files hold the exact prompts; `DESKLOOP_UPDATE_GOLDEN=1` rewrites them (review the
diff before committing).
"""

from __future__ import annotations

import os
from functools import cache

import pytest

from deskloop.engines.gguf_header import read_gguf_scalars
from deskloop.engines.models import embedded_model_path
from deskloop.errors import DeskloopError
from deskloop.server.chat_template import render_chat
from deskloop.server.tool_formats import (
    UnknownToolFormat,
    choose_tool_format,
    detect_tool_format,
    tool_format,
)
from deskloop.server.tool_formats.mistral import mistral_call_id
from tests.tool_formats.helpers import GOLDEN, TEMPLATES, TOOLS, conversation

TEMPLATE_FILES = {
    "hermes": "qwen25.jinja",
    "llama3": "llama31.jinja",
    "mistral": "mistral.jinja",
    "mistral_v11": "mistral_v11.jinja",
    "qwen3_coder": "qwen3_coder.jinja",
    "gemma": "gemma.jinja",
}


@cache
def smollm2_template() -> str:
    key = "tokenizer.chat_template"
    value = read_gguf_scalars(embedded_model_path(), {key})[key]
    assert isinstance(value, str)
    return value


def template_for(family: str) -> str:
    if family == "generic":
        return smollm2_template()
    return (TEMPLATES / TEMPLATE_FILES[family]).read_text()


def render(family: str, *, with_tools: bool = True) -> str:
    fmt = tool_format(family)
    template_input = fmt.template_input(
        "You operate the desktop.", conversation(), TOOLS if with_tools else []
    )
    return render_chat(
        template_for(family),
        template_input.messages,
        tools=template_input.tools,
        bos_token="<s>" if family.startswith("mistral") else "",
        eos_token="</s>" if family.startswith("mistral") else "",
    )


FAMILIES = [*TEMPLATE_FILES, "generic"]


@pytest.mark.parametrize("family", FAMILIES)
def test_render_matches_golden(family: str) -> None:
    rendered = render(family)
    golden = GOLDEN / f"{family}.txt"
    if os.environ.get("DESKLOOP_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


@pytest.mark.parametrize("family", FAMILIES)
def test_render_carries_everything_the_model_needs(family: str) -> None:
    rendered = render(family)
    assert "You operate the desktop." in rendered
    assert "Prefer keyboard shortcuts." in rendered
    assert "The dialog has closed." in rendered  # a system message at the end still arrives
    assert "e12 button 'OK'" in rendered
    assert "clicked e12" in rendered and "Error: no focused element" in rendered
    assert "[image: image/png]" in rendered
    assert "The OK button is e12." not in rendered  # thinking is not replayed
    assert "type_text" in rendered and "scroll" in rendered  # tools listed


@pytest.mark.parametrize("family", FAMILIES)
def test_past_calls_are_written_in_the_native_syntax(family: str) -> None:
    rendered = render(family)
    native = {
        "hermes": '<tool_call>\n{"name": "click", "arguments": {"element_id": "e12"}}\n</tool_call>',
        "generic": '<tool_call>{"name": "click", "arguments": {"element_id": "e12"}}</tool_call>',
        "llama3": '{"name": "click", "parameters": {"element_id": "e12"}}',
        "mistral": f'[TOOL_CALLS] [{{"name": "click", "arguments": {{"element_id": "e12"}}, "id": "{mistral_call_id("toolu_01")}"}}',
        "mistral_v11": '[TOOL_CALLS]click[ARGS]{"element_id": "e12"}[TOOL_CALLS]type_text',
        "qwen3_coder": "<function=click>\n<parameter=element_id>\ne12\n</parameter>\n</function>",
        "gemma": "<start_function_call>call:click{element_id:<escape>e12<escape>}<end_function_call>",
    }[family]
    assert native in rendered


def test_the_template_picks_its_family() -> None:
    for family, name in TEMPLATE_FILES.items():
        assert detect_tool_format((TEMPLATES / name).read_text(), "") == family
    assert detect_tool_format(smollm2_template(), "llama") == "generic"
    assert detect_tool_format(None, "llama") == "generic"


def test_mistral_ids_are_nine_alphanumerics_and_stable() -> None:
    first = mistral_call_id("toolu_01ABC")
    assert len(first) == 9 and first.isalnum()
    assert first == mistral_call_id("toolu_01ABC") != mistral_call_id("toolu_01ABD")


def test_no_tools_means_no_tool_text() -> None:
    rendered = render("generic", with_tools=False)
    assert "You can use these tools" not in rendered


def test_override_wins_and_unknown_names_are_refused() -> None:
    qwen = (TEMPLATES / "qwen25.jinja").read_text()
    assert choose_tool_format(qwen, "qwen2", "").name == "hermes"
    assert choose_tool_format(qwen, "qwen2", "auto").name == "hermes"
    assert choose_tool_format(qwen, "qwen2", "Generic").name == "generic"
    with pytest.raises(UnknownToolFormat, match="choose one of: gemma, generic, hermes"):
        choose_tool_format(qwen, "qwen2", "hermes2")
    assert isinstance(UnknownToolFormat("x"), DeskloopError)
