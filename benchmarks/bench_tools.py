"""`deskloop bench tools`: tool calls from the embedded model, with and without constraints.

Cases are generated from realistic desktop tool schemas (click / type / press keys /
scroll by element id, SQL, routines, a follow-up question), each a screen-like context
and an instruction. Every case runs twice on the same prompt, which ends with the call
opener so both runs must write a call: once free, once guided by the call grammar
(tool_choice any). A run stops at the end of its first call (as the server does when
one call is wanted) or as soon as the call is not JSON. Prints schema-valid, right-tool
and right-argument rates for both, how many calls max_tokens cut short (never emitted
as tool_use by the server), and the decode-time cost of masking: measured directly, and
as a ratio on identical text with and without a guide. Targets (issue 3): 100%
schema-valid guided; masking adds <= 10% to decode time. Asserts nothing.

First, a row per native tool family (no model needed): the tokens its schemas add to
every request (cl100k, full and `--tool-diet`), and the median overhead of a call through
dispatch (schema check, policy, timeout) against calling the tool directly, both on the
same real store. Target (issue 9): the reference's native tools <= 2,000 tokens, diet.

    python benchmarks/bench_tools.py --limit 20
    python benchmarks/bench_tools.py --families-only
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine, PrefillReport, Sampling
from deskloop.screen.tokens import count_tokens, tokenizer_name
from deskloop.server.chat_template import render_chat
from deskloop.server.constraints import GrammarGuide, build_guide
from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats import choose_tool_format
from deskloop.server.tool_formats.base import (
    ParsedCallEnd,
    ParsedCallInvalid,
    ParsedCallStart,
    ParsedEvent,
    ToolFormat,
)
from deskloop.server.tool_schema import slim_tools, validate_input
from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import (
    NATIVE_FAMILIES,
    Dispatcher,
    PermissionPolicy,
    ToolCall,
    ToolContext,
    ToolRegistry,
    timeouts_from_settings,
)
from deskloop.tools import Tool as NativeTool

ELEMENT_ID = {
    "type": "string",
    "pattern": "^e[0-9]+$",
    "description": "An element id from the screen, like e12.",
}

DESKTOP_TOOLS = [
    Tool(
        name="click",
        description="Click an element on the screen by its id. Use the ids of the latest screen.",
        input_schema={
            "type": "object",
            "properties": {"element_id": ELEMENT_ID, "double": {"type": "boolean"}},
            "required": ["element_id"],
            "additionalProperties": False,
        },
    ),
    Tool(
        name="type_text",
        description="Type text into a text field. The field is focused first.",
        input_schema={
            "type": "object",
            "properties": {
                "element_id": ELEMENT_ID,
                "text": {"type": "string", "maxLength": 100},
                "submit": {"type": "boolean", "description": "Press Enter after typing."},
            },
            "required": ["element_id", "text"],
            "additionalProperties": False,
        },
    ),
    Tool(
        name="press_keys",
        description="Press a key combination in the focused window, like ctrl+s.",
        input_schema={
            "type": "object",
            "properties": {
                "keys": {
                    "type": "string",
                    "pattern": "^((ctrl|alt|shift|super)\\+)*([a-z0-9]|f[0-9]{1,2}|enter|escape|tab|delete)$",
                }
            },
            "required": ["keys"],
            "additionalProperties": False,
        },
    ),
    Tool(
        name="scroll",
        description="Scroll a list or page element.",
        input_schema={
            "type": "object",
            "properties": {
                "element_id": ELEMENT_ID,
                "direction": {"type": "string", "enum": ["up", "down"]},
                "amount": {"type": "integer", "minimum": 1, "maximum": 10},
            },
            "required": ["element_id", "direction"],
            "additionalProperties": False,
        },
    ),
    Tool(
        name="run_sql",
        description="Run a read-only SQL query on the user's local database and return the rows.",
        input_schema={
            "type": "object",
            "properties": {"query": {"type": "string", "maxLength": 200}},
            "required": ["query"],
            "additionalProperties": False,
        },
    ),
    Tool(
        name="create_routine",
        description="Schedule a task that runs again at set times.",
        input_schema={
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 40},
                "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                "days": {"type": "string", "enum": ["daily", "weekdays", "weekends"]},
                "task": {"type": "string", "maxLength": 120},
            },
            "required": ["name", "time", "days", "task"],
            "additionalProperties": False,
        },
    ),
    Tool(
        name="ask_user",
        description="Ask the user a question when the instruction is missing something.",
        input_schema={
            "type": "object",
            "properties": {"question": {"type": "string", "maxLength": 120}},
            "required": ["question"],
            "additionalProperties": False,
        },
    ),
]

BUTTONS = ["OK", "Cancel", "Save", "Open", "Send", "Delete", "Next", "Back", "Print", "Close"]
FIELDS = ["Name", "Email", "Subject", "Search", "City", "Phone", "Title", "Password"]
LISTS = ["Messages", "Files", "Contacts", "Results", "Songs"]
WINDOWS = ["Mail", "Settings", "Files", "Calendar", "Notes", "Music"]
WORDS = ["hello", "meeting at noon", "Berlin", "invoice 42", "lunch", "quarterly report"]
KEYS = [
    ("ctrl+s", "save the document"),
    ("ctrl+p", "print"),
    ("ctrl+f", "search"),
    ("escape", "close the dialog"),
    ("ctrl+z", "undo"),
    ("alt+f4", "close the window"),
]
TABLES = ["invoices", "contacts", "orders", "notes", "events"]
TASKS = [
    ("07:30", "weekdays", "check my calendar"),
    ("09:00", "daily", "summarize new mail"),
    ("18:00", "weekdays", "back up the notes folder"),
    ("10:00", "weekends", "water the plants reminder"),
]
VAGUE = [
    "Send the file to him.",
    "Book it for then.",
    "Delete the old ones.",
    "Reply to that message.",
]


@dataclass(frozen=True)
class Case:
    screen: str
    instruction: str
    tool: str
    check: Callable[[dict[str, Any]], bool]  # right argument(s) for the right tool


def _screen(rng: random.Random) -> tuple[str, dict[str, str], dict[str, str], dict[str, str]]:
    """A window with buttons, fields and a list; ids are shuffled so position does not tell."""
    ids = [f"e{number}" for number in rng.sample(range(2, 60), 12)]
    buttons = rng.sample(BUTTONS, 4)
    fields = rng.sample(FIELDS, 3)
    lists = rng.sample(LISTS, 1)
    lines = [f"window '{rng.choice(WINDOWS)}' (frame) e1"]
    button_ids, field_ids, list_ids = {}, {}, {}
    for name in buttons:
        button_ids[name] = ids.pop()
        lines.append(f"  {button_ids[name]} button '{name}'")
    for name in fields:
        field_ids[name] = ids.pop()
        lines.append(f"  {field_ids[name]} entry '{name}' value=''")
    for name in lists:
        list_ids[name] = ids.pop()
        lines.append(f"  {list_ids[name]} list '{name}' (24 items, scrollable)")
    lines.append(f"  {ids.pop()} label 'Ready'")
    header, body = lines[0], lines[1:]
    rng.shuffle(body)
    return "\n".join([header, *body]), button_ids, field_ids, list_ids


def generate_cases(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    kinds = ["click", "type_text", "press_keys", "scroll", "run_sql", "create_routine", "ask_user"]
    for index in range(count):
        kind = kinds[index % len(kinds)]
        screen, buttons, fields, lists = _screen(rng)
        if kind == "click":
            name = rng.choice(list(buttons))
            target = buttons[name]
            cases.append(
                Case(
                    screen,
                    f"Click the '{name}' button.",
                    kind,
                    lambda a, t=target: a.get("element_id") == t,
                )
            )
        elif kind == "type_text":
            name, word = rng.choice(list(fields)), rng.choice(WORDS)
            target = fields[name]
            cases.append(
                Case(
                    screen,
                    f"Type '{word}' into the {name} field.",
                    kind,
                    lambda a, t=target, w=word: a.get("element_id") == t and a.get("text") == w,
                )
            )
        elif kind == "press_keys":
            keys, purpose = rng.choice(KEYS)
            cases.append(
                Case(
                    screen,
                    f"Press {keys} to {purpose}.",
                    kind,
                    lambda a, k=keys: a.get("keys") == k,
                )
            )
        elif kind == "scroll":
            name, direction = rng.choice(list(lists)), rng.choice(["up", "down"])
            target = lists[name]
            cases.append(
                Case(
                    screen,
                    f"Scroll the {name} list {direction}.",
                    kind,
                    lambda a, t=target, d=direction: (
                        a.get("element_id") == t and a.get("direction") == d
                    ),
                )
            )
        elif kind == "run_sql":
            table = rng.choice(TABLES)
            cases.append(
                Case(
                    screen,
                    f"Use SQL to count the rows of the {table} table.",
                    kind,
                    lambda a, t=table: bool(
                        re.search(rf"\bfrom\s+{t}\b", a.get("query", ""), re.I)
                    ),
                )
            )
        elif kind == "create_routine":
            at, days, task = rng.choice(TASKS)
            instruction = f"Set up a routine: {days} at {at}, {task}."
            cases.append(
                Case(
                    screen,
                    instruction,
                    kind,
                    lambda a, at=at, d=days: a.get("time") == at and a.get("days") == d,
                )
            )
        else:
            cases.append(
                Case(
                    screen,
                    rng.choice(VAGUE) + " (Ask me what is missing.)",
                    kind,
                    lambda a: a.get("question", "").strip().endswith("?"),
                )
            )
    return cases


@dataclass
class Outcome:
    output: str
    cut: bool  # max_tokens ran out inside the call
    valid: bool
    right_tool: bool
    right_arguments: bool
    tokens: int
    decode_seconds: float
    mask_seconds: float


def first_call(events: list[ParsedEvent]) -> tuple[str, dict[str, Any]] | None:
    name = ""
    for event in events:
        if isinstance(event, ParsedCallStart):
            name = event.name
        elif isinstance(event, ParsedCallEnd):
            return name, event.input
        elif isinstance(event, ParsedCallInvalid):
            return None
    return None


def run_case(
    engine: LocalEngine,
    tokenizer: Any,
    fmt: ToolFormat,
    tools: list[Tool],
    case: Case,
    *,
    guided: bool,
    max_tokens: int,
) -> Outcome:
    messages = [Message(role="user", content=f"Screen:\n{case.screen}\n\n{case.instruction}")]
    template_input = fmt.template_input(
        "You operate the user's desktop with tools.", messages, tools
    )
    prompt = render_chat(
        engine.info.chat_template, template_input.messages, tools=template_input.tools
    )
    # Both runs start inside a call, as a client forcing a tool would get them.
    prompt += fmt.call_opener
    guide: GrammarGuide | None = None
    if guided:
        guide = build_guide(
            tokenizer, fmt, tools, "any", parallel=False, stop_tokens=engine.stop_token_ids
        )
        assert guide is not None
        for token in engine.tokenize(fmt.call_opener):
            guide.allowed_tokens()
            guide.accept(token)
        guide.mask_seconds = 0.0
    prefilled: list[float] = []

    def on_prefill(report: PrefillReport) -> None:
        prefilled.append(time.perf_counter())

    parser = fmt.new_parser(tools, guided=guided)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    events = parser.feed(fmt.call_opener)
    pieces = [fmt.call_opener]
    tokens = 0
    generation = engine.generate(
        engine.tokenize(prompt),
        Sampling(max_tokens=max_tokens, temperature=0.0),
        cancel=threading.Event(),
        guide=guide,
        on_prefill=on_prefill,
    )
    # Stop at the end of the first call, as the server does when one call is all it wants:
    # what a free-running model writes after it does not change the call.
    for token in generation:
        tokens += 1
        piece = decoder.decode(engine.token_bytes(token))
        pieces.append(piece)
        events += parser.feed(piece)
        if any(isinstance(event, ParsedCallEnd | ParsedCallInvalid) for event in events):
            break
        body = "".join(pieces[1:]).lstrip()
        if body and not body.startswith("{"):
            break  # not a JSON call, whatever follows: the parser will report it invalid
    else:
        if tokens < max_tokens:
            tokens += 1  # the stop token, sampled but not yielded
    generation.close()
    decode_seconds = time.perf_counter() - prefilled[0]
    events += parser.feed(decoder.decode(b"", final=True)) + parser.finish()
    output = "".join(pieces)
    call = first_call(events)
    valid = (
        call is not None
        and validate_input(next(t for t in tools if t.name == call[0]), call[1]) is None
    )
    right_tool = call is not None and call[0] == case.tool
    right_arguments = bool(right_tool and call is not None and case.check(call[1]))
    return Outcome(
        output,
        tokens >= max_tokens and call is None,
        valid,
        right_tool,
        right_arguments,
        tokens,
        decode_seconds,
        guide.mask_seconds if guide else 0.0,
    )


def mask_application_seconds(vocab_size: int, repeats: int = 200) -> float:
    """What the engine spends applying one mask to one row of logits (numpy, as in decoding.py)."""
    scores = np.random.default_rng(0).standard_normal(vocab_size).astype(np.float32)
    mask = np.random.default_rng(1).random(vocab_size) < 0.5
    started = time.perf_counter()
    for _ in range(repeats):
        np.where(mask, scores, np.float32(-np.inf))
    return (time.perf_counter() - started) / repeats


def same_text_ratio(
    engine: LocalEngine, tokenizer: Any, fmt: ToolFormat, tools: list[Tool], pairs: int
) -> None:
    """Decode time with and without a guide on the same tokens: free text under
    tool_choice none, which the grammar allows unchanged (checked), alternating runs."""
    prompt = engine.tokenize(
        render_chat(
            engine.info.chat_template,
            [{"role": "user", "content": "Describe a busy desktop with many windows."}],
        )
    )
    times: dict[bool, list[float]] = {False: [], True: []}
    outputs: dict[bool, list[int]] = {}
    for _ in range(pairs):
        for guided in (False, True):
            guide = build_guide(tokenizer, fmt, tools, "none") if guided else None
            marks: list[float] = []
            tokens = list(
                engine.generate(
                    prompt,
                    Sampling(max_tokens=64, temperature=0.0),
                    cancel=threading.Event(),
                    guide=guide,
                    on_prefill=lambda report, marks=marks: marks.append(time.perf_counter()),
                )
            )
            times[guided].append((time.perf_counter() - marks[0]) / max(len(tokens), 1))
            outputs[guided] = tokens
    same = outputs[False] == outputs[True]
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(
        f"same-text check ({pairs} pairs, {len(outputs[True])} tokens, identical: {same}): "
        f"decode time guided / free = {ratio:.3f}"
    )


def _rate(outcomes: list[Outcome], field: str) -> str:
    hits = sum(1 for outcome in outcomes if getattr(outcome, field))
    return f"{hits / len(outcomes):6.1%} ({hits}/{len(outcomes)})"


# The reference agent's native tools (REFERENCE.md) that issue 9's <= 2,000-token target
# counts; its screen actions came from an MCP server, so they are not among them.
REFERENCE_NATIVE = frozenset(
    {
        "execute_sql", "capture_screenshot", "check_permission_status", "request_permission",
        "scan_files", "search_files", "ask_followup", "set_user_preferences",
        "complete_onboarding", "save_knowledge_graph", "query_knowledge_graph",
        "save_observer_card", "speak_response", "extract_browser_profile",
        "query_browser_profile", "edit_browser_profile",
    }
)

# One cheap call per family for the dispatch overhead; families without one (they need a
# screen, a browser or a person) get a token row only.
SAMPLE_CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "sql": ("execute_sql", {"query": "SELECT count(*) FROM kg_nodes"}),
    "graph": ("query_knowledge_graph", {"text": "lyon"}),
    "observer": ("save_observer_card", {"kind": "insight", "title": "benchmark"}),
    "files": ("search_files", {"name": "report"}),
    "preferences": ("set_user_preferences", {"name": "Ada"}),
    "browser_profile": ("query_browser_profile", {"text": "news"}),
}


def schema_tokens(tools: list[NativeTool], diet: bool) -> int:
    """Tokens of the tools' definitions as a request's `tools` list carries them."""
    listed = [Tool(name=t.name, description=t.description, input_schema=t.input_schema) for t in tools]
    if diet:
        listed = slim_tools(listed)
    return count_tokens(json.dumps([t.model_dump(exclude_none=True) for t in listed]))


async def _median_seconds(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def family_rows(repeats: int) -> None:
    """Schema tokens and dispatch overhead per native family, in a throwaway deskloop home."""
    with tempfile.TemporaryDirectory(prefix="deskloop-bench-") as home:
        os.environ["DESKLOOP_HOME"] = home
        os.environ["HOME"] = home  # nothing here reads the real user's files
        settings = load_settings()
        with Store.open() as store:
            context = ToolContext(settings=settings, paths=paths(), store=store)
            print(f"native tool families ({tokenizer_name()}, {repeats} calls each):")
            print(
                f"{'family':16}{'tools':>6}{'tokens':>8}{'diet':>6}{'direct us':>11}"
                f"{'dispatch us':>13}{'overhead us':>13}{'ratio':>7}"
            )
            totals = [0, 0, 0]
            every: list[NativeTool] = []
            for family in NATIVE_FAMILIES:
                tools = family.build(context)
                every.extend(tools)
                full, diet = schema_tokens(tools, False), schema_tokens(tools, True)
                totals = [totals[0] + len(tools), totals[1] + full, totals[2] + diet]
                timing = ""
                sample = SAMPLE_CALLS.get(family.name)
                if sample is not None:
                    name, arguments = sample
                    tool = next(t for t in tools if t.name == name)
                    dispatcher = Dispatcher(
                        ToolRegistry(tools),
                        PermissionPolicy.from_settings(settings.agent),
                        timeouts_from_settings(settings.agent),
                        context=context,
                    )
                    call = ToolCall("bench", name, arguments)
                    await tool.run(arguments, context)  # warm-up
                    direct = await _median_seconds(
                        lambda t=tool, a=arguments: t.run(a, context), repeats
                    )
                    routed = await _median_seconds(
                        lambda d=dispatcher, c=call: d.run_one(c), repeats
                    )
                    timing = (
                        f"{direct * 1e6:11.0f}{routed * 1e6:13.0f}"
                        f"{(routed - direct) * 1e6:13.0f}{routed / direct:7.2f}"
                    )
                print(f"{family.name:16}{len(tools):6}{full:8}{diet:6}{timing}")
            print(f"{'all':16}{totals[0]:6}{totals[1]:8}{totals[2]:6}")
            reference = [t for t in every if t.name in REFERENCE_NATIVE]
            with_routines = [*reference, *(t for t in every if t.name.startswith("routines_"))]
            print(
                f"every family together: {totals[2]} tokens with --tool-diet, {totals[1]} without "
                f"(diet/full = {totals[2] / max(totals[1], 1):.2f})\n"
                f"the reference's native tools ({len(reference)}, without routines): "
                f"{schema_tokens(reference, True)} diet (target <= 2000); with the routines "
                f"tools ({len(with_routines)}): {schema_tokens(with_routines, True)} (target <= 2500)\n"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deskloop bench tools", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--limit", type=int, default=210, help="number of cases (default 210)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="", help="GGUF path; empty: the embedded model")
    parser.add_argument("--max-tokens", type=int, default=96)
    # One thread: on a busy 2-core machine llama.cpp's two threads wait on each other
    # (measured here: 385 ms per token with 2 threads, 21 ms with 1).
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tool-diet", action="store_true", help="slim the tools first")
    parser.add_argument("--show", action="store_true", help="print every case's outputs")
    parser.add_argument("--timing-pairs", type=int, default=5, help="same-text timing runs")
    parser.add_argument("--families-only", action="store_true", help="only the per-family rows")
    parser.add_argument("--calls", type=int, default=200, help="calls per family for overhead")
    args = parser.parse_args(argv)

    asyncio.run(family_rows(args.calls))
    if args.families_only:
        return 0

    engine = create_engine("llamacpp", args.model, threads=args.threads)
    assert isinstance(engine, LocalEngine)
    tokenizer = engine.guidance_tokenizer()
    fmt = choose_tool_format(engine.info.chat_template, engine.info.architecture, "")
    tools = slim_tools(DESKTOP_TOOLS) if args.tool_diet else DESKTOP_TOOLS
    cases = generate_cases(args.limit, args.seed)
    print(
        f"model {engine.info.model_id}, format {fmt.name}, {len(tools)} tools, {len(cases)} cases"
    )
    for label, toolset in (("full", DESKTOP_TOOLS), ("diet", slim_tools(DESKTOP_TOOLS))):
        rendered = fmt.template_input("", [Message(role="user", content="hi")], toolset)
        text = render_chat(engine.info.chat_template, rendered.messages, tools=rendered.tools)
        print(f"prompt tokens with {label} tools: {len(engine.tokenize(text))}")

    # Warm-up: the first generation pays for lazy set-up that is not decoding.
    run_case(engine, tokenizer, fmt, tools, cases[0], guided=True, max_tokens=8)
    free: list[Outcome] = []
    guided: list[Outcome] = []
    started = time.perf_counter()
    for number, case in enumerate(cases, 1):
        free.append(
            run_case(engine, tokenizer, fmt, tools, case, guided=False, max_tokens=args.max_tokens)
        )
        guided.append(
            run_case(engine, tokenizer, fmt, tools, case, guided=True, max_tokens=args.max_tokens)
        )
        if args.show:
            print(
                f"--- {case.instruction} [{case.tool}]\n  free:   {free[-1].output!r}\n  guided: {guided[-1].output!r}"
            )
        if number % 10 == 0:
            print(
                f"  {number}/{len(cases)} cases, {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )

    print(f"\n{'':22}{'unconstrained':>22}{'constrained':>22}")
    for label, field in (
        ("cut by max_tokens", "cut"),
        ("schema-valid", "valid"),
        ("right tool", "right_tool"),
        ("right arguments", "right_arguments"),
    ):
        print(f"{label:22}{_rate(free, field):>22}{_rate(guided, field):>22}")
    for label, outcomes in (("unconstrained", free), ("constrained", guided)):
        finished = [outcome for outcome in outcomes if not outcome.cut]
        if finished:
            print(f"schema-valid of calls within max_tokens, {label}: {_rate(finished, 'valid')}")
    guided_seconds = sum(o.decode_seconds for o in guided)
    guided_tokens = sum(o.tokens for o in guided)
    masking = sum(o.mask_seconds for o in guided) + guided_tokens * mask_application_seconds(
        engine.vocab_size
    )
    print(
        f"\nconstrained decode: {guided_seconds / guided_tokens * 1000:.1f} ms per token, "
        f"of which masking {masking / guided_tokens * 1000:.3f} ms "
        f"(grammar + applying the mask to the logits)"
    )
    print(
        f"decode time with masking / without: {guided_seconds / (guided_seconds - masking):.3f} "
        "(target <= 1.10)"
    )
    same_text_ratio(engine, tokenizer, fmt, tools, args.timing_pairs)
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
