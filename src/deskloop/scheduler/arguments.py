"""The argparse side of `deskloop routines` and `deskloop scheduler`; cheap to import."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
Lazy = Callable[[str], Handler]
HANDLERS = "deskloop.scheduler.commands"


def _routine_options(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument("name")
    parser.add_argument(
        "--schedule",
        required=adding,
        metavar="SPEC",
        help="cron:<5 fields>, every:<seconds> (from the end of the last run), at:<ISO time>",
    )
    parser.add_argument("--prompt", metavar="TEXT", help="what the agent does")
    parser.add_argument(
        "--recording",
        metavar="REC",
        help="replay this recording at each fire instead of a model session "
        "(instead of --prompt; see `deskloop recordings list`)",
    )
    parser.add_argument(
        "--tools",
        metavar="A,B,...",
        help="the tools it may use unattended (default: read-class tools only)",
    )
    parser.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: this machine's)")
    parser.add_argument("--endpoint", metavar="URL", help="model endpoint for its sessions")
    parser.add_argument("--model", metavar="M", help="model name to ask the endpoint for")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds before a run stops")
    parser.add_argument(
        "--resume", action="store_true", default=None, help="continue one session across runs"
    )
    parser.add_argument("--disabled", action="store_true", help="keep it without firing it")
    if not adding:
        parser.add_argument("--enabled", action="store_true", help="fire it again")
        parser.add_argument(
            "--new-session", action="store_true", help="a fresh session per run (the default)"
        )
        parser.add_argument(
            "--read-tools-only", action="store_true", help="drop its tool list: read tools only"
        )
        parser.add_argument("--rename", metavar="NEW", help="a new name")


def add_scheduler_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], lazy: Lazy
) -> None:
    """Attach `routines` and `scheduler`; `lazy` turns "module:function" into a handler."""
    routines = commands.add_parser(
        "routines",
        help="tasks the agent runs on a schedule, unattended",
        description="Routines run in `deskloop scheduler`, each fire a fresh agent session "
        "that may use only the tools it was given.",
    )
    actions = routines.add_subparsers(dest="routines_action", required=True, metavar="ACTION")
    _routine_options(actions.add_parser("add", help="add a routine"), adding=True)
    _routine_options(actions.add_parser("update", help="change a routine"), adding=False)
    listing = actions.add_parser("list", help="every routine, its schedule and next fire")
    listing.add_argument("--json", action="store_true", help="a JSON array for scripts")
    remove = actions.add_parser("remove", help="delete a routine and its runs")
    remove.add_argument("name")
    runs = actions.add_parser("runs", help="a routine's runs, newest first")
    runs.add_argument("name")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true", help="a JSON array for scripts")
    run = actions.add_parser(
        "run",
        help="run a routine now",
        description="Run NAME now: the running scheduler does it, or with none running, "
        "this command runs it and prints what it did.",
    )
    run.add_argument("name")
    routines.set_defaults(handler=lazy(f"{HANDLERS}:routines_command"))

    scheduler = commands.add_parser(
        "scheduler",
        help="run routines (foreground), or install it as a user service",
        description="With no action: run the scheduler in the foreground until Ctrl-C. "
        "`install` writes a systemd user unit (Linux) or launchd agent (macOS) and starts it.",
    )
    scheduler.add_argument("action", nargs="?", choices=["install", "uninstall"])
    scheduler.add_argument(
        "--no-start", action="store_true", help="(install) write the unit, do not start it"
    )
    scheduler.set_defaults(handler=lazy(f"{HANDLERS}:scheduler_command"))
