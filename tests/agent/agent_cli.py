"""Runs the agent's subcommands the way cli.py attaches them: `python agent_cli.py run TASK`."""

import argparse
import importlib
import sys
from collections.abc import Callable

from deskloop.agent.arguments import add_agent_commands
from deskloop.errors import DeskloopError


def lazy(target: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        module, _, function = target.partition(":")
        handler: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), function
        )
        return handler(args)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(prog="deskloop")
    add_agent_commands(parser.add_subparsers(dest="command", required=True), lazy)
    args = parser.parse_args()
    try:
        return int(args.handler(args))
    except DeskloopError as exc:
        print(f"deskloop: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
