"""A real `deskloop serve` process for the tests that must survive what clients do to it.

A native crash in the engine kills that process, not pytest, so the tests can say so
(with the end of the server's log) and go on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    log: Path
    engine: str = ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def assert_alive(self, after: str = "") -> None:
        code = self.process.poll()
        if code is not None:
            cause = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            raise AssertionError(
                f"deskloop serve died ({cause}) {after}\n--- server log ---\n{self.log_tail()}"
            )

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/health", timeout=10).json()
        return answer

    def wait_until_idle(self, timeout_s: float = 30) -> dict[str, Any]:
        """`/health` once nothing runs and nothing waits; fails if that never comes."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.assert_alive("while waiting for it to go idle")
            state = self.health()
            if not state["busy"] and state["waiting"] == 0:
                return state
            assert time.monotonic() < deadline, f"still not idle after {timeout_s} s: {state}"
            time.sleep(0.05)


@contextmanager
def served(
    log_dir: Path, *arguments: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> Iterator[Served]:
    """`deskloop serve --port 0 ARGUMENTS...`, stopped (and reaped) afterwards."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "deskloop", "serve", "--port", "0", *arguments],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
        )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout_s
        ready = process.stdout.readline()
        assert " at http" in ready, f"deskloop serve did not start: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline
        engine = arguments[arguments.index("--engine") + 1] if "--engine" in arguments else ""
        yield Served(ready.rsplit(" at ", 1)[1].strip(), process, log, engine)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def sse_events(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(event type, data) pairs from the lines of a complete SSE body."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, json.loads(line[6:])))
    return events


def assert_well_formed_stream(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Checks the documented event order; returns the message the stream adds up to."""
    kinds = [kind for kind, _ in events if kind != "ping"]
    assert kinds, "empty stream"
    assert kinds[0] == "message_start", kinds
    assert kinds[-2:] == ["message_delta", "message_stop"], kinds
    assert "error" not in kinds, events
    message = dict(events[0][1]["message"])
    content: list[dict[str, Any]] = []
    cut_call: int | None = None
    open_index: int | None = None
    partial_json = ""
    for kind, data in events[1:]:
        if kind == "content_block_start":
            assert open_index is None, f"a block started inside block {open_index}"
            assert data["index"] == len(content), (data["index"], len(content))
            open_index = data["index"]
            content.append(dict(data["content_block"]))
            partial_json = ""
        elif kind == "content_block_delta":
            assert data["index"] == open_index, (data, open_index)
            delta = data["delta"]
            if delta["type"] == "text_delta":
                content[-1]["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                partial_json += delta["partial_json"]
        elif kind == "content_block_stop":
            assert data["index"] == open_index
            if content[-1]["type"] == "tool_use":
                try:
                    content[-1]["input"] = json.loads(partial_json) if partial_json else {}
                except json.JSONDecodeError:
                    cut_call = len(content) - 1  # legal only if max_tokens ended the answer
                    content[-1]["partial_json"] = partial_json
            open_index = None
        elif kind == "message_delta":
            assert open_index is None, "message_delta while a block is open"
            message["stop_reason"] = data["delta"]["stop_reason"]
            message["usage"] = data["usage"]
    message["content"] = content
    assert message["stop_reason"] in {"end_turn", "max_tokens", "stop_sequence", "tool_use"}
    assert message["usage"]["output_tokens"] >= 0
    if cut_call is not None:
        # As the Messages API does: a call cut off by max_tokens ends the answer unfinished.
        assert message["stop_reason"] == "max_tokens", content
        assert cut_call == len(content) - 1, content
    if message["stop_reason"] == "tool_use":
        # A model may write text after its call (the grammar allows it once a call closed).
        assert any(block["type"] == "tool_use" for block in content), content
    return message
