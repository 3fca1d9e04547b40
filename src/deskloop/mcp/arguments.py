"""The argparse flags of `deskloop mcp`; cheap to import for cli.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from deskloop.command_line import CommandParser

Handler = Callable[[argparse.Namespace], int]


def add_mcp_arguments(mcp: argparse.ArgumentParser) -> None:
    """The `deskloop mcp` subcommands under an existing `mcp` parser."""
    actions = mcp.add_subparsers(
        dest="mcp_action", metavar="ACTION", required=True, parser_class=CommandParser
    )
    listing = actions.add_parser("list", help="show the configured MCP servers")
    listing.add_argument("--json", action="store_true", help="the raw entries as JSON")
    add = actions.add_parser(
        "add",
        help="add a server: NAME [OPTIONS] -- COMMAND [ARGS] (stdio) or NAME --url URL (HTTP)",
        description="Add an MCP server to the servers file. Options may come before or "
        "after NAME; everything after `--` is the command that starts a stdio server.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--url", help="streamable-HTTP endpoint of the server")
    add.add_argument("--header", action="append", metavar="KEY=VALUE", help="HTTP header")
    add.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment variable")
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    add.add_argument("--force", action="store_true", help="replace a server of the same name")
    # Everything after `--` is the server's command, its own flags included (as in
    # `claude mcp add`), so options may sit on either side of NAME.
    add.add_argument(
        "server_command",
        nargs="*",
        metavar="-- COMMAND",
        help="the command that starts a stdio server",
    )
    add.command_after_separator = "server_command"
    actions.add_parser("serve", help="serve deskloop's own tools as an MCP server on stdin/stdout")
    for verb in ("remove", "enable", "disable"):
        action = actions.add_parser(verb, help=f"{verb} a server")
        action.add_argument("name", metavar="NAME")


def add_mcp_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    lazy: Callable[[str], Handler],
) -> None:
    """Attach `deskloop mcp ...`; `lazy` turns "module:function" into a handler."""
    mcp = commands.add_parser(
        "mcp", help="MCP servers: list, add, remove, enable, disable, or serve our tools"
    )
    add_mcp_arguments(mcp)
    mcp.set_defaults(handler=lazy("deskloop.mcp.commands:mcp_command"))
