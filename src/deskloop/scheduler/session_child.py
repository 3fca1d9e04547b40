"""One unattended agent session for one run row: what the scheduler starts per fire.

`python -m deskloop.scheduler.session_child RUN_ID --endpoint URL`, or `--standby`: start,
import everything (about 2 s of CPU: the SDKs), then wait for those arguments as a JSON
line on stdin, so a fire does not wait for imports. It records its session id on the run
row as soon as the session exists, never waits for a person, and prints one JSON line at
the end: the loop's end reason and message. It exits when its stdin closes, which
happens when the scheduler that started it dies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Sequence

from deskloop.agent.session import SessionOptions, open_session
from deskloop.agent.steps import RunEnded, TextDelta, ToolCallStarted
from deskloop.errors import DeskloopError
from deskloop.scheduler.observer import OBSERVER_TOOLS, observer_prompt
from deskloop.store import RunRecord, Store


def _exit_when_parent_goes() -> None:
    """Block on stdin; EOF means the scheduler is gone, so this session goes too."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os._exit(1)


def _options(
    store: Store, run: RunRecord, endpoint: str, embedded: bool
) -> tuple[SessionOptions, str]:
    """The session's options and its first message, for a routine run or an observer run."""
    if run.kind == "observer":
        options = SessionOptions(
            endpoint=endpoint,
            title=f"observer of session {run.watched_session_id}",
            mcp_off=("all",),
            unattended=True,
            allowed_tools=OBSERVER_TOOLS,
            screen=False,
            embedded_endpoint=embedded,
        )
        return options, observer_prompt(store, run)
    assert run.routine_id is not None
    routine = store.routine_by_id(run.routine_id)
    if routine is None:
        raise DeskloopError(f"routine {run.routine_id} was removed before its run started")
    resume = routine.last_session_id if routine.session_mode == "resume" else None
    options = SessionOptions(
        endpoint=endpoint,
        model=routine.model or None,
        resume=resume,
        title=f"routine {routine.name}",
        unattended=True,
        allowed_tools=None if routine.tools is None else frozenset(routine.tools),
        embedded_endpoint=embedded,
    )
    return options, routine.prompt


async def run_session(run_id: int, endpoint: str, embedded: bool) -> RunEnded:
    with Store.open() as store:
        run = store.run(run_id)
        options, prompt = _options(store, run, endpoint, embedded)
    ended = RunEnded("end_turn", "")
    async with open_session(options) as session:
        session.store.set_run_session(run_id, session.session_id)
        first_output = True
        async for step in session.send(prompt):
            if first_output and isinstance(step, TextDelta | ToolCallStarted):
                # The fire-to-first-output latency the scheduler reports (bench routines).
                print(json.dumps({"first_output_at": time.time()}), flush=True)
                first_output = False
            if isinstance(step, RunEnded):
                ended = step
    return ended


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words == ["--standby"]:
        # Imports are done; wait for the scheduler's fire: one JSON list of the arguments.
        line = sys.stdin.buffer.readline()
        if not line.strip():
            return 0  # the scheduler stopped before it needed this one
        words = [str(word) for word in json.loads(line)]
    parser = argparse.ArgumentParser(prog="deskloop.scheduler.session_child")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument(
        "--embedded", action="store_true", help="the endpoint is the embedded model"
    )
    args = parser.parse_args(words)
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    try:
        ended = asyncio.run(run_session(args.run_id, args.endpoint, args.embedded))
    except DeskloopError as exc:
        print(json.dumps({"reason": "error", "message": str(exc)}), flush=True)
        return 1
    print(json.dumps({"reason": ended.reason, "message": ended.message}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
