"""Prompt drafts on and off (issue 21): answers that copy values from the conversation.

Four tool calls whose arguments copy from the prompt (an element id from an observed tree,
a text to type, a file path, a person's name and a message) and one free-text answer that
quotes it, each asked of the same engine with `prompt_drafts` on and off in turn (the
prompt cached, greedy, the desktop tools of bench_server in the prompt), `rounds` rounds.
Requests go through the server's own path in-process (LocalModelService: render, grammar,
decode, parse), so the engine's counts are at hand: tokens drafted and taken, passes.

Reported per answer and in total: the median time to the complete answer on and off and
their ratio (on/off, below 1 is a gain), the passes of each, the drafted tokens' acceptance
rate, the passes saved, and whether both wrote the same answer (they must).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench_server import SYSTEM
from bench_server import TOOLS as DESKTOP_TOOLS

OPEN_FILE = {
    "name": "open_file",
    "description": "Open a file in the app that handles it.",
    "input_schema": {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Absolute path."}},
        "required": ["path"],
        "additionalProperties": False,
    },
}
SEND_MESSAGE = {
    "name": "send_message",
    "description": "Send a chat message to a person.",
    "input_schema": {
        "type": "object",
        "properties": {
            "to": {"type": "string", "description": "The person's full name."},
            "body": {"type": "string", "description": "The message."},
        },
        "required": ["to", "body"],
        "additionalProperties": False,
    },
}
TOOLS: list[dict[str, Any]] = [*DESKTOP_TOOLS, OPEN_FILE, SEND_MESSAGE]

TYPED = "Invoice 2026-311 received from the Lisbon office, checked by Margarida Sousa"
PATH = "/home/ada/Documents/Invoices/2026/lisbon-office/invoice-2026-311-final.pdf"
SCREEN = (
    "Window: Mail - Inbox\n"
    'e1207 btn "New message"\ne1213 btn "Archive"\ne1219 btn "Quarterly report 2026"\n'
    'e1224 txt "Subject" value ""\ne1230 lst "Folders"\n'
    'e1236 lbl "Status: draft saved at 10:42 by Margarida Sousa, 3 attachments pending"\n'
    f"Attachment: {PATH}"
)


@dataclass(frozen=True)
class Case:
    label: str
    instruction: str
    tool: str | None  # None: a text answer, no tools


CASES = [
    Case("click an id from the tree", "Click the Quarterly report 2026 button.", "click"),
    Case("type a text from the prompt", f"Type '{TYPED}' into the Subject field.", "type_text"),
    Case("open a file path", "Open the attachment.", "open_file"),
    Case(
        "message a person",
        "Tell Margarida Sousa that the invoice 2026-311 from the Lisbon office is filed.",
        "send_message",
    ),
    Case("text quoting the prompt", "What does the status line say? Quote it.", None),
]


def body(case: Case, max_tokens: int) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": max_tokens,
        "temperature": 0,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": f"Screen:\n{SCREEN}\n\n{case.instruction}"}],
    }
    if case.tool is not None:
        request["tools"] = TOOLS
        request["tool_choice"] = {
            "type": "tool",
            "name": case.tool,
            "disable_parallel_tool_use": True,
        }
    return request


@dataclass
class Runs:
    seconds: list[float] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    tokens: int = 0
    drafted: int = 0
    accepted: int = 0
    answer: str = ""


def ask(loop: asyncio.AbstractEventLoop, service: Any, request: Any) -> tuple[float, str]:
    """One request through the service; the time to its last event, and its content."""
    from deskloop.engines.base import TextDelta, ToolCallEnd, ToolCallStart

    async def collect() -> list[Any]:
        return [event async for event in service.run(request)]

    started = time.perf_counter()
    events = loop.run_until_complete(collect())
    seconds = time.perf_counter() - started
    parts: list[Any] = []
    for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, ToolCallStart):
            parts.append(f"<{event.name}>")
        elif isinstance(event, ToolCallEnd):
            parts.append(json.dumps(event.input, ensure_ascii=False))
    return seconds, "".join(parts)


def compare(*, model: str, context: int, rounds: int, max_tokens: int) -> None:
    from deskloop.engines import create_engine
    from deskloop.engines.base import LocalEngine
    from deskloop.server.local_service import LocalModelService
    from deskloop.server.protocol import MessagesRequest

    engine = create_engine("llamacpp", model, context_window=context)
    assert isinstance(engine, LocalEngine)
    service = LocalModelService(engine, context_window=context, queue_size=4)
    print(f"\n== prompt drafts on vs off: {len(CASES)} answers that copy from the prompt, "
          f"{rounds} rounds, prompt cached, greedy, max_tokens {max_tokens}; "
          f"{engine.info.model_id}, llamacpp, threads its default")  # fmt: skip
    results: dict[tuple[str, bool], Runs] = {}
    loop = asyncio.new_event_loop()  # the service's queue belongs to one loop
    try:
        for case in CASES:
            request = MessagesRequest.model_validate(body(case, max_tokens))
            for drafts in (True, False):  # fills the prompt cache, compiles the grammar
                engine.prompt_drafts = drafts
                ask(loop, service, request)
            for _ in range(rounds):
                for drafts in (True, False):
                    engine.prompt_drafts = drafts
                    seconds, answer = ask(loop, service, request)
                    stats = engine.last_decode
                    assert stats is not None
                    runs = results.setdefault((case.label, drafts), Runs())
                    runs.seconds.append(seconds)
                    runs.passes.append(stats.passes)
                    runs.tokens = stats.tokens
                    runs.drafted += stats.drafted
                    runs.accepted += stats.accepted
                    runs.answer = answer
    finally:
        engine.prompt_drafts = False
        service.close()
        loop.close()
    report(results, rounds)


def report(results: dict[tuple[str, bool], Runs], rounds: int) -> None:
    print(f"  {'answer':<28} {'tokens':>6} {'on ms':>7} {'off ms':>7} {'on/off':>6} "
          f"{'passes on/off':>13} {'drafted':>7} {'taken':>6} {'saved':>5} same  answer")  # fmt: skip
    total_on = total_off = 0.0
    drafted = accepted = saved = 0
    for case in CASES:
        on, off = results[(case.label, True)], results[(case.label, False)]
        on_s, off_s = statistics.median(on.seconds), statistics.median(off.seconds)
        total_on += on_s
        total_off += off_s
        passes_on, passes_off = statistics.median(on.passes), statistics.median(off.passes)
        case_saved = round(passes_off - passes_on)
        drafted += on.drafted // rounds
        accepted += on.accepted // rounds
        saved += case_saved
        rate = f"{100 * on.accepted / on.drafted:5.0f}%" if on.drafted else "    -"
        same = "yes" if on.answer == off.answer else "NO"
        print(f"  {case.label:<28} {on.tokens:>6} {1000 * on_s:>7.0f} {1000 * off_s:>7.0f} "
              f"{on_s / off_s:>6.2f} {passes_on:>6.0f}/{passes_off:<6.0f} "
              f"{on.drafted // rounds:>7} {rate:>6} {case_saved:>5} {same:<4}  "
              f"{on.answer[:48]!r}")  # fmt: skip
    rate = 100 * accepted / drafted if drafted else 0.0
    print(f"  all five: on {1000 * total_on:.0f} ms, off {1000 * total_off:.0f} ms, "
          f"on/off {total_on / total_off:.2f}; drafted {drafted} tokens, {rate:.0f}% taken, "
          f"{saved} passes saved per round")  # fmt: skip


def add_arguments(parser: Any) -> None:
    parser.add_argument("--draft-rounds", type=int, default=5, help="drafts: timed rounds")
    parser.add_argument(
        "--draft-max-tokens", type=int, default=96, help="drafts: max_tokens of each answer"
    )


def run(args: Any) -> None:
    compare(
        model=args.model,
        context=min(args.context, 4096),
        rounds=args.draft_rounds,
        max_tokens=args.draft_max_tokens,
    )
