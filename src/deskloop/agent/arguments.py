"""The argparse flags of `run`, `chat`, `history` and `tools`; cheap to import for cli.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from deskloop.command_line import base_url, positive_number, task_text

Handler = Callable[[argparse.Namespace], int]
Lazy = Callable[[str], Handler]


def _session_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", type=base_url, help="Anthropic Messages base URL for this session"
    )
    parser.add_argument("--model", help="model name to ask the endpoint for")
    parser.add_argument(
        "--no-mcp",
        action="append",
        metavar="SERVER",
        help="switch an MCP server off for this session ('all' for every one)",
    )


def add_agent_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], lazy: Lazy
) -> None:
    """Attach the agent's subcommands; `lazy` turns "module:function" into a handler."""
    run = commands.add_parser(
        "run",
        help="do one task and exit",
        description="Run one agent session for TASK. Exit 0 when the agent finished "
        "(end_turn), 1 when it stopped for another reason, 130 on Ctrl-C.",
    )
    run.add_argument("task", metavar="TASK", type=task_text, help="what the agent should do")
    _session_flags(run)
    run.add_argument(
        "--max-turns", metavar="N", help="stop after N model turns (overrides agent.max_turns)"
    )
    run.add_argument(
        "--max-seconds",
        metavar="S",
        help="stop after S seconds (overrides agent.max_session_seconds)",
    )
    run.set_defaults(handler=lazy("deskloop.agent.commands:run_command"))

    chat = commands.add_parser(
        "chat",
        help="talk with the agent, one message per line",
        description="A conversation with the agent. Ctrl-C ends the running turn; "
        "Ctrl-C at the prompt, or Ctrl-D, ends the session.",
    )
    chat.add_argument(
        "--resume", type=positive_number, metavar="ID", help="continue a stored session"
    )
    _session_flags(chat)
    chat.set_defaults(handler=lazy("deskloop.agent.commands:chat_command"))

    history = commands.add_parser("history", help="past sessions, a transcript, or a search")
    history.add_argument(
        "session", nargs="?", type=positive_number, metavar="ID", help="print this transcript"
    )
    history.add_argument(
        "--search", metavar="TEXT", help="search messages; words match as prefixes (hel, hel*)"
    )
    history.add_argument("--limit", type=positive_number, default=30, help="at most this many")
    history.set_defaults(handler=lazy("deskloop.agent.history:history_command"))

    tools = commands.add_parser("tools", help="every tool with what its schema costs in tokens")
    tools.add_argument("--json", action="store_true", help="the list as JSON")
    tools.add_argument(
        "--no-mcp", action="append", metavar="SERVER", help="leave this MCP server out"
    )
    tools.set_defaults(handler=lazy("deskloop.agent.commands:tools_command"))
