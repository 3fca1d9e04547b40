"""`deskloop bench upstream`: what the openai engine's bridge costs.

Starts llama-cpp-python's own OpenAI-compatible server on the embedded model and a real
`deskloop serve --engine openai` in front of it, then streams the same greedy request
both ways, alternating, and prints:

- decode tokens/s through deskloop (Messages SSE) against the upstream directly
  (chat-completions SSE), as a ratio (1.0 = no cost);
- time to first token, the same way;
- the translation alone: chunks/s that `ChunkTranslator` handles in-process, against
  the upstream's decode rate (how many times faster the bridge is than the model).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from deskloop.engines.models import embedded_model_path
from deskloop.engines.openai_translate import ChunkTranslator

PROMPT = "Count from 1 to 300, separated by spaces."


@dataclass(frozen=True)
class Run:
    first_token_s: float
    tokens: int
    decode_s: float

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.decode_s > 0 else 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(command: list[str], ready: str, timeout_s: float = 120.0) -> Iterator[str]:
    """Run `command`; yield the first regex group of `ready` found in its output."""
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert child.stdout is not None
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line and child.poll() is not None:
                raise SystemExit(f"{command[:4]} exited before it was ready")
            found = re.search(ready, line)
            if found:
                yield found.group(1)
                return
        raise SystemExit(f"{command[:4]} was not ready in {timeout_s} s")
    finally:
        child.terminate()
        child.wait(timeout=10)
        child.stdout.close()


def direct_run(upstream: str, max_tokens: int) -> Run:
    body = {
        "model": "embedded",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with httpx.stream("POST", f"{upstream}/chat/completions", json=body, timeout=300) as answer:
        for line in answer.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                last = time.perf_counter()
                first = first or last
                tokens += 1
    return Run(first - started, tokens, last - first)


def deskloop_run(deskloop: str, max_tokens: int) -> Run:
    body = {
        "model": "claude-opus-5-5",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with httpx.stream("POST", f"{deskloop}/v1/messages", json=body, timeout=300) as answer:
        for line in answer.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("type") == "content_block_delta":
                last = time.perf_counter()
                first = first or last
            elif event.get("type") == "message_delta":
                tokens = int(event["usage"]["output_tokens"])
    return Run(first - started, tokens, last - first)


def translation_chunks_per_s(chunks: int = 50_000) -> float:
    chunk = {"choices": [{"index": 0, "delta": {"content": " 12"}, "finish_reason": None}]}
    translator = ChunkTranslator()
    started = time.perf_counter()
    for _ in range(chunks):
        translator.feed(chunk)
    return chunks / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    port = free_port()
    llama_server = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
        "--port", str(port), "--n_ctx", "2048", "--verbose", "false",
    ]  # fmt: skip
    with process(llama_server, r"(Uvicorn running on http://\S+)"):
        upstream = f"http://127.0.0.1:{port}/v1"
        serve = [
            sys.executable, "-m", "deskloop", "serve", "--engine", "openai",
            "--upstream", upstream, "--port", "0",
        ]  # fmt: skip
        with process(serve, r"at (http://\S+)") as deskloop:
            deskloop_run(deskloop, 4)  # warm both servers
            direct, bridged = [], []
            for _ in range(args.runs):
                direct.append(direct_run(upstream, args.max_tokens))
                bridged.append(deskloop_run(deskloop, args.max_tokens))

    direct_rate = statistics.median(run.tokens_per_s for run in direct)
    bridged_rate = statistics.median(run.tokens_per_s for run in bridged)
    direct_first = statistics.median(run.first_token_s for run in direct)
    bridged_first = statistics.median(run.first_token_s for run in bridged)
    translate_rate = translation_chunks_per_s()
    print(f"runs: {args.runs} x {args.max_tokens} tokens, median of each")
    print(f"decode through deskloop / direct upstream: {bridged_rate / direct_rate:.2f}")
    print(f"time to first token, deskloop / direct:    {bridged_first / direct_first:.2f}")
    print(f"translation alone / upstream decode rate:   {translate_rate / direct_rate:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
