"""The argparse side of `deskloop replay`; cheap to import (`recordings accept` is in
recordings/arguments.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
Lazy = Callable[[str], Handler]
HANDLERS = "deskloop.scheduler.replay_commands"


def seconds(text: str) -> float:
    """A number of seconds above 0."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be above 0 seconds, not {text}")
    return number


def add_replay_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], lazy: Lazy
) -> None:
    replay = commands.add_parser(
        "replay",
        help="do a recorded demonstration again, without a model",
        description="Replay the recording NAME step by step on the screen. A step that "
        "cannot be found goes to the model to heal (unless --no-heal); a repair is only "
        "proposed, for `deskloop recordings accept NAME`.",
    )
    replay.add_argument("name", metavar="NAME")
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="find every step's element on the screen now and say which would fail; do nothing",
    )
    replay.add_argument(
        "--step-timeout",
        type=seconds,
        default=5.0,
        metavar="S",
        help="seconds to wait for each step's element (default 5)",
    )
    replay.add_argument("--no-heal", action="store_true", help="stop at a failed step")
    replay.add_argument("--endpoint", metavar="URL", help="model endpoint for healing")
    replay.add_argument("--json", action="store_true", help="the report as JSON")
    replay.set_defaults(handler=lazy(f"{HANDLERS}:replay_command"))
