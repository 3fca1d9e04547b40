"""Prompt drafts on the embedded model (issue 21): with drafts on and off, at temperature 0,
tool inputs that copy a value from the conversation (a text to type, a path) and a text
answer that quotes it are byte-identical, whole and streamed, on llama.cpp and MLX; drafted
tokens are taken, and a cancel during a draft batch stops as any other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import DecodeStats, LocalEngine, Sampling
from deskloop.server.local_service import LocalModelService
from deskloop.server.protocol import MessagesRequest
from tests.tool_formats.helpers import TYPE_TEXT

from .helpers import client_for, scripted_app
from .test_fast_forward import content_of, content_of_stream
from .test_prompt_drafts import OPEN_FILE, PATH, TYPED

pytestmark = pytest.mark.slow

SYSTEM = "You operate the desktop with tools."
TOOL_SPECS = [tool.model_dump(mode="json") for tool in (TYPE_TEXT, OPEN_FILE)]
NOTE = f"Note from Ada: the invoice '{TYPED}' is saved as {PATH}."
REQUESTS: list[tuple[str, dict[str, Any] | None]] = [
    (f"Type exactly '{TYPED}'.", {"type": "tool", "name": "type_text"}),
    ("Open the invoice file.", {"type": "tool", "name": "open_file"}),
    ("Repeat Ada's note word for word.", None),
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
    # model has near-ties; the comparison is between drafts on and off, not threads.
    options: dict[str, Any] = {"threads": 1} if request.param == "llamacpp" else {}
    loaded = create_engine(request.param, "", context_window=2048, **options)
    assert isinstance(loaded, LocalEngine)
    yield loaded
    loaded.close()


def body(text: str, choice: dict[str, Any] | None, *, stream: bool) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 40,
        "temperature": 0,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": f"{NOTE}\n{text}"}],
        "stream": stream,
    }
    if choice is not None:
        request.update(tools=TOOL_SPECS, tool_choice=choice)
    return request


async def answer(
    engine: LocalEngine, text: str, choice: dict[str, Any] | None, *, drafts: bool, stream: bool
) -> tuple[Any, DecodeStats]:
    engine.prompt_drafts = drafts
    app, _ = scripted_app(engine)
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=body(text, choice, stream=stream))
    assert response.status_code == 200, response.text
    assert engine.last_decode is not None
    if stream:
        return content_of_stream(response.text), engine.last_decode
    message = response.json()
    return (content_of(message), message["stop_reason"]), engine.last_decode


async def test_the_same_answers_with_drafts_on_and_off(engine: LocalEngine) -> None:
    # On MLX (about 10 tokens/s on this CPU), the short prompt without tools, whole: the
    # decode loop is shared; the grammar's and the stream's parts are as on llama.cpp.
    on_llamacpp = engine.name == "llamacpp"
    requests = REQUESTS if on_llamacpp else REQUESTS[2:]
    accepted = 0
    for text, choice in requests:
        for stream in (False, True) if on_llamacpp else (False,):
            off, off_stats = await answer(engine, text, choice, drafts=False, stream=stream)
            on, on_stats = await answer(engine, text, choice, drafts=True, stream=stream)
            assert on == off, (text, stream, off, on)
            assert on_stats.tokens == off_stats.tokens
            assert off_stats.drafted == 0
            assert on_stats.passes <= off_stats.passes, (text, off_stats, on_stats)
            accepted += on_stats.accepted
            if choice is not None:
                assert on[0][-1][0] == "tool_use", on
    assert accepted > 0  # drafts were taken: the comparison is not between two drafts-off runs


def test_a_cancel_during_a_draft_batch_stops_as_any_other(engine: LocalEngine) -> None:
    text, _ = REQUESTS[2]
    prompt = LocalModelService(engine, context_window=2048, queue_size=1).render(
        MessagesRequest.model_validate(body(text, None, stream=False))
    )
    sampling = Sampling(max_tokens=40, temperature=0)
    engine.prompt_drafts = True
    whole = list(engine.generate(prompt, sampling, cancel=threading.Event()))
    stats = engine.last_decode
    assert stats is not None and stats.accepted > 0, stats
    # Cancel as the first drafted token that is taken comes out.
    cancel = threading.Event()
    out: list[int] = []
    for token in engine.generate(prompt, sampling, cancel=cancel):
        out.append(token)
        if engine.last_decode is not None and engine.last_decode.accepted:
            cancel.set()
    assert out == whole[: len(out)] and len(out) < len(whole)
    # The cache holds the prompt and what came out, evaluated, and no more.
    cached = engine._cached_tokens  # type: ignore[attr-defined]
    assert cached == (prompt + out)[: len(cached)] and len(cached) >= len(prompt) + len(out) - 1
    again = list(engine.generate(prompt, sampling, cancel=threading.Event()))
    assert again == whole
    engine.prompt_drafts = False
