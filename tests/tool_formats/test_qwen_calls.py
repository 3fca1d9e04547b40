"""A real tool-trained model, Qwen2.5-Coder-0.5B-Instruct (Hermes format), under the call
grammar: ids chosen whole, and a forced call that arrives with few tokens (issue 17).
Skipped where `shared/models/qwen2.5-coder-0.5b.sh` has not put the GGUF on the machine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine, Sampling
from deskloop.engines.decoding import PrefixCachingEngine
from deskloop.server.chat_template import render_chat
from deskloop.server.constraints import build_guide
from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats import choose_tool_format
from deskloop.server.tool_schema import compact_enums
from tests.tool_formats.helpers import TYPE_TEXT, run_parser
from tests.tool_formats.vocabularies import QWEN_GGUF

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]

IDS = [f"e{number}" for number in range(1, 25)]
LABELS = {"e3": "Cancel", "e7": "Open", "e12": "Save", "e21": "Close"}
SCREEN = "\n".join(
    f"{element} button '{LABELS.get(element, 'Item ' + element[1:])}'" for element in IDS
)
CLICK = Tool(
    name="click",
    description="Click an element by its id.",
    input_schema={
        "type": "object",
        "properties": {"element_id": {"type": "string", "enum": IDS, "x-grounded": True}},
        "required": ["element_id"],
    },
)


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    pytest.importorskip("llama_cpp")
    if not QWEN_GGUF.is_file():
        pytest.skip(f"no Qwen2.5-Coder GGUF at {QWEN_GGUF}")
    loaded = create_engine("llamacpp", str(QWEN_GGUF), context_window=2048)
    assert isinstance(loaded, LocalEngine)
    yield loaded
    loaded.close()


def call(
    engine: LocalEngine, task: str, choice: str, forced: str | None, max_tokens: int
) -> tuple[str, list[Any]]:
    fmt = choose_tool_format(engine.info.chat_template, engine.info.architecture, "")
    assert fmt.name == "hermes"
    tools = [CLICK, TYPE_TEXT]
    messages = [Message(role="user", content=f"Screen:\n{SCREEN}\n\n{task}")]
    template_input = fmt.template_input("You operate the desktop.", messages, compact_enums(tools))
    prompt = render_chat(
        engine.info.chat_template,
        template_input.messages,
        tools=template_input.tools,
        add_generation_prompt=True,
    )
    guide = build_guide(
        engine.guidance_tokenizer(),
        fmt,
        tools,
        choice,
        forced,
        parallel=False,  # as the agent asks small models: one call a turn
        stop_tokens=engine.stop_token_ids,
    )
    tokens = engine.generate(
        engine.tokenize(prompt),
        Sampling(max_tokens=max_tokens, temperature=0),
        cancel=threading.Event(),
        guide=guide,
    )
    raw = b"".join(engine.token_bytes(token) for token in tokens).decode()
    return raw, run_parser(fmt.new_parser(tools, guided=True), [raw])


def test_the_id_is_chosen_whole_among_the_observation_ids(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[list[int]] = []
    original = PrefixCachingEngine._choose_whole

    def counted(self: PrefixCachingEngine, *arguments: Any) -> Any:
        result = original(self, *arguments)
        if result is not None:
            chosen.append(result[0])
        return result

    monkeypatch.setattr(PrefixCachingEngine, "_choose_whole", counted)
    raw, blocks = call(engine, "Click the Save button.", "tool", "click", 60)
    [block] = blocks
    assert block.kind == "call" and block.name == "click", raw
    assert block.input["element_id"] in IDS
    assert len(chosen) == 1, "the id should be scored whole, once"
    assert engine.tokenize(block.input["element_id"]) == chosen[0]


@pytest.mark.parametrize("max_tokens", [20, 40])
def test_a_forced_call_arrives_with_few_tokens(engine: LocalEngine, max_tokens: int) -> None:
    raw, blocks = call(engine, "Type a long letter to the editor.", "tool", "type_text", max_tokens)
    assert [block.kind for block in blocks] == ["call"], raw
    assert blocks[0].name == "type_text" and isinstance(blocks[0].input["text"], str)
