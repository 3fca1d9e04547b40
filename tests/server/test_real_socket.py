"""Behaviour that needs a real socket: disconnects, keepalive pings, `deskloop serve` itself."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import anthropic
import httpx

from deskloop.engines.base import PrefillReport, Sampling, TokenGuide
from deskloop.engines.scripted import ScriptedEngine

from .helpers import parse_sse, request_body, running_server, scripted_app


def test_client_disconnect_frees_the_engine_at_once() -> None:
    long_answer = "word " * 400  # 2000 tokens at 20 ms each: 40 s if nobody stopped it
    engine = ScriptedEngine([long_answer, "next"], token_delay_s=0.02)
    app, service = scripted_app(engine)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        with client.stream(
            "POST", "/v1/messages", json=request_body(max_tokens=4000, stream=True)
        ) as response:
            seen = 0
            for line in response.iter_lines():
                if line.startswith("event: content_block_delta"):
                    seen += 1
                    if seen == 5:
                        break
        started = time.monotonic()
        while client.get("/health").json()["busy"]:
            assert time.monotonic() - started < 5, (
                "the engine was still generating 5 s after the client left"
            )
            time.sleep(0.02)
        answer = client.post("/v1/messages", json=request_body())
    assert answer.status_code == 200
    assert answer.json()["content"][0]["text"] == "next"
    # The first generation stopped early: far fewer tokens went into the cache than it had.
    assert len(engine.prompts) == 2
    assert service.queue.waiting == 0


class OverlapRecordingEngine(ScriptedEngine):
    """A scripted engine whose prefill, like one llama.cpp batch, cannot be interrupted,
    and which records any generation that starts while another is still running."""

    def __init__(self, outputs: list[str], prefill_s: float):
        super().__init__(outputs, token_delay_s=0.01, repeat_last=True)
        self.prefill_s = prefill_s
        self.overlaps = 0
        self._running = 0
        self._lock = threading.Lock()

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        *,
        cancel: threading.Event,
        guide: TokenGuide | None = None,
        on_prefill: Callable[[PrefillReport], None] | None = None,
    ) -> Iterator[int]:
        with self._lock:
            self._running += 1
            self.overlaps += self._running > 1
        try:
            time.sleep(self.prefill_s)  # deaf to `cancel`, as a native call is
            yield from super().generate(
                prompt, sampling, cancel=cancel, guide=guide, on_prefill=on_prefill
            )
        finally:
            with self._lock:
                self._running -= 1


def test_a_client_leaving_during_prefill_never_lets_two_generations_overlap() -> None:
    engine = OverlapRecordingEngine(["word " * 200], prefill_s=0.3)
    app, service = scripted_app(engine)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(5):
            body = request_body(max_tokens=1000, stream=True)
            with client.stream("POST", "/v1/messages", json=body) as response:
                for number, _line in enumerate(response.iter_lines(), 1):
                    if number == 6:  # message_start and a ping: the engine is prefilling
                        break
            answer = client.post("/v1/messages", json=request_body(max_tokens=3))
            assert answer.status_code == 200
            assert answer.json()["content"][0]["text"] == "wor"
        # The engine is released just after the last byte is sent: give that a moment.
        deadline = time.monotonic() + 5
        while (state := client.get("/health").json())["busy"]:
            assert time.monotonic() < deadline, f"still busy 5 s after the last answer: {state}"
            time.sleep(0.02)
    assert engine.overlaps == 0, "a generation started while a cancelled one was still running"
    assert service.queue.waiting == 0


def test_pings_keep_a_slow_prefill_alive() -> None:
    engine = ScriptedEngine(["done"], prefill_delay_s=1.0)
    app, _ = scripted_app(engine, ping_interval_s=0.2)
    with running_server(app) as url:
        response = httpx.post(f"{url}/v1/messages", json=request_body(stream=True), timeout=30)
    kinds = [kind for kind, _ in parse_sse(response.text)]
    first_block = kinds.index("content_block_start")
    assert kinds[0] == "message_start"
    assert kinds[1:first_block].count("ping") >= 3


def test_deskloop_serve_starts_and_answers_the_official_sdk(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"outputs": ["Hello from the script."], "repeat_last": True}))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deskloop",
            "serve",
            "--engine",
            "scripted",
            "--script",
            str(script),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert "serving scripted (scripted) at http://127.0.0.1:" in ready
        url = ready.rsplit(" at ", 1)[1].strip()
        client = anthropic.Anthropic(base_url=url, api_key="unused")
        whole = client.messages.create(
            model="claude-opus-5-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        with client.messages.stream(
            model="claude-opus-5-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            streamed = stream.get_final_message()
        assert whole.content[0].type == "text"
        assert whole.content[0].text == "Hello from the script."
        assert [(b.type, getattr(b, "text", None)) for b in streamed.content] == [
            (b.type, getattr(b, "text", None)) for b in whole.content
        ]
        assert streamed.stop_reason == whole.stop_reason == "end_turn"
        assert streamed.usage.output_tokens == whole.usage.output_tokens
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_with_a_missing_model_says_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deskloop",
            "serve",
            "--model",
            str(tmp_path / "nope.gguf"),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "nope.gguf" in result.stderr
