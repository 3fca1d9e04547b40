"""A prompt longer than the model was trained on, through `--context-window` above it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .serving import Served, assert_well_formed_stream, served, sse_events

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]

WINDOW = 16384  # the embedded SmolLM2-135M was trained on 8,192


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(
        tmp_path_factory.mktemp("serve"),
        "--context-window",
        str(WINDOW),
        env={"DESKLOOP_SERVER_PING_INTERVAL_S": "1"},
    ) as running:
        yield running


def notes(count: int) -> str:
    return "\n".join(
        f"Note {n}: the parcel for room {n % 97} arrived on day {n % 28 + 1} and was signed for."
        for n in range(count)
    )


def body_for(text: str, **fields: object) -> dict[str, object]:
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 8,
        "temperature": 0,
        "messages": [{"role": "user", "content": f"{text}\nWhich room got the first parcel?"}],
        **fields,
    }


def test_ten_thousand_tokens_stream_with_pings_through_the_prefill(server: Served) -> None:
    assert "stretched" in server.log.read_text(), "the log should say the window is stretched"
    with httpx.Client(base_url=server.url, timeout=600) as client:
        text = notes(420)
        counted = client.post("/v1/messages/count_tokens", json=body_for(text)).json()
        assert 10_000 <= counted["input_tokens"] < 11_000, counted
        with client.stream("POST", "/v1/messages", json=body_for(text, stream=True)) as response:
            assert response.status_code == 200
            events = sse_events(list(response.iter_lines()))
    message = assert_well_formed_stream(events)
    kinds = [kind for kind, _ in events]
    pings_before_answer = kinds[: kinds.index("message_delta")].count("ping")
    assert pings_before_answer >= 3, kinds[:20]
    usage = message["usage"]
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == counted["input_tokens"]
    assert usage["output_tokens"] >= 1
    server.assert_alive("after the long prompt")


def test_a_prompt_over_the_window_is_refused_with_its_size(server: Served) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        text = notes(700)
        counted = client.post("/v1/messages/count_tokens", json=body_for(text)).json()
        assert counted["input_tokens"] > WINDOW
        answer = client.post("/v1/messages", json=body_for(text))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        f"prompt is too long: {counted['input_tokens']} tokens > {WINDOW} maximum"
    )
