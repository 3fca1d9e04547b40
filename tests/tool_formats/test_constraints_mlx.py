"""The same guides on the MLX engine (its tokenizer comes from the GGUF, not llama.cpp)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine, Sampling
from deskloop.server.chat_template import render_chat
from deskloop.server.constraints import GrammarGuide, build_grammar, build_guide
from deskloop.server.protocol import Message
from deskloop.server.tool_formats import tool_format
from tests.tool_formats.helpers import CLICK, TOOLS, check_calls, grounded_click, run_parser

pytestmark = [pytest.mark.slow, pytest.mark.mlx]


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    pytest.importorskip("mlx.core")
    loaded = create_engine("mlx", "", context_window=1024)
    assert isinstance(loaded, LocalEngine)
    yield loaded
    loaded.close()


def test_grammar_accepts_a_call_as_the_mlx_tokenizer_splits_it(engine: LocalEngine) -> None:
    tokenizer = engine.guidance_tokenizer()
    call = '<tool_call>{"name": "scroll", "arguments": {"element_id": "e3", "direction": "down"}}</tool_call>'
    guide = GrammarGuide(tokenizer, build_grammar(tokenizer, tool_format("generic"), TOOLS, "auto"))
    for token in engine.tokenize(call):
        mask = guide.allowed_tokens()
        assert mask is not None and mask[token]
        guide.accept(token)
    assert guide.is_complete()


def test_forced_call_on_mlx_is_valid(engine: LocalEngine) -> None:
    # A short prompt: MLX on a CPU without OpenBLAS prefills about 10 tokens/s.
    fmt = tool_format("generic")
    messages = [Message(role="user", content="Screen: e12 button 'OK'\nClick OK.")]
    template_input = fmt.template_input("", messages, [CLICK])
    prompt = render_chat(engine.info.chat_template, template_input.messages)
    guide = build_guide(engine.guidance_tokenizer(), fmt, [CLICK], "any", parallel=False)
    tokens = engine.generate(
        engine.tokenize(prompt),
        Sampling(max_tokens=40, temperature=0.0),
        cancel=threading.Event(),
        guide=guide,
    )
    raw = b"".join(engine.token_bytes(token) for token in tokens).decode("utf-8")
    blocks = run_parser(fmt.new_parser([CLICK], guided=True), [raw])
    assert [block.kind for block in blocks] == ["call"], raw
    check_calls(blocks)


def test_mlx_cannot_name_an_id_outside_a_long_enum(engine: LocalEngine) -> None:
    fmt = tool_format("generic")
    ids = [f"e{n}" for n in range(40, 61)]
    tool = grounded_click(ids)
    messages = [Message(role="user", content="Screen: e40 button 'OK'\nClick e7.")]
    template_input = fmt.template_input("", messages, [tool])
    prompt = render_chat(engine.info.chat_template, template_input.messages)
    guide = build_guide(engine.guidance_tokenizer(), fmt, [tool], "any", parallel=False)
    tokens = engine.generate(
        engine.tokenize(prompt),
        Sampling(max_tokens=40, temperature=0.0),
        cancel=threading.Event(),
        guide=guide,
    )
    raw = b"".join(engine.token_bytes(token) for token in tokens).decode("utf-8")
    blocks = run_parser(fmt.new_parser([tool], guided=True), [raw])
    assert [block.kind for block in blocks] == ["call"], raw
    assert blocks[0].input["element_id"] in ids, raw
