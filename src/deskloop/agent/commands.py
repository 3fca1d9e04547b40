"""`deskloop run`, `chat`, `history` and `tools`: thin handlers over the agent packages."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from deskloop.agent.console import ask_in_terminal, read_line
from deskloop.agent.session import SessionOptions, open_session, stop_embedded_server
from deskloop.agent.steps import FollowupAsked, RunEnded, Step
from deskloop.agent.terminal import TerminalView
from deskloop.command_line import print_table
from deskloop.mcp.client import McpServers
from deskloop.mcp.config import load_servers
from deskloop.screen import no_desktop_reason
from deskloop.screen.tokens import count_tokens, tokenizer_name
from deskloop.settings import checked_value, load_settings, paths
from deskloop.store import Store
from deskloop.tools import (
    ToolContext,
    ToolRegistry,
    left_out_of_mcp_serve,
    native_tool_set,
)

EXIT_INTERRUPTED = 130


class TurnRunner:
    """Runs one turn at a time; Ctrl-C ends the running turn, or the session when none runs."""

    def __init__(self, view: TerminalView) -> None:
        self.view = view
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

        async def consume() -> RunEnded | None:
            ended = None
            self.last_followup = None
            async for step in steps:
                self.view.show(step)
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
            self.view.finish()
            self.current = None


def _limit(args: argparse.Namespace, name: str, setting: str, flag: str) -> Any:
    """A command-line limit, checked as the setting it overrides is (None: not given)."""
    given = getattr(args, name, None)
    return None if given is None else checked_value(setting, given, flag)


def _options(args: argparse.Namespace, title: str = "") -> SessionOptions:
    return SessionOptions(
        endpoint=getattr(args, "endpoint", None),
        model=getattr(args, "model", None),
        resume=getattr(args, "resume", None),
        title=title,
        mcp_off=getattr(args, "no_mcp", None) or (),
        asker=ask_in_terminal,
        max_turns=_limit(args, "max_turns", "agent.max_turns", "--max-turns"),
        max_seconds=_limit(args, "max_seconds", "agent.max_session_seconds", "--max-seconds"),
    )


def run_command(args: argparse.Namespace) -> int:
    """One session for one task; exit 0 when the model ends on end_turn."""
    try:
        return asyncio.run(_run(args))
    finally:
        stop_embedded_server()


async def _run(args: argparse.Namespace) -> int:
    view = TerminalView()
    runner = TurnRunner(view)
    options = _options(args, title=args.task)
    async with open_session(options) as session:
        view.show_all(session.take_notices())
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.on_interrupt)
        print(f"[session {session.session_id}]", file=sys.stderr)
        ended = await runner.run(session.send(args.task))
        reason = ended.reason if ended is not None else "interrupted"
        session.store.end_session(session.session_id, reason)
        print(f"[{view.summary()}]", file=sys.stderr)
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
        stop_embedded_server()


async def _chat(args: argparse.Namespace) -> int:
    view = TerminalView()
    runner = TurnRunner(view)

    options = _options(args)
    async with open_session(options) as session:
        view.show_all(session.take_notices())
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.on_interrupt)
        print(f"[session {session.session_id}; Ctrl-D or Ctrl-C at the prompt ends it]")
        reason = "user_quit"
        if args.resume is not None and session.messages and session.messages[-1]["role"] == "user":
            await runner.run(session.run())  # the resumed session was waiting on the model
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
            if ended is not None and ended.reason == "endpoint_error":
                print(f"deskloop: {ended.message}", file=sys.stderr)
                reason = "endpoint_error"
                break
        session.store.end_session(session.session_id, reason)
        print(f"\n[{view.summary()}]")
    return 0


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
