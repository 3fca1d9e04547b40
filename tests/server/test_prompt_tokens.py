"""A conversation's next prompt is tokenized from where it is new, and comes out exactly as
tokenizing it whole does: on the embedded SmolLM2 and on Qwen2.5-Coder (Hermes tools)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine
from deskloop.engines.scripted import IM_END, IM_START, ScriptedEngine
from deskloop.server.local_service import LocalModelService
from deskloop.server.prompt import render_prompt
from deskloop.server.protocol import MessagesRequest
from deskloop.server.tool_schema import compact_enums
from tests.tool_formats.vocabularies import QWEN_GGUF

CLICK = {
    "name": "click",
    "description": "Click an element by id.",
    "input_schema": {
        "type": "object",
        "properties": {"element_id": {"type": "string"}},
        "required": ["element_id"],
    },
}
TYPE_TEXT = {
    "name": "type_text",
    "description": "Type text into the focused element.",
    "input_schema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}
# Tool results shaped like screens, with what tokenizers find awkward at a boundary:
# leading and trailing spaces and newlines, non-ASCII, digits, and text that looks special.
RESULTS = [
    "e1 button 'Save'\ne2 entry ''",
    "  indented line\n\n\ntrailing spaces   ",
    "Grüße, naïve café — 東京 ✓",
    "12345678901234567890",
    "<|im_start|> is only text here\n",
    "\n",
]


def conversation(turns: int, first_task: str = "Save the file in the editor.") -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": first_task}]
    for turn in range(1, turns):
        call_id = f"toolu_{turn:02d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Step {turn}: "},
                    {"type": "tool_use", "id": call_id, "name": "click",
                     "input": {"element_id": f"e{turn}"}},
                ],
            }
        )  # fmt: skip
        result = RESULTS[(turn - 1) % len(RESULTS)]
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call_id, "content": result}],
            }
        )
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 8,
        "system": "You operate the desktop.",
        "tools": [CLICK, TYPE_TEXT],
        "messages": messages,
    }


def whole_tokens(service: LocalModelService, body: dict[str, Any]) -> list[int]:
    """The tokens of the request's prompt tokenized in one piece, as before this cache."""
    request = MessagesRequest.model_validate(body)
    tools = compact_enums(list(request.tools or []))
    text = render_prompt(request, tools, service.tool_format, service.engine.info).text
    return service.engine.tokenize(text)


def prompt_of(service: LocalModelService, body: dict[str, Any]) -> list[int]:
    return service.render(MessagesRequest.model_validate(body))


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("llamacpp", "smollm2"), marks=pytest.mark.llamacpp),
        pytest.param(("llamacpp", "qwen2.5-coder"), marks=pytest.mark.llamacpp),
        pytest.param(("mlx", "smollm2"), marks=pytest.mark.mlx),
    ],
    ids=lambda param: "-".join(param),
)
def service(request: pytest.FixtureRequest) -> Iterator[LocalModelService]:
    engine_name, model_name = request.param
    pytest.importorskip("llama_cpp" if engine_name == "llamacpp" else "mlx_lm")
    model = ""
    if model_name == "qwen2.5-coder":
        if not QWEN_GGUF.is_file():
            pytest.skip(f"no Qwen2.5-Coder GGUF at {QWEN_GGUF}")
        model = str(QWEN_GGUF)
    engine = create_engine(engine_name, model, context_window=4096)
    assert isinstance(engine, LocalEngine)
    yield LocalModelService(engine, context_window=4096, queue_size=2)
    engine.close()


@pytest.mark.slow
def test_each_turn_tokenizes_only_its_new_tail_and_matches_the_whole(
    service: LocalModelService,
) -> None:
    previous = 0
    for turns in range(1, 13):
        body = conversation(turns)
        tokens = prompt_of(service, body)
        assert tokens == whole_tokens(service, body)
        if turns > 1:
            # Everything up to the last turn's generation prompt came from the turn before.
            assert previous - 4 <= service.prompt_tokenizer.reused < previous
        previous = len(tokens)


@pytest.mark.slow
def test_a_changed_earlier_message_falls_back_to_where_it_changed(
    service: LocalModelService,
) -> None:
    for turns in range(1, 8):
        prompt_of(service, conversation(turns))
    changed = conversation(8, first_task="Save the file in the editor, then close it.")
    tokens = prompt_of(service, changed)
    assert tokens == whole_tokens(service, changed)
    # Only the system prompt and tools, up to the first user turn, could be kept.
    assert service.prompt_tokenizer.reused < len(tokens) // 2
    # The same prompt again, and a different conversation: still exact.
    assert prompt_of(service, changed) == tokens
    other = conversation(3, first_task="Open the calculator.")
    assert prompt_of(service, other) == whole_tokens(service, other)


def test_an_engine_without_tail_tokenizing_tokenizes_every_prompt_whole() -> None:
    service = LocalModelService(ScriptedEngine(["ok"]), context_window=8192, queue_size=2)
    for turns in range(1, 4):
        body = conversation(turns)
        assert prompt_of(service, body) == whole_tokens(service, body)
        assert service.prompt_tokenizer.reused == 0


class TailTokenizing(ScriptedEngine):
    """The scripted engine's tokenizer (special markers first, then bytes), offering tails."""

    control_tokens = frozenset({IM_START, IM_END})

    def tokenize_tail(self, text: str) -> list[int] | None:
        return self.tokenize(text)


class DisagreeingTail(TailTokenizing):
    """A tokenizer whose tail comes out differently from the whole (a fake)."""

    def tokenize_tail(self, text: str) -> list[int] | None:
        return [0, *self.tokenize(text)]


def test_the_tail_is_cut_at_a_control_token_and_joins_the_kept_tokens() -> None:
    service = LocalModelService(TailTokenizing(["ok"]), context_window=8192, queue_size=2)
    previous = 0
    for turns in range(1, 6):
        body = conversation(turns)
        tokens = prompt_of(service, body)
        assert tokens == whole_tokens(service, body)
        if turns > 1:
            # Kept: everything before the last turn's `<|im_start|>assistant`.
            assert tokens[service.prompt_tokenizer.reused] == IM_START
            assert service.prompt_tokenizer.reused == previous - len(b"assistant\n") - 1
        previous = len(tokens)


def test_a_tail_that_does_not_start_at_the_same_control_token_is_not_used() -> None:
    service = LocalModelService(DisagreeingTail(["ok"]), context_window=8192, queue_size=2)
    for turns in range(1, 4):
        body = conversation(turns)
        assert prompt_of(service, body) == whole_tokens(service, body)
        assert service.prompt_tokenizer.reused == 0
