"""Fast-forward on the embedded model (issue 21): with it on and off, at temperature 0, the
same prompts give byte-identical answers and tool inputs, whole and streamed, under every
format family's grammar, on llama.cpp and MLX; a forced call costs fewer forward passes by
the share of its tokens the grammar forces; a cancel inside a forced run stops as any
other and leaves the cache usable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import DecodeStats, LocalEngine, Sampling
from deskloop.engines.decoding import PrefixCachingEngine
from deskloop.server.constraints import build_guide
from deskloop.server.local_service import LocalModelService
from deskloop.server.protocol import MessagesRequest, Tool
from deskloop.server.tool_formats import TOOL_FORMATS, tool_format
from tests.tool_formats.helpers import TOOLS, grounded_click

from .helpers import client_for, scripted_app
from .test_fast_forward import content_of, content_of_stream

pytestmark = pytest.mark.slow

FAMILIES = sorted(TOOL_FORMATS)
# The ids on screen as the agent grounds them. The same system text and tools in every
# request, so they are prefilled once (MLX on a CPU without OpenBLAS prefills about 10 tokens/s).
SYSTEM = "You operate the desktop with tools."
TOOL_SPECS = [
    tool.model_dump(mode="json") for tool in [grounded_click(["e10", "e11", "e12"]), *TOOLS[1:]]
]
SCREEN = 'Screen:\ne10 btn "Cancel"\ne11 btn "OK"\ne12 txt "Name"\n'
REQUESTS = [
    ("Click the OK button.", {"type": "any"}),
    ("Type Ada Lovelace into the Name field.", {"type": "tool", "name": "type_text"}),
    ("Scroll the list down, or say why not.", {"type": "auto"}),
]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("llamacpp", marks=pytest.mark.llamacpp),
        pytest.param("mlx", marks=pytest.mark.mlx),
    ],
)
def engine(request: pytest.FixtureRequest) -> Iterator[LocalEngine]:
    pytest.importorskip("llama_cpp" if request.param == "llamacpp" else "mlx.core")
    # One thread: llama.cpp sums in another order with another thread count, and a small
    # model has near-ties; the comparison is between fast-forward on and off, not threads.
    options: dict[str, Any] = {"threads": 1} if request.param == "llamacpp" else {}
    loaded = create_engine(request.param, "", context_window=2048, **options)
    assert isinstance(loaded, LocalEngine)
    yield loaded
    loaded.close()


async def answer(
    engine: LocalEngine,
    family: str,
    text: str,
    choice: dict[str, Any],
    *,
    fast: bool,
    stream: bool,
    max_tokens: int = 48,
) -> tuple[Any, DecodeStats | None]:
    engine.fast_forward = fast
    app, _ = scripted_app(engine, tool_format=family)
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": max_tokens,
        "temperature": 0,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": SCREEN + text}],
        "tools": TOOL_SPECS,
        "tool_choice": choice,
        "stream": stream,
    }
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    if stream:
        return content_of_stream(response.text), engine.last_decode
    message = response.json()
    return (content_of(message), message["stop_reason"]), engine.last_decode


def families_for(engine: LocalEngine) -> list[str]:
    # Each family renders its own prompt; on MLX (slow here, see SYSTEM) the embedded
    # model's own format: the decode loop is shared, so the families differ only in grammar.
    return FAMILIES if engine.name == "llamacpp" else ["generic"]


def streams_for(engine: LocalEngine) -> tuple[bool, ...]:
    # Streaming is the server's part, the same over both engines: llama.cpp checks it.
    return (False, True) if engine.name == "llamacpp" else (False,)


async def test_the_same_answers_with_fast_forward_on_and_off(engine: LocalEngine) -> None:
    for family in families_for(engine):
        for text, choice in REQUESTS:
            for stream in streams_for(engine):
                off, _ = await answer(engine, family, text, choice, fast=False, stream=stream)
                on, _ = await answer(engine, family, text, choice, fast=True, stream=stream)
                assert on == off, (family, text, stream, off, on)
                if choice["type"] != "auto":
                    assert on[0][0][0] == "tool_use", (family, on)


async def test_a_forced_call_costs_fewer_passes_by_its_forced_share(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A click on a grounded id is short in every family: with tokens enough it is never
    closed early (closing batches what it writes too). The id is scored whole either way."""
    text = "Click the OK button."
    choice = {"type": "tool", "name": "click", "disable_parallel_tool_use": True}
    wholes: list[list[int]] = []
    choose_whole = PrefixCachingEngine._choose_whole

    def counted(self: PrefixCachingEngine, *arguments: Any) -> Any:
        chosen = choose_whole(self, *arguments)
        if chosen is not None:
            wholes.append(chosen[0])
        return chosen

    monkeypatch.setattr(PrefixCachingEngine, "_choose_whole", counted)
    for family in families_for(engine):
        first, off = await answer(
            engine, family, text, choice, fast=False, stream=False, max_tokens=200
        )
        scored_off, wholes[:] = list(wholes), []
        second, on = await answer(
            engine, family, text, choice, fast=True, stream=False, max_tokens=200
        )
        scored_on, wholes[:] = list(wholes), []
        assert first == second
        assert len(scored_off) == 1 and scored_on == scored_off, (family, scored_off, scored_on)
        assert off is not None and on is not None and on.tokens == off.tokens
        assert off.forced == 0 and on.forced >= on.tokens / 2, (family, off, on)
        # Off, a pass for every token (but the last: the call ends the answer); on, at most
        # one for each token the model chose: the passes drop by the forced share.
        assert off.passes >= off.tokens - 1, (family, off)
        assert on.passes <= on.tokens * (1 - on.forced / on.tokens), (family, off, on)


def test_a_cancel_inside_a_forced_run_stops_as_any_other(engine: LocalEngine) -> None:
    fmt = tool_format("generic")
    request = MessagesRequest.model_validate(
        {
            "model": "claude-opus-5-5",
            "max_tokens": 40,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": SCREEN + "Click the OK button."}],
            "tools": TOOL_SPECS,
        }
    )
    prompt = LocalModelService(engine, context_window=2048, queue_size=1).render(request)
    tools = [Tool.model_validate(spec) for spec in TOOL_SPECS]
    tokenizer = engine.guidance_tokenizer()
    runs: list[tuple[int, list[int]]] = []  # (tokens out before it, the forced run)

    def guide() -> Any:
        made = build_guide(
            tokenizer, fmt, tools, "tool", "click", stop_tokens=engine.stop_token_ids
        )
        assert made is not None
        forced_tokens = made.forced_tokens

        def recorded() -> list[int]:
            run = forced_tokens()
            if run:
                assert engine.last_decode is not None
                runs.append((engine.last_decode.tokens, run))
            return run

        made.forced_tokens = recorded  # type: ignore[method-assign]
        return made

    engine.fast_forward = True
    sampling = Sampling(max_tokens=40, temperature=0)
    whole = list(engine.generate(prompt, sampling, cancel=threading.Event(), guide=guide()))
    # The first forced run after a token the model chose (the opener is the first run).
    start = next(before for before, _ in runs[1:])
    cancel = threading.Event()
    out = []
    for token in engine.generate(prompt, sampling, cancel=cancel, guide=guide()):
        out.append(token)
        if len(out) == start + 1:
            cancel.set()  # as the run's first token comes out
    assert out == whole[: start + 1]
    # Neither the run nor the choice before it (evaluated with it) was evaluated.
    assert engine._cached_tokens == prompt + whole[: start - 1]  # type: ignore[attr-defined]
    again = list(engine.generate(prompt, sampling, cancel=threading.Event(), guide=guide()))
    assert again == whole
