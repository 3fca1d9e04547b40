"""Forced tool calls, `deskloop serve` against llama.cpp's `llama-server` (issue 21).

Five agent calls (click an id, type text into an id, observe an app, finish with a
summary, create a routine), each with `tool_choice` naming its tool. deskloop writes its
format's whole call (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` on the
embedded model) under its grammar; llama-server writes the same input through its own
schema-constrained path (`response_format` with the tool's input schema). Both get the
same prompt (the messages deskloop renders, tools explained in the system turn; the
prompt token counts are printed side by side), greedy, the same max_tokens; each call is
sent once to fill the prompt cache, then timed for `rounds` rounds (the prompt cached;
the servers take turns request by request, so load from elsewhere falls on both alike).

Reported per call and in total: time from request to the complete call, tokens written,
effective tokens per second (tokens written / that time), the forced share (the tokens of
deskloop's call its grammar forces: written with fast-forward without a pass of their
own), and deskloop's time over llama-server's (target <= 0.7). With `--baseline-src` a
deskloop from another source tree (the code before a change) runs in the same rounds;
with `--compare-off` one with `server.fast_forward` off. Then the forced share of the same
five calls in every format family, on each family's own vocabulary where it is on the
machine (tests/tool_formats/vocabularies.py).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import peer_llama_server as peer
from bench_server import SYSTEM
from bench_server import TOOLS as DESKTOP_TOOLS
from server_vs_peer import deskloop_server, rendered_chat, tool_format_of

ROOT = Path(__file__).resolve().parents[1]

FINISH = {
    "name": "finish",
    "description": "End the task: a one-sentence summary of what was done, for the user.",
    "input_schema": {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "What you did, in one sentence."}
        },
        "required": ["summary"],
        "additionalProperties": False,
    },
}
TOOLS: list[dict[str, Any]] = [*DESKTOP_TOOLS, FINISH]
TOOLS_BY_NAME = {tool["name"]: tool for tool in TOOLS}

SCREEN = (
    "Window: Mail - Inbox (Mousepad is also open)\n"
    'e12 btn "New"\ne14 btn "Save"\ne16 btn "Archive"\ne22 txt "Subject" value ""\n'
    'e31 lst "Folders"\ne33 itm "Accounts"\ne40 lbl "Status: draft"'
)


@dataclass(frozen=True)
class AgentCall:
    label: str
    tool: str
    instruction: str
    # The input as a good answer writes it: what the forced share per format is measured on.
    expected: dict[str, Any]


CALLS = [
    AgentCall("click an id", "click", "Click the Save button.", {"element_id": "e14"}),
    AgentCall(
        "type text into an id",
        "type_text",
        "Type 'Invoice 2026-311 received' into the Subject field.",
        {"text": "Invoice 2026-311 received", "element_id": "e22"},
    ),
    AgentCall(
        "observe an app",
        "observe",
        "Look at every window of Mousepad.",
        {"target": "app", "app": "Mousepad"},
    ),
    AgentCall(
        "finish with a summary",
        "finish",
        "The invoice is saved. You are done: say so.",
        {"summary": "Saved the invoice in the Mail window."},
    ),
    AgentCall(
        "create a routine",
        "routines_create",
        "Every weekday at 9, check the mail and file new invoices: make that a routine.",
        {
            "name": "morning-mail",
            "prompt": "Check the mail and file new invoices.",
            "schedule": "cron:0 9 * * 1-5",
        },
    ),
]


def anthropic_messages(call: AgentCall) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"Screen:\n{SCREEN}\n\n{call.instruction}"}]


def deskloop_body(call: AgentCall, max_tokens: int) -> dict[str, Any]:
    return {
        "model": "claude-opus-5-5",
        "max_tokens": max_tokens,
        "temperature": 0,
        "system": SYSTEM,
        "tools": TOOLS,
        # One call, as the agent asks a small model for (agent/turn_tools.py): allowed more,
        # Qwen2.5-Coder repeats the call until max_tokens.
        "tool_choice": {"type": "tool", "name": call.tool, "disable_parallel_tool_use": True},
        "messages": anthropic_messages(call),
    }


def rendered_messages(call: AgentCall, format_name: str) -> list[dict[str, Any]]:
    """The chat messages deskloop renders for `call`, for llama-server to render with the
    same template."""
    return rendered_chat(format_name, SYSTEM, anthropic_messages(call), TOOLS)


def template_renders_tools(format_name: str) -> bool:
    """Whether the family's chat template writes the tools itself (Hermes/Qwen): then the
    rendered messages carry no tools, and llama-server is given deskloop's prompt text."""
    from deskloop.server.protocol import Tool
    from deskloop.server.tool_formats import tool_format

    tools = [Tool.model_validate(tool) for tool in TOOLS]
    return tool_format(format_name).template_input(SYSTEM, [], tools).tools is not None


def prompt_texts(gguf: Path, context: int) -> dict[str, str]:
    """Each call's whole prompt as deskloop renders it for `gguf`, by call label."""
    from deskloop.engines import create_engine
    from deskloop.server.prompt import render_prompt
    from deskloop.server.protocol import MessagesRequest
    from deskloop.server.tool_formats import detect_tool_format, tool_format
    from deskloop.server.tool_schema import compact_enums

    engine = create_engine("llamacpp", str(gguf), context_window=context)
    try:
        info = engine.info
        fmt = tool_format(detect_tool_format(info.chat_template, info.architecture))
        texts = {}
        for call in CALLS:
            request = MessagesRequest.model_validate(deskloop_body(call, 1))
            tools = compact_enums(list(request.tools or []))
            texts[call.label] = render_prompt(request, tools, fmt, info).text
        return texts
    finally:
        engine.close()


# Filled by compare() where the template renders the tools: llama-server's /completion
# then gets deskloop's prompt text, so both prefill the same tokens.
PROMPT_TEXTS: dict[str, str] = {}


def peer_completion(call: AgentCall, max_tokens: int) -> dict[str, Any]:
    return {
        "prompt": PROMPT_TEXTS[call.label],
        "n_predict": max_tokens,
        "temperature": 0,
        "cache_prompt": True,
        "json_schema": TOOLS_BY_NAME[call.tool]["input_schema"],
    }


def peer_body(call: AgentCall, max_tokens: int, format_name: str) -> dict[str, Any]:
    schema = TOOLS_BY_NAME[call.tool]["input_schema"]
    return {
        "messages": rendered_messages(call, format_name),
        "max_tokens": max_tokens,
        "temperature": 0,
        "cache_prompt": True,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": call.tool, "schema": schema, "strict": True},
        },
    }


@dataclass
class Answer:
    seconds: float
    prompt_tokens: int
    cached_tokens: int  # of the prompt, reused from the server's cache
    output_tokens: int
    arguments: Any


@dataclass
class Server:
    label: str
    url: str
    kind: str  # deskloop | peer
    answers: dict[str, list[Answer]] = field(default_factory=dict)


def ask(client: httpx.Client, server: Server, call: AgentCall, max_tokens: int, fmt: str) -> Answer:
    if server.kind == "deskloop":
        started = time.perf_counter()
        response = client.post(f"{server.url}/v1/messages", json=deskloop_body(call, max_tokens))
        seconds = time.perf_counter() - started
        response.raise_for_status()
        message = response.json()
        usage = message["usage"]
        inputs = [block["input"] for block in message["content"] if block["type"] == "tool_use"]
        cached = usage.get("cache_read_input_tokens") or 0
        return Answer(
            seconds,
            usage["input_tokens"] + cached,
            cached,
            usage["output_tokens"],
            inputs[0] if inputs else None,
        )
    if call.label in PROMPT_TEXTS:
        started = time.perf_counter()
        response = client.post(f"{server.url}/completion", json=peer_completion(call, max_tokens))
        seconds = time.perf_counter() - started
        response.raise_for_status()
        done = response.json()
        try:
            written: Any = json.loads(done.get("content") or "")
        except json.JSONDecodeError:
            written = done.get("content")
        timings = done.get("timings", {})
        return Answer(
            seconds,
            int(done.get("tokens_evaluated", 0)),
            int(timings.get("cache_n", 0)),
            int(done.get("tokens_predicted", 0)),
            written,
        )
    started = time.perf_counter()
    response = client.post(
        f"{server.url}/v1/chat/completions", json=peer_body(call, max_tokens, fmt)
    )
    seconds = time.perf_counter() - started
    response.raise_for_status()
    completion = response.json()
    text = completion["choices"][0]["message"].get("content") or ""
    try:
        arguments: Any = json.loads(text)
    except json.JSONDecodeError:
        arguments = text
    usage = completion.get("usage", {})
    timings = completion.get("timings", {})
    return Answer(
        seconds,
        usage.get("prompt_tokens", 0),
        int(timings.get("cache_n", 0)),
        usage.get("completion_tokens", 0),
        arguments,
    )


def forced_share(
    format_name: str, tokenizer: Any, call: AgentCall, written: Any
) -> tuple[int, int]:
    """(forced, total) tokens of `call` written with input `written`, in `format_name` on
    `tokenizer`, under the grammar deskloop builds for it (tool_choice naming the tool)."""
    from deskloop.server.constraints import build_guide, count_forced
    from deskloop.server.protocol import Tool
    from deskloop.server.tool_formats import tool_format

    fmt = tool_format(format_name)
    tools = [Tool.model_validate(tool) for tool in TOOLS]
    guide = build_guide(tokenizer, fmt, tools, "tool", call.tool)
    assert guide is not None
    ordered = _schema_order(call.tool, written)
    tokens: list[int] = tokenizer.tokenize_str(
        fmt.write_call(call.tool, ordered), parse_special=True
    )
    return count_forced(guide, tokens), len(tokens)


def _schema_order(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Required properties first, in schema order (as the grammar writes them), then the rest."""
    schema = TOOLS_BY_NAME[tool]["input_schema"]
    required = [name for name in schema.get("required", []) if name in arguments]
    rest = [
        name for name in schema.get("properties", {}) if name in arguments and name not in required
    ]
    return {name: arguments[name] for name in [*required, *rest]}


def model_tokenizer(gguf: Path) -> Any:
    """The llguidance tokenizer of a GGUF's vocabulary, as the llamacpp engine builds it."""
    import llama_cpp
    from llguidance.llamacpp import lltokenizer_from_vocab

    llama = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False)
    vocab = llama._model.vocab
    stops = [t for t in range(llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    tokenizer = lltokenizer_from_vocab(vocab, eos_token=stops)
    _ALIVE.append(llama)  # the tokenizer calls into this vocabulary
    return tokenizer


_ALIVE: list[Any] = []


def compare(
    *,
    gguf: Path,
    context: int,
    rounds: int,
    max_tokens: int,
    baseline_src: Path | None,
    compare_off: bool,
    peer_threads: int = 2,
) -> None:
    format_name = tool_format_of(gguf)
    binary = peer.find_or_build()
    PROMPT_TEXTS.clear()
    if template_renders_tools(format_name):
        PROMPT_TEXTS.update(prompt_texts(gguf, context))
    print(f"\n== forced tool calls: {len(CALLS)} agent calls, {rounds} rounds, prompt cached, "
          f"max_tokens {max_tokens}, greedy; {gguf.name}, format {format_name}; "
          f"llama-server -t {peer_threads}, deskloop's threads its default")  # fmt: skip
    servers: list[Server] = []
    with ExitStack() as stack:
        servers.append(
            Server(
                "deskloop", stack.enter_context(deskloop_server(context, str(gguf)))[0], "deskloop"
            )
        )
        if compare_off:
            off = deskloop_server(context, str(gguf), env={"DESKLOOP_SERVER_FAST_FORWARD": "false"})
            servers.append(
                Server("deskloop, fast-forward off", stack.enter_context(off)[0], "deskloop")
            )
        if baseline_src is not None:
            before = deskloop_server(context, str(gguf), source=baseline_src)
            servers.append(Server("deskloop before", stack.enter_context(before)[0], "deskloop"))
        peer_url, _ = stack.enter_context(
            peer.llama_server(binary, gguf, context=context, threads=peer_threads)
        )
        servers.append(Server("llama-server", peer_url, "peer"))
        with httpx.Client(timeout=600) as client:
            for call in CALLS:
                for server in servers:
                    ask(client, server, call, max_tokens, format_name)  # fills the prompt cache
                for _ in range(rounds):
                    for server in servers:
                        answer = ask(client, server, call, max_tokens, format_name)
                        server.answers.setdefault(call.label, []).append(answer)
    report(servers, gguf, format_name)


def report(servers: list[Server], gguf: Path, format_name: str) -> None:
    theirs = servers[-1]
    tokenizer = model_tokenizer(gguf)
    print(f"  {'call':<22} {'server':<27} {'prompt':>6} {'cached':>6} {'tokens':>6} "
          f"{'median ms':>9} {'tok/s':>6} {'forced':>7}  input")  # fmt: skip
    seconds_of = {server.label: 0.0 for server in servers}
    tokens_of = {server.label: 0 for server in servers}
    forced_of = {server.label: [0, 0] for server in servers}
    for call in CALLS:
        peer_time = statistics.median(a.seconds for a in theirs.answers[call.label])
        ratios = []
        for server in servers:
            answers = server.answers[call.label]
            seconds = statistics.median(answer.seconds for answer in answers)
            last = answers[-1]
            seconds_of[server.label] += seconds
            tokens_of[server.label] += last.output_tokens
            share = ""
            if server.kind == "deskloop" and isinstance(last.arguments, dict):
                forced, total = forced_share(format_name, tokenizer, call, last.arguments)
                share = f"{100 * forced / total:5.0f}%"
                forced_of[server.label][0] += forced
                forced_of[server.label][1] += total
            if server is not theirs:
                ratios.append(f"{server.label} {seconds / peer_time:.2f}x")
            rate = last.output_tokens / seconds if seconds else 0.0
            shown = json.dumps(last.arguments, ensure_ascii=False)
            print(f"  {call.label:<22} {server.label:<27} {last.prompt_tokens:>6} "
                  f"{last.cached_tokens:>6} {last.output_tokens:>6} {1000 * seconds:>9.0f} "
                  f"{rate:>6.1f} {share:>7}  {shown[:56]}")  # fmt: skip
        print(f"  {'':<22} vs llama-server: {', '.join(ratios)}")
    print()
    ours_prompt = servers[0].answers[CALLS[0].label][-1].prompt_tokens
    theirs_prompt = theirs.answers[CALLS[0].label][-1].prompt_tokens
    if abs(ours_prompt - theirs_prompt) > 0.02 * ours_prompt:
        # Families whose template renders the tools itself (Hermes/Qwen) get them as text
        # only in deskloop's prompt: llama-server's side then has no tools to read.
        print(f"  NOT COMPARABLE: the prompts differ ({ours_prompt} tokens against "
              f"{theirs_prompt}); the {format_name} template renders its tools itself")  # fmt: skip
    peer_total = seconds_of[theirs.label]
    for server in servers:
        total = seconds_of[server.label]
        rate = tokens_of[server.label] / total if total else 0.0
        line = (f"  all five calls, {server.label:<27} {1000 * total:7.0f} ms, "
                f"{tokens_of[server.label]:4d} tokens, {rate:6.1f} tok/s effective")  # fmt: skip
        forced, written = forced_of[server.label]
        if written:
            line += f", forced share {100 * forced / written:3.0f}%"
        if server is not theirs:
            line += f"; vs llama-server {total / peer_total:.2f}x (target <= 0.7)"
        print(line)


def shares_per_format() -> None:
    """The forced share of the five calls (as a good answer writes them) in every family."""
    sys.path.insert(0, str(ROOT))
    import pytest
    from tests.tool_formats.vocabularies import FAMILY_VOCABULARY, family_tokenizer

    from deskloop.server.tool_formats import TOOL_FORMATS

    print("\n== forced share per format family (the same five calls, tool_choice naming the "
          "tool), on each family's vocabulary")  # fmt: skip
    for name in TOOL_FORMATS:
        vocabulary = FAMILY_VOCABULARY.get(name)
        try:
            tokenizer = family_tokenizer(vocabulary)
        except pytest.skip.Exception:
            print(f"  {name:<12} (no {vocabulary} vocabulary on this machine)")
            continue
        parts = [forced_share(name, tokenizer, call, call.expected) for call in CALLS]
        cells = "  ".join(
            f"{call.tool} {forced}/{total}"
            for call, (forced, total) in zip(CALLS, parts, strict=True)
        )
        forced_sum = sum(forced for forced, _ in parts)
        total_sum = sum(total for _, total in parts)
        print(f"  {name:<12} {100 * forced_sum / total_sum:4.0f}%  ({vocabulary}: {cells})")


def add_arguments(parser: Any) -> None:
    parser.add_argument("--rounds", type=int, default=3, help="forced calls: timed rounds")
    parser.add_argument(
        "--forced-max-tokens", type=int, default=64, help="forced calls: max_tokens of each"
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="forced calls: also run a deskloop from this src/ folder (the code before a change)",
    )
    parser.add_argument(
        "--peer-threads", type=int, default=2, help="forced calls: llama-server's -t"
    )
    parser.add_argument(
        "--compare-off",
        action="store_true",
        help="forced calls: also run a deskloop with server.fast_forward off",
    )


def run(args: Any, gguf: Path) -> None:
    compare(
        gguf=gguf,
        context=args.context,
        rounds=args.rounds,
        max_tokens=args.forced_max_tokens,
        baseline_src=args.baseline_src,
        compare_off=args.compare_off,
        peer_threads=args.peer_threads,
    )
    shares_per_format()


if __name__ == "__main__":
    import argparse

    from deskloop.engines.models import resolve_model

    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_argument("--model", default="", help="default: the embedded SmolLM2-135M")
    cli.add_argument("--context", type=int, default=8192)
    cli.add_argument("--shares-only", action="store_true", help="only the forced share per format")
    add_arguments(cli)
    arguments = cli.parse_args()
    if arguments.shares_only:
        shares_per_format()
    else:
        model_path = resolve_model(arguments.model).path
        assert model_path is not None
        run(arguments, model_path)
