"""The argparse side of `deskloop record` and `deskloop recordings`; cheap to import."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
Lazy = Callable[[str], Handler]
HANDLERS = "deskloop.recordings.commands"


def add_recording_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], lazy: Lazy
) -> None:
    """Attach `record` and `recordings`; `lazy` turns "module:function" into a handler."""
    record = commands.add_parser(
        "record",
        help="record a task you show once, as steps deskloop can replay",
        description="Record what you do in your apps as element-level steps, until Ctrl-C "
        "or `deskloop record --stop`. Each step is printed as it is recognised.",
    )
    record.add_argument("name", nargs="?", metavar="NAME", help="what to call the recording")
    record.add_argument("--app", metavar="APP", help="record only this application")
    record.add_argument(
        "--replace", action="store_true", help="overwrite a recording of the same name"
    )
    record.add_argument(
        "--stop", action="store_true", help="stop the recording running elsewhere (it saves)"
    )
    record.set_defaults(handler=lazy(f"{HANDLERS}:record_command"))

    recordings = commands.add_parser(
        "recordings",
        help="recorded demonstrations: list, show, remove, rename, accept a repair, runs",
        description="Recordings are JSON files in the data folder, one step per entry; "
        "edit them by hand if you like.",
    )
    actions = recordings.add_subparsers(dest="recordings_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every recording, its steps and apps")
    listing.add_argument("--json", action="store_true", help="a JSON array for scripts")
    show = actions.add_parser("show", help="a recording's steps, and a proposed repair if any")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="the file as it is")
    remove = actions.add_parser("remove", help="delete a recording (and its proposed repair)")
    remove.add_argument("name", metavar="NAME")
    rename = actions.add_parser("rename", help="give a recording a new name")
    rename.add_argument("name", metavar="NAME")
    rename.add_argument("new_name", metavar="NEW")
    # A repair proposed by healing during a replay is applied only when a person accepts it.
    accept = actions.add_parser("accept", help="apply the repair a replay proposed")
    accept.add_argument("name", metavar="NAME")
    runs = actions.add_parser(
        "runs", help="a recording's replays, newest first: status, steps done, failed step"
    )
    runs.add_argument("name", metavar="NAME")
    runs.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    recordings.set_defaults(handler=lazy(f"{HANDLERS}:recordings_command"))
