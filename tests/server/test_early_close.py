"""Clients that stop reading early, on the embedded model behind a real `deskloop serve`.

The repro from issue 8: a streamed story closed after six SSE lines, then a short plain
request, again and again. Before the fix the second or third round crashed the server
natively (a cancelled generation still ran while the next request used the context).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .serving import Served, assert_well_formed_stream, served, sse_events

pytestmark = [pytest.mark.slow]

ENGINES = [
    pytest.param("llamacpp", marks=pytest.mark.llamacpp),
    pytest.param("mlx", marks=pytest.mark.mlx),
]
ROUNDS = 20

CLICK_TOOL = {
    "name": "click",
    "description": "Click an element by id.",
    "input_schema": {
        "type": "object",
        "properties": {"element_id": {"type": "string", "pattern": "^e[0-9]+$"}},
        "required": ["element_id"],
    },
}


def story(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 400,
        "stream": True,
        "messages": [{"role": "user", "content": "Write a very long story."}],
    }
    body.update(fields)
    return body


def short_question(max_tokens: int = 2) -> dict[str, Any]:
    return {
        "model": "claude-opus-5-5",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "Say hello."}],
    }


@pytest.fixture(scope="module", params=ENGINES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    engine = request.param
    if engine == "mlx":
        pytest.importorskip("mlx.core")
    with served(
        tmp_path_factory.mktemp(f"serve-{engine}"), "--engine", engine, "--context-window", "4096"
    ) as running:
        yield running


def read_lines_then_close(client: httpx.Client, body: dict[str, Any], lines: int) -> list[str]:
    seen: list[str] = []
    with client.stream("POST", "/v1/messages", json=body) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            seen.append(line)
            if len(seen) == lines:
                break
    return seen


def assert_short_answer(client: httpx.Client, server: Served, after: str) -> None:
    try:
        answer = client.post("/v1/messages", json=short_question())
    except httpx.TransportError as exc:
        server.assert_alive(after)
        raise AssertionError(f"no answer {after}: {exc!r}") from exc
    assert answer.status_code == 200, answer.text
    message = answer.json()
    assert message["stop_reason"] in {"max_tokens", "end_turn"}
    assert 1 <= message["usage"]["output_tokens"] <= 2
    server.assert_alive(after)


def test_closing_a_story_after_six_lines_then_asking_again(server: Served) -> None:
    """The issue's repro, as given: six SSE lines, close, a 2-token request; 20 rounds."""
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for round_number in range(1, ROUNDS + 1):
            lines = read_lines_then_close(client, story(), 6)
            assert lines[0] == "event: message_start"
            assert_short_answer(client, server, f"after round {round_number}")
    assert server.wait_until_idle()["waiting"] == 0


def close_after(kind: str, body: dict[str, Any], client: httpx.Client) -> None:
    """Stream `body` and close as soon as an event of `kind` (or its data) arrives."""
    with client.stream("POST", "/v1/messages", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line == f"event: {kind}" or f'"type": "{kind}"' in line:
                return
    raise AssertionError(f"the stream ended without a {kind}")


def long_prompt(engine: str) -> str:
    """Tokens to prefill while the client leaves: about 2,000 for llama.cpp, 400 for MLX,
    which prefills about 250 tokens/s on this CPU with OpenBLAS (10 without)."""
    files = 300 if engine == "llamacpp" else 60
    return "Here is a list of files to keep: " + ", ".join(f"report-{n}.txt" for n in range(files))


@pytest.mark.parametrize(
    "where",
    ["prefill", "first delta", "tool call", "queued", "client timeout"],
)
def test_a_cancel_anywhere_leaves_the_engine_ready(server: Served, where: str) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for round_number in range(1, 6):
            if where == "prefill":
                # A prompt not seen before, so it is prefilled while the client leaves.
                text = f"{round_number}. {long_prompt(server.engine)}\nSort them."
                body = story(messages=[{"role": "user", "content": text}])
                read_lines_then_close(client, body, 1)
            elif where == "first delta":
                close_after("content_block_delta", story(), client)
            elif where == "tool call":
                body = story(tools=[CLICK_TOOL], tool_choice={"type": "tool", "name": "click"})
                close_after("input_json_delta", body, client)
            elif where == "queued":
                with (
                    httpx.Client(base_url=server.url, timeout=120) as other,
                    client.stream("POST", "/v1/messages", json=story()) as running,
                ):
                    assert running.status_code == 200
                    next(running.iter_lines())
                    # This one waits for the running story and leaves before its turn.
                    read_lines_then_close(other, story(max_tokens=3), 1)
            else:
                with pytest.raises(httpx.ReadTimeout):
                    httpx.post(
                        f"{server.url}/v1/messages",
                        json=story(stream=False, max_tokens=200),
                        timeout=httpx.Timeout(10, read=0.3),
                    )
            assert_short_answer(client, server, f"after a cancel at {where}, round {round_number}")
        # Real work after the failures: a whole streamed answer, well formed.
        with client.stream("POST", "/v1/messages", json=story(max_tokens=12)) as response:
            message = assert_well_formed_stream(sse_events(list(response.iter_lines())))
        assert message["usage"]["output_tokens"] >= 1
    assert server.wait_until_idle()["busy"] is False
