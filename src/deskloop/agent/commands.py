"""`deskloop run`, `chat`, `history` and `tools`: thin handlers over the agent packages."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anthropic

from deskloop.agent.console import ask_in_terminal, read_line
from deskloop.agent.ending import LIMIT_REASONS, session_state
from deskloop.agent.events import session_log_path
from deskloop.agent.history import first_words, tool_names, transcript_line
from deskloop.agent.loop import INTERRUPTED_TURN, AgentSession
from deskloop.agent.session import (
    SessionOptions,
    embedded_server_needed,
    open_session,
    release_embedded_server,
)
from deskloop.agent.steps import FollowupAsked, RunEnded, SessionStarted, Step, TurnStarted
from deskloop.agent.terminal import TerminalView
from deskloop.agent.text import short
from deskloop.command_line import print_table
from deskloop.mcp.client import McpServers
from deskloop.mcp.config import load_servers
from deskloop.screen import no_desktop_reason
from deskloop.screen.tokens import count_tokens, tokenizer_name
from deskloop.settings import checked_value, load_settings, paths
from deskloop.store import MessageRecord, SessionRecord, Store
from deskloop.tools import (
    ToolContext,
    ToolRegistry,
    left_out_of_mcp_serve,
    native_tool_set,
)

EXIT_INTERRUPTED = 130
# Lines of the earlier conversation `chat --resume` shows before it waits.
RECAP_LINES = 12
NEXT_MESSAGE_AFTER_LIMIT = "your next message goes on with a new set of turns under the same limits"
PromptCounter = Callable[[], Awaitable[int | None]]


class TurnRunner:
    """Runs one turn at a time; Ctrl-C ends the running turn, or the session when none runs."""

    def __init__(self, view: TerminalView, count_prompt: PromptCounter | None = None) -> None:
        self.view = view
        # Asked at each turn's start, only for the status line on a terminal.
        self.count_prompt = count_prompt if view.animated else None
        self.current: asyncio.Future[RunEnded | None] | None = None
        self.session_over = asyncio.Event()
        # The last question the agent asked, so a reply of "2" can mean its second option.
        self.last_followup: FollowupAsked | None = None

    def on_interrupt(self) -> None:
        if self.current is not None and not self.current.done():
            self.current.cancel()
        else:
            self.session_over.set()

    async def run(self, steps: AsyncIterator[Step]) -> RunEnded | None:
        """The run's last step, or None when the user interrupted it."""
        counting: asyncio.Task[None] | None = None

        async def consume() -> RunEnded | None:
            nonlocal counting
            ended = None
            self.last_followup = None
            async for step in steps:
                self.view.show(step)
                if isinstance(step, TurnStarted) and self.count_prompt is not None:
                    counting = asyncio.ensure_future(self._show_prompt_size(self.count_prompt))
                if isinstance(step, FollowupAsked):
                    self.last_followup = step
                if isinstance(step, RunEnded):
                    ended = step
            return ended

        self.current = asyncio.ensure_future(consume())
        try:
            return await self.current
        except asyncio.CancelledError:
            if not self.current.cancelled():
                raise
            return None
        finally:
            if counting is not None:
                counting.cancel()
            self.view.finish()
            self.current = None

    async def _show_prompt_size(self, count: PromptCounter) -> None:
        tokens = await count()
        if tokens is not None:
            self.view.update_status(f"waiting for the model ({tokens} prompt tokens)")


def _limit(args: argparse.Namespace, name: str, setting: str, flag: str) -> Any:
    """A command-line limit, checked as the setting it overrides is (None: not given)."""
    given = getattr(args, name, None)
    return None if given is None else checked_value(setting, given, flag)


def prompt_counter(session: AgentSession) -> PromptCounter:
    """Counts the next request's prompt with the endpoint's count_tokens (None if it has none).

    The agent reaches the model over HTTP and sees no prefill progress, so the prompt's
    size is the honest measure of the wait.
    """

    async def count() -> int | None:
        try:
            counted = await session.client.with_options(max_retries=0).messages.count_tokens(
                model=session.model,
                system=session.system_prompt,
                messages=session.messages,  # type: ignore[arg-type]
                tools=session.dispatcher.registry.definitions(),  # type: ignore[arg-type]
            )
        except anthropic.APIError:
            return None
        return counted.input_tokens

    return count


def _options(args: argparse.Namespace, view: TerminalView, title: str = "") -> SessionOptions:
    return SessionOptions(
        task=title,
        endpoint=getattr(args, "endpoint", None),
        model=getattr(args, "model", None),
        resume=getattr(args, "resume", None),
        title=title,
        mcp_off=getattr(args, "no_mcp", None) or (),
        asker=view.while_asking(ask_in_terminal),
        max_turns=_limit(args, "max_turns", "agent.max_turns", "--max-turns"),
        max_seconds=_limit(args, "max_seconds", "agent.max_session_seconds", "--max-seconds"),
    )


@asynccontextmanager
async def _opened(options: SessionOptions, view: TerminalView) -> AsyncIterator[AgentSession]:
    """The session, with a status line while the model server or MCP servers start."""
    if embedded_server_needed(options):
        view.set_status("starting the model server")
    else:
        view.set_status("starting the session")
    try:
        async with open_session(options) as session:
            view.clear_status()
            yield session
    finally:
        view.finish()


def _header(view: TerminalView, notices: list[Step]) -> str:
    """`session N: MODEL at URL`, from the session's first step; shows the other notices."""
    view.show_all(notices)
    started = next(step for step in notices if isinstance(step, SessionStarted))
    return f"session {started.session_id}: {started.model} at {started.endpoint}"


def forget_if_unreached(session: AgentSession, ended: RunEnded | None) -> bool:
    """Delete a new session whose model was never reached: it is not a history entry."""
    unreached = (
        ended is not None
        and ended.reason == "endpoint_error"
        and session.turns_before == 0
        and not any(m["role"] == "assistant" for m in session.messages)
    )
    if unreached:
        session.store.delete_session(session.session_id)
        session_log_path(session.session_id).unlink(missing_ok=True)
    return unreached


def run_command(args: argparse.Namespace) -> int:
    """One session for one task; exit 0 when the model ends on end_turn."""
    try:
        return asyncio.run(_run(args))
    finally:
        release_embedded_server()


async def _run(args: argparse.Namespace) -> int:
    view = TerminalView()
    options = _options(args, view, title=args.task)
    async with _opened(options, view) as session:
        runner = TurnRunner(view, prompt_counter(session))
        view.error_line(f"[{_header(view, session.take_notices())}]")
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.on_interrupt)
        ended = await runner.run(session.send(args.task))
        if ended is None:
            session.mark_interrupted()
            view.error_line("[interrupted]")
        if not forget_if_unreached(session, ended):  # how it ended is stored as it ends
            view.error_line(f"[{view.summary()}]")
    if ended is None:
        return EXIT_INTERRUPTED
    if ended.reason == "endpoint_error":
        print(f"deskloop: {ended.message}", file=sys.stderr)
    return 0 if ended.reason == "end_turn" else 1


def chosen_option(followup: FollowupAsked | None, reply: str) -> str:
    """A reply that is an option's number stands for that option's text."""
    if followup is not None and reply.strip().isdigit():
        number = int(reply.strip())
        if 1 <= number <= len(followup.options):
            return followup.options[number - 1]
    return reply


def chat_command(args: argparse.Namespace) -> int:
    """A REPL: each line is a message; Ctrl-C ends a turn, a Ctrl-C at the prompt ends the chat."""
    try:
        return asyncio.run(_chat(args))
    finally:
        release_embedded_server()


async def _chat(args: argparse.Namespace) -> int:
    view = TerminalView()
    previous: SessionRecord | None = None
    if args.resume is not None:
        with Store.open() as store:
            previous = store.session(args.resume)  # how it ended, before this process holds it
    options = _options(args, view)
    async with _opened(options, view) as session:
        runner = TurnRunner(view, prompt_counter(session))
        header = _header(view, session.take_notices())
        view.line(f"[{header}; Ctrl-D or Ctrl-C at the prompt ends it]")
        if previous is not None:
            for line in recap(session.store.messages(session.session_id), previous):
                view.line(line)
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.on_interrupt)
        while not runner.session_over.is_set():
            reading = asyncio.ensure_future(read_line("you> "))
            over = asyncio.ensure_future(runner.session_over.wait())
            await asyncio.wait({reading, over}, return_when=asyncio.FIRST_COMPLETED)
            over.cancel()
            if not reading.done():
                reading.cancel()
                break
            text = reading.result()
            if text is None:
                break
            if not text.strip():
                continue
            text = chosen_option(runner.last_followup, text)
            ended = await runner.run(session.send(text))
            if ended is None:
                session.mark_interrupted()
                view.line("[turn interrupted]")
            elif ended.reason == "endpoint_error":
                view.error_line(f"deskloop: {ended.message}")
                if forget_if_unreached(session, ended):
                    return 1
                break
            elif ended.reason in LIMIT_REASONS:
                view.line(f"[{NEXT_MESSAGE_AFTER_LIMIT}]")
        # How the session ended is its last run's end, stored as it ended (agent/ending.py).
        view.line(f"\n[{view.summary()}]")
    return 0


def recap(messages: list[MessageRecord], previous: SessionRecord) -> list[str]:
    """What `chat --resume` shows before it waits: the task, the last turns, how it ended."""
    title = previous.title or first_words(messages)
    lines = [f"resuming: {short(title, 200)}"]
    tools = tool_names(messages)
    said = [
        transcript_line(message.role, block, message.content, tools, one_line=True)
        for message in messages
        for block in message.content
    ]
    if len(said) > RECAP_LINES:
        lines.append(
            f"  … ({len(said) - RECAP_LINES} earlier lines: `deskloop history {previous.id}`)"
        )
    lines += [f"  {line}" for line in said[-RECAP_LINES:]]
    state = session_state(previous)
    cut = messages and (
        messages[-1].role == "user" or INTERRUPTED_TURN in str(messages[-1].content)
    )
    middle = "; its last turn did not finish and is not run again" if cut else ""
    if state.at_limit:
        middle += f"; {NEXT_MESSAGE_AFTER_LIMIT}"
    lines.append(f"[{state.words}{middle}. Nothing runs until you type.]")
    return lines


def tools_command(args: argparse.Namespace) -> int:
    """Every tool a session would offer, with what its definition costs in prompt tokens."""
    return asyncio.run(_tools(args))


async def _tools(args: argparse.Namespace) -> int:
    settings = load_settings()
    reports: list[str] = []
    servers = McpServers(
        load_servers(),
        on_stderr=lambda server, line: None,
        on_report=lambda server, message: reports.append(f"MCP server {server!r} {message}"),
        switched_off=getattr(args, "no_mcp", None) or (),
    )
    with Store.open() as store:
        context = ToolContext(settings=settings, paths=paths(), store=store)
        async with servers:
            registry = ToolRegistry(native_tool_set(context))
            refused = registry.add_each(await servers.start())
        await context.aclose()
    reports.extend(f"MCP tool left out: {problem}" for problem in refused)
    # Served by a session but not by `deskloop mcp serve`: they need a person to answer.
    not_served = {
        tool.name for family in left_out_of_mcp_serve(settings) for tool in family.build(context)
    }
    # Without a desktop (over SSH, on a server) sessions leave the screen tools out.
    no_desktop = no_desktop_reason()
    left_out = {t.name for t in registry if t.source == "screen"} if no_desktop else set()
    costs = registry.schema_costs(count_tokens)
    if args.json:
        rows = [
            {
                **cost.__dict__,
                "in_mcp_serve": cost.name not in not_served,
                "in_sessions_here": cost.name not in left_out,
            }
            for cost in costs
        ]
        print(json.dumps(rows, indent=2))
    else:
        table: list[tuple[str, ...]] = [("TOKENS", "RISK", "SOURCE", "TOOL")]
        for cost in costs:
            tool = registry.get(cost.name)
            risk = tool.risk if tool is not None else ""
            mark = "  *" if cost.name in not_served else "  -" if cost.name in left_out else ""
            table.append((str(cost.tokens), risk, cost.source, cost.name + mark))
        total = sum(cost.tokens for cost in costs)
        table.append(
            (str(total), "", "", f"in all: {len(costs)} tools, counted with {tokenizer_name()}")
        )
        print_table(table, numbers=(0,))
        if not_served:
            print("*  not offered by `deskloop mcp serve`: it needs a person to answer")
        if left_out:
            print(f"-  left out of sessions here: no desktop ({no_desktop})")
    for report in reports:
        print(f"deskloop: {report}", file=sys.stderr)
    return 0
