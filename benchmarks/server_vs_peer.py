"""`deskloop serve` against llama.cpp's `llama-server`: same GGUF, same context, same client.

Both are driven through `/v1/messages` by the same code, idle and with a CPU hog on one
core: prefill at 2k and 8k prompt tokens, decode (free text, and a forced tool call on
deskloop), time to first token at turn 10 of an agent conversation whose client closes
every stream after its first delta, and resident memory after load and after a storm.
At turn 10 llama-server is given the chat messages deskloop renders (tools explained in the
system turn) through `/v1/chat/completions`: both servers prefill the same tokens.
Targets (issue 8): every speed ratio >= 1.0, time to first token <= 1.0, memory <= 1.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import peer_llama_server as peer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the storm lives with the tests that also run it

from tests.server.storm import run_storm, summary  # noqa: E402

LETTER_TOOL = {
    "name": "type_text",
    "description": "Type text into the focused element.",
    "input_schema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


@dataclass
class Streamed:
    ttft: float = 0.0
    first: float = 0.0
    last: float = 0.0
    deltas: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def decode_rate(self) -> float:
        span = self.last - self.first
        return (self.output_tokens - 1) / span if span > 0 and self.output_tokens > 1 else 0.0


def stream(
    client: httpx.Client, body: dict[str, Any], *, close_after_first: bool = False
) -> Streamed:
    result = Streamed()
    started = time.perf_counter()
    # llama-server drops a kept-alive connection after a streamed answer, so the next
    # request on it fails with "Server disconnected": each stream gets its own connection.
    with client.stream(
        "POST", "/v1/messages", json={**body, "stream": True}, headers={"connection": "close"}
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            kind = event.get("type")
            if kind == "message_start":
                usage = event["message"].get("usage", {})
                result.input_tokens = usage.get("input_tokens", 0) + (
                    usage.get("cache_read_input_tokens") or 0
                )
            elif kind == "content_block_delta":
                now = time.perf_counter() - started
                if not result.deltas:
                    result.ttft = result.first = now
                result.last = now
                result.deltas += 1
                if close_after_first:
                    break
            elif kind == "message_delta":
                result.output_tokens = event.get("usage", {}).get("output_tokens", 0)
    return result


def as_rendered_chat(gguf: Path, conversation: Any) -> Any:
    """`conversation` as llama-server is given it: the chat messages deskloop renders for the
    same request (its tool format explains the tools in the system turn), through
    `/v1/chat/completions`, so both servers prefill the same text. Given the Anthropic
    request itself, llama-server renders SmolLM2's template without the tools: 94 prompt
    tokens at turn 1 against deskloop's 831, and 1276 against 2478 at turn 10."""
    format_name = tool_format_of(gguf)

    def chat(turn: int) -> dict[str, Any]:
        body = conversation(turn)
        rendered = rendered_chat(format_name, body.get("system", ""), body["messages"],
                                 body.get("tools", []))  # fmt: skip
        return {"messages": rendered, "max_tokens": body["max_tokens"], "temperature": 0,
                "cache_prompt": True}  # fmt: skip

    return chat


def tool_format_of(gguf: Path) -> str:
    """The tool format deskloop picks for a GGUF, from its chat template."""
    from deskloop.engines.gguf_header import read_gguf_scalars
    from deskloop.server.tool_formats import detect_tool_format

    template = read_gguf_scalars(gguf, {"tokenizer.chat_template"}).get("tokenizer.chat_template")
    return detect_tool_format(template if isinstance(template, str) else None, "")


def rendered_chat(
    format_name: str, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The chat messages deskloop renders for an Anthropic request's parts (the format
    explains the tools in the system turn where its template does not render them)."""
    from deskloop.server.protocol import Message, Tool
    from deskloop.server.tool_formats import tool_format
    from deskloop.server.tool_schema import compact_enums

    parsed_tools = compact_enums([Tool.model_validate(tool) for tool in tools])
    parsed = [Message.model_validate(message) for message in messages]
    return tool_format(format_name).template_input(system, parsed, parsed_tools).messages


def stream_chat_first_token(client: httpx.Client, body: dict[str, Any]) -> float:
    """Seconds to the first content of a streamed chat completion (llama-server's side of a
    turn); the stream is closed there, as the agent's client does."""
    started = time.perf_counter()
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={**body, "stream": True},
        headers={"connection": "close"},
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                break
    return time.perf_counter() - started


@contextmanager
def deskloop_server(
    context: int,
    model: str = "",
    *,
    source: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """`deskloop serve` (its URL and pid) on `model` (default: the embedded one), from
    `source` (a checkout's src/, the code before a change) if given."""
    command = [sys.executable, "-m", "deskloop", "serve", "--port", "0",
               "--context-window", str(context)]  # fmt: skip
    if model:
        command += ["--model", model]
    environment = dict(os.environ, **(env or {}))
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment
    )
    assert process.stdout is not None
    ready = process.stdout.readline()
    if " at " not in ready:
        process.kill()
        raise SystemExit(f"deskloop serve did not start ({source or 'this checkout'})")
    try:
        yield ready.rsplit(" at ", 1)[1].strip(), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def notes_prompt(client: httpx.Client, target_tokens: int, salt: str) -> dict[str, Any]:
    """A fresh prompt (nothing cached) of about `target_tokens`, measured by deskloop."""

    def body(count: int) -> dict[str, Any]:
        lines = "\n".join(
            f"{salt} note {n}: parcel for room {n % 97} came on day {n % 28 + 1}."
            for n in range(count)
        )
        return {
            "model": "claude-opus-5-5",
            "max_tokens": 1,
            "temperature": 0,
            "messages": [{"role": "user", "content": f"{lines}\nWhich room came first?"}],
        }

    count = max(1, target_tokens // 20)
    for _ in range(4):
        tokens = client.post("/v1/messages/count_tokens", json=body(count)).json()["input_tokens"]
        count = max(1, round(count * target_tokens / tokens))
    return body(count)


@dataclass
class Figures:
    prefill: dict[int, float] = field(default_factory=dict)  # prompt tokens -> tok/s
    decode: float = 0.0
    decode_tool: float = 0.0
    ttft_turn10: float = 0.0
    rss_load: float = 0.0
    rss_storm: float = 0.0
    rss_storm_growth: float | None = None


def measure(
    url: str,
    pid: int,
    counter: httpx.Client,
    *,
    conversation: Any,
    chat_turn: Any = None,  # llama-server: each turn as a rendered chat (as_rendered_chat)
    tool_call: bool,
    storm_requests: int,
    storms: int,
    salt: str,
) -> Figures:
    figures = Figures(rss_load=peer.resident_mb(pid))
    with httpx.Client(base_url=url, timeout=900) as client:
        stream(client, {"model": "claude-opus-5-5", "max_tokens": 4,
                        "messages": [{"role": "user", "content": "Warm up."}]})  # fmt: skip
        for size in (2048, 8192 - 200):
            body = notes_prompt(counter, size, f"{salt}{size}")
            timing = stream(client, body, close_after_first=True)
            figures.prefill[size] = timing.input_tokens / timing.ttft if timing.ttft else 0.0
        letter = {
            "model": "claude-opus-5-5",
            "max_tokens": 200,
            "temperature": 0,
            "messages": [
                {"role": "user", "content": "Write a long story about a lighthouse keeper."}
            ],
        }
        figures.decode = statistics.median(stream(client, letter).decode_rate for _ in range(2))
        if tool_call:
            forced = {**letter, "tools": [LETTER_TOOL],
                      "tool_choice": {"type": "tool", "name": "type_text"}}  # fmt: skip
            figures.decode_tool = stream(client, forced).decode_rate
        for turn in range(1, 11):
            if chat_turn is not None:
                figures.ttft_turn10 = stream_chat_first_token(client, chat_turn(turn))
            else:
                figures.ttft_turn10 = stream(
                    client, conversation(turn), close_after_first=True
                ).ttft
    rss: list[float] = []
    for _ in range(storms):
        report = asyncio.run(
            run_storm(url, clients=8, requests=storm_requests, seed=8, max_tokens=8)
        )
        rss.append(peer.resident_mb(pid))
        print(f"    storm: {summary(report)}; resident {rss[-1]:.0f} MB")
    figures.rss_storm = rss[-1]
    if len(rss) >= 2:
        figures.rss_storm_growth = rss[-1] / rss[-2] - 1
    return figures


def compare(
    *, conversation: Any, gguf: Path, context: int, storm_requests: int, hog: bool = True
) -> None:
    binary = peer.find_or_build()
    loads = [("idle", nullcontext())]
    if hog:
        loads.append(("one core busy (CPU hog)", peer.cpu_hog()))
    for label, busy in loads:
        print(f"\n== {label}; context {context}, same GGUF {gguf.name}")
        with (
            busy,
            deskloop_server(context) as (url, pid),
            httpx.Client(base_url=url, timeout=600) as counter,
        ):
            ours = measure(url, pid, counter, conversation=conversation, tool_call=True,
                           storm_requests=storm_requests, storms=2, salt="d")  # fmt: skip
            try:
                with peer.llama_server(binary, gguf, context=context, threads=2) as (
                    peer_url,
                    peer_pid,
                ):
                    theirs = measure(peer_url, peer_pid, counter, conversation=conversation,
                                     chat_turn=as_rendered_chat(gguf, conversation),
                                     tool_call=False, storm_requests=storm_requests, storms=1,
                                     salt="l")  # fmt: skip
            except httpx.TransportError as exc:
                # Seen once with the CPU hog: llama-server dropped a connection mid-measure.
                print(f"  llama-server failed here ({exc!r}): no ratios for this run")
                print(peer.last_words())
                continue
        report(ours, theirs)


def row(name: str, mine: float, peer_value: float, unit: str, target: str) -> None:
    """One figure of both servers and deskloop's over llama-server's."""
    ratio = mine / peer_value if peer_value else float("nan")
    print(f"  {name:<34} deskloop {mine:8.1f} {unit:<5} llama-server {peer_value:8.1f} {unit:<5} "
          f"= {ratio:5.2f}x  (target {target})")  # fmt: skip


def report(ours: Figures, theirs: Figures) -> None:
    for size, rate in ours.prefill.items():
        row(f"prefill ~{size} tokens", rate, theirs.prefill.get(size, 0.0), "tok/s", ">= 1.0")
    row("decode, free text", ours.decode, theirs.decode, "tok/s", ">= 1.0")
    row("decode, forced tool call", ours.decode_tool, theirs.decode, "tok/s", ">= 1.0 of free text")
    row(
        "time to first token, turn 10",
        ours.ttft_turn10 * 1000,
        theirs.ttft_turn10 * 1000,
        "ms",
        "<= 1.0",
    )
    row("resident memory after load", ours.rss_load, theirs.rss_load, "MB", "<= 1.1")
    row("resident memory after the storm", ours.rss_storm, theirs.rss_storm, "MB", "<= 1.1")
    if ours.rss_storm_growth is not None:
        print(f"  deskloop memory growth over the second storm: {100 * ours.rss_storm_growth:+.1f}% "
              "(target < 10%)")  # fmt: skip


# -- Side by side: one server at a time, whole requests ------------------------------
#
# The comparison above keeps deskloop running while llama-server is measured, reads
# prefill off the first streamed delta, and takes llama-server at `-t 2`. The issue's
# own numbers came from this second method: each server alone on the machine, a whole
# request with max_tokens 1 for prefill (and for the tenth turn), the median of three
# 200-token answers for decode (streamed, and whole: tokens over the request's time),
# llama-server with `-t` = all cores.

# What `python -m deskloop serve` imports before it loads a GGUF (cli, the serve
# module, the HTTP server, the llama.cpp engine and its bindings).
SERVE_IMPORTS = (
    "import deskloop.cli, deskloop.server.run, uvicorn, deskloop.engines.llamacpp, llama_cpp"
)
_RSS_PROBE = """
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
print(rss())
{imports}
print(rss())
"""


@dataclass
class Alone:
    """One server's figures, measured with nothing else serving."""

    prefill: dict[int, float] = field(default_factory=dict)  # prompt tokens -> tok/s
    decode: float = 0.0  # between the first and the last streamed delta
    decode_whole: float = 0.0  # output tokens over the whole request's time
    turn10_first_token: float = 0.0  # seconds for the whole max_tokens-1 request at turn 10
    rss: dict[str, float] = field(default_factory=dict)  # phase -> MB


def rss_of_imports(imports: str = SERVE_IMPORTS) -> dict[str, float]:
    """Resident memory of a fresh interpreter, and after the serve command's imports."""
    probe = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE.format(imports=imports)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    interpreter, imported = (float(value) for value in probe.stdout.split())
    return {"interpreter": interpreter, "imports": imported}


def whole_seconds(client: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Seconds for one whole (not streamed) request, and its usage."""
    started = time.perf_counter()
    response = client.post("/v1/messages", json={**body, "stream": False})
    response.raise_for_status()
    return time.perf_counter() - started, response.json().get("usage", {})


STORY = {
    "model": "claude-opus-5-5",
    "max_tokens": 200,
    "temperature": 0,
    "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
}


def prompt_tokens(usage: dict[str, Any]) -> int:
    return int(usage.get("input_tokens", 0)) + int(usage.get("cache_read_input_tokens") or 0)


def turn_seconds(
    client: httpx.Client, conversation: Any, turn: int, chat_turn: Any = None
) -> float:
    """Seconds for one turn of the agent conversation with max_tokens 1 (llama-server,
    given `chat_turn`, gets the turn as deskloop renders it)."""
    if chat_turn is None:
        seconds, _ = whole_seconds(client, {**conversation(turn), "max_tokens": 1})
        return seconds
    started = time.perf_counter()
    body = {**chat_turn(turn), "max_tokens": 1}
    client.post("/v1/chat/completions", json=body).raise_for_status()
    return time.perf_counter() - started


def turn_ten_seconds(client: httpx.Client, conversation: Any, chat_turn: Any = None) -> float:
    """Turns 1 to 10 of the agent conversation with max_tokens 1; seconds for the tenth."""
    for turn in range(1, 10):
        turn_seconds(client, conversation, turn, chat_turn)
    return turn_seconds(client, conversation, 10, chat_turn)


def measure_alone(
    url: str,
    pid: int,
    prompts: dict[int, dict[str, Any]],
    *,
    conversation: Any,
    chat_turn: Any = None,  # llama-server: each turn as a rendered chat (as_rendered_chat)
) -> Alone:
    figures = Alone()
    figures.rss["model"] = peer.resident_mb(pid)
    with httpx.Client(base_url=url, timeout=900) as client:
        whole_seconds(client, {"model": "claude-opus-5-5", "max_tokens": 4,
                               "messages": [{"role": "user", "content": "Warm up."}]})  # fmt: skip
        figures.rss["first request"] = peer.resident_mb(pid)
        for size, body in prompts.items():
            seconds, usage = whole_seconds(client, body)
            figures.prefill[size] = prompt_tokens(usage) / seconds
        figures.decode = statistics.median(stream(client, STORY).decode_rate for _ in range(3))
        rates = []
        for _ in range(3):
            seconds, usage = whole_seconds(client, STORY)
            rates.append(usage.get("output_tokens", 0) / seconds)
        figures.decode_whole = statistics.median(rates)
        figures.turn10_first_token = turn_ten_seconds(client, conversation, chat_turn)
    figures.rss["after answers"] = peer.resident_mb(pid)
    return figures


def compare_alone(*, conversation: Any, gguf: Path, model: str, context: int) -> None:
    """deskloop alone, then llama-server alone (`-t` = all cores), on the same GGUF."""
    binary = peer.find_or_build(say=lambda _: None)
    cores = os.cpu_count() or 1
    print(f"\n== side by side, one server at a time, whole requests; context {context}, "
          f"{gguf.name}, llama-server -t {cores}")  # fmt: skip
    phases = rss_of_imports()
    with deskloop_server(context, model) as (url, pid):
        # The same prompts for both (each server starts with an empty cache), sized by deskloop.
        with httpx.Client(base_url=url, timeout=600) as counter:
            prompts = {
                size: notes_prompt(counter, size, f"alone{size}") for size in (2048, context - 200)
            }
        ours = measure_alone(url, pid, prompts, conversation=conversation)
    ours.rss = {**phases, **ours.rss}
    print(f"  deskloop alone: {ours}")  # kept even when llama-server fails below
    try:
        with peer.llama_server(binary, gguf, context=context, threads=cores) as (url, pid):
            theirs = measure_alone(url, pid, prompts, conversation=conversation,
                                   chat_turn=as_rendered_chat(gguf, conversation))  # fmt: skip
    except httpx.TransportError as exc:
        # Seen on a machine loaded by other work: llama-server dropped a streamed answer.
        print(f"  llama-server failed here ({exc!r}): no ratios for this run")
        print(peer.last_words())
        return
    report_alone(ours, theirs)


def compare_in_turn(
    *, conversation: Any, gguf: Path, model: str, context: int, rounds: int = 5
) -> None:
    """Both servers up, each request sent to one and then the other (the first alternates
    by round), so both see the same load: this machine's speed drifts by 10-15% over the
    minutes one server at a time takes. Each round: a fresh ~2k prompt (max_tokens 1), the
    200-token answer whole and streamed, and turns 1 to 10 of the agent conversation (the
    two tenth turns timed back to back)."""
    binary = peer.find_or_build(say=lambda _: None)
    cores = os.cpu_count() or 1
    print(f"\n== in turn: both servers up, requests alternating, {rounds} rounds; context "
          f"{context}, {gguf.name}, llama-server -t {cores}")  # fmt: skip
    chat_turn = as_rendered_chat(gguf, conversation)
    names = ("deskloop", "llama-server")
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in names}

    def note(name: str, measure: str, value: float) -> None:
        samples[name].setdefault(measure, []).append(value)

    with (
        deskloop_server(context, model) as (our_url, _),
        peer.llama_server(binary, gguf, context=context, threads=cores) as (their_url, _),
        httpx.Client(base_url=our_url, timeout=900) as ours,
        httpx.Client(base_url=their_url, timeout=900) as theirs,
    ):
        clients = {"deskloop": ours, "llama-server": theirs}
        chats = {"deskloop": None, "llama-server": chat_turn}
        for name in names:  # each loads its weights and warms up once
            whole_seconds(clients[name], {**STORY, "max_tokens": 4})
        for number in range(rounds):
            order = names if number % 2 == 0 else names[::-1]
            prefill = notes_prompt(ours, 2048, f"round{number}")
            for name in order:
                seconds, usage = whole_seconds(clients[name], prefill)
                note(name, "prefill", prompt_tokens(usage) / seconds)
            for name in order:
                seconds, usage = whole_seconds(clients[name], STORY)
                note(name, "decode whole", usage.get("output_tokens", 0) / seconds)
            for name in order:
                note(name, "decode streamed", stream(clients[name], STORY).decode_rate)
            for name in order:
                for turn in range(1, 10):
                    turn_seconds(clients[name], conversation, turn, chats[name])
            for name in order:  # the two tenth turns back to back, as the other rows
                seconds = turn_seconds(clients[name], conversation, 10, chats[name])
                note(name, "turn 10", seconds * 1000)
    ours_m, theirs_m = samples["deskloop"], samples["llama-server"]
    for label, measure, unit, target in (
        ("prefill ~2048 tokens (whole)", "prefill", "tok/s", ">= 0.98"),
        ("decode, 200 tokens whole", "decode whole", "tok/s", ">= 0.98"),
        ("decode, 200 tokens streamed", "decode streamed", "tok/s", ">= 0.98"),
        ("turn 10, max_tokens 1 (whole)", "turn 10", "ms", "<= 1.0"),
    ):
        mine, peers = statistics.median(ours_m[measure]), statistics.median(theirs_m[measure])
        row(label, mine, peers, unit, target)
    for measure in ours_m:
        pairs = zip(ours_m[measure], theirs_m[measure], strict=True)
        print(f"  {measure}, each round's ratio: " + ", ".join(f"{a / b:.2f}" for a, b in pairs))


def compare_memory_after_load(models: dict[str, Path], *, context: int) -> None:
    """Resident memory right after load, each server alone, for each model given.

    Python's own share (the interpreter, numpy, jinja2, the HTTP stack: about 55 MB that
    llama-server's C++ does not carry) is fixed. llama.cpp clears the whole KV cache at
    load; deskloop hands those zero pages back, so its cache becomes resident as
    conversations fill it, and llama-server's is resident from the start. "After answers"
    in the alone table is the same comparison once an ~8k-token prompt has filled it.
    """
    binary = peer.find_or_build(say=lambda _: None)
    print(f"\n== resident memory after load, each server alone; context {context}")
    for name, gguf in models.items():
        with deskloop_server(context, str(gguf)) as (_, pid):
            ours = peer.resident_mb(pid)
        with peer.llama_server(binary, gguf, context=context, threads=os.cpu_count() or 1) as (
            _,
            pid,
        ):
            theirs = peer.resident_mb(pid)
        row(f"after load, {name}", ours, theirs, "MB", "<= 1.1")


def report_alone(ours: Alone, theirs: Alone) -> None:
    for size, rate in ours.prefill.items():
        row(
            f"prefill ~{size} tokens (whole)",
            rate,
            theirs.prefill.get(size, 0.0),
            "tok/s",
            ">= 0.98",
        )
    row("decode, median of three streamed", ours.decode, theirs.decode, "tok/s", ">= 0.98")
    row("decode, median of three whole", ours.decode_whole, theirs.decode_whole, "tok/s", ">= 0.98")
    row("turn 10, max_tokens 1 (whole)", ours.turn10_first_token * 1000,
        theirs.turn10_first_token * 1000, "ms", "<= 1.0")  # fmt: skip
    row("resident memory after load", ours.rss["model"], theirs.rss["model"], "MB", "<= 1.1")
    row("resident memory after answers", ours.rss["after answers"],
        theirs.rss["after answers"], "MB", "<= 1.1")  # fmt: skip
    phases = ", ".join(f"{phase} {mb:.0f} MB" for phase, mb in ours.rss.items())
    print(f"  deskloop resident memory by phase: {phases}")
