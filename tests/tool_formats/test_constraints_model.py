"""The embedded model (SmolLM2-135M through llama.cpp) writes schema-valid calls when guided."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine, Sampling
from deskloop.server.chat_template import render_chat
from deskloop.server.constraints import build_guide
from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats import choose_tool_format
from tests.tool_formats.helpers import CLICK, SCREEN, TOOLS, Block, check_calls, run_parser

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    pytest.importorskip("llama_cpp")
    loaded = create_engine("llamacpp", "", threads=1)  # steadier on a shared 2-core machine
    assert isinstance(loaded, LocalEngine)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def tokenizer(engine: LocalEngine) -> Any:
    return engine.guidance_tokenizer()


def answer(
    engine: LocalEngine,
    tokenizer: Any,
    instruction: str,
    tools: list[Tool],
    choice: str,
    forced_tool: str | None = None,
    *,
    guided: bool = True,
) -> tuple[str, list[Block]]:
    """The model's raw output for a screen plus instruction, and the blocks parsed from it."""
    fmt = choose_tool_format(engine.info.chat_template, engine.info.architecture, "")
    messages = [Message(role="user", content=f"Screen:\n{SCREEN}\n\n{instruction}")]
    template_input = fmt.template_input("You operate the desktop with tools.", messages, tools)
    prompt = render_chat(
        engine.info.chat_template, template_input.messages, tools=template_input.tools
    )
    guide = (
        build_guide(tokenizer, fmt, tools, choice, forced_tool, stop_tokens=engine.stop_token_ids)
        if guided
        else None
    )
    tokens = engine.generate(
        engine.tokenize(prompt),
        Sampling(max_tokens=80, temperature=0.0),
        cancel=threading.Event(),
        guide=guide,
    )
    raw = b"".join(engine.token_bytes(token) for token in tokens).decode("utf-8", "replace")
    blocks = run_parser(fmt.new_parser(tools, guided=guided), [raw])
    return raw, blocks


def test_the_embedded_model_gets_the_generic_format(engine: LocalEngine) -> None:
    fmt = choose_tool_format(engine.info.chat_template, engine.info.architecture, "")
    assert fmt.name == "generic"


def test_any_forces_a_valid_click(engine: LocalEngine, tokenizer: Any) -> None:
    raw, blocks = answer(engine, tokenizer, "Click the OK button.", [CLICK], "any")
    assert [block.kind for block in blocks] == ["call"], raw
    assert blocks[0].name == "click"
    check_calls(blocks)
    assert blocks[0].input["element_id"] in {"e10", "e11", "e12"} or raw.startswith("<tool_call>")


def test_tool_choice_names_the_tool(engine: LocalEngine, tokenizer: Any) -> None:
    raw, blocks = answer(engine, tokenizer, "Scroll the dialog down.", TOOLS, "tool", "scroll")
    calls = [block for block in blocks if block.kind == "call"]
    assert [call.name for call in calls] == ["scroll"], raw
    check_calls(blocks)


def test_none_yields_no_call(engine: LocalEngine, tokenizer: Any) -> None:
    raw, blocks = answer(engine, tokenizer, "Click the OK button.", TOOLS, "none")
    assert "<tool_call>" not in raw
    assert all(block.kind == "text" for block in blocks)


def test_auto_never_yields_an_invalid_call(engine: LocalEngine, tokenizer: Any) -> None:
    raw, blocks = answer(engine, tokenizer, "Press OK to save the file.", TOOLS, "auto")
    assert all(block.kind != "invalid" for block in blocks), raw
    check_calls(blocks)
