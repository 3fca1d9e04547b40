"""The argparse flags of `deskloop mcp`; cheap to import for cli.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]


def add_mcp_arguments(mcp: argparse.ArgumentParser) -> None:
    """The `deskloop mcp` subcommands under an existing `mcp` parser."""
    actions = mcp.add_subparsers(dest="mcp_action", required=True)
    listing = actions.add_parser("list", help="show the configured MCP servers")
    listing.add_argument("--json", action="store_true", help="the raw entries as JSON")
    add = actions.add_parser(
        "add",
        help="add a server: [OPTIONS] NAME -- COMMAND [ARGS] (stdio) or --url URL NAME (HTTP)",
    )
    add.add_argument("name")
    add.add_argument("--url", help="streamable-HTTP endpoint of the server")
    add.add_argument("--header", action="append", metavar="KEY=VALUE", help="HTTP header")
    add.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment variable")
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    add.add_argument("--force", action="store_true", help="replace a server of the same name")
    # Options go before NAME (as in `claude mcp add`): argparse takes NAME and the command
    # as one run of positionals, and `--` keeps the command's own flags away from it.
    add.add_argument("command", nargs="*", help="-- COMMAND [ARGS] that starts a stdio server")
    actions.add_parser("serve", help="serve deskloop's own tools as an MCP server on stdin/stdout")
    for verb in ("remove", "enable", "disable"):
        action = actions.add_parser(verb, help=f"{verb} a server")
        action.add_argument("name")


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
