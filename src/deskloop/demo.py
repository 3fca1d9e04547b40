"""`deskloop demo`: one real agent session on a sample app.

On Linux the session runs on a private virtual desktop (Xvfb, a session bus, Mousepad),
so it works on a machine with no display and leaves the user's own screen alone;
`--here` uses the current display instead. On macOS it opens TextEdit on the desktop. The model is whatever the agent would use:
with nothing configured, the embedded SmolLM2-135M through `deskloop serve`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from deskloop.errors import DeskloopError

# The sample app: Mousepad on Linux (in the virtual desktop), TextEdit on macOS.
SAMPLE_APP_NAME = "TextEdit" if sys.platform == "darwin" else "mousepad"
# One call does it (type_text, grounded in the one text area), then `finish`: a task the
# embedded 135M model can do; a longer phrase invited it to type text of its own.
DEFAULT_TASK = f"Type hello into {SAMPLE_APP_NAME}."
VIRTUAL_DESKTOP_PROGRAMS = {
    "Xvfb": "xvfb",
    "dbus-daemon": "dbus",
    "mousepad": "mousepad",
    "xdotool": "xdotool",
}


class DemoUnavailable(DeskloopError):
    """Something the demo needs is missing; the message names the package."""


def _check_programs() -> None:
    missing = [pkg for program, pkg in VIRTUAL_DESKTOP_PROGRAMS.items() if not shutil.which(program)]
    if missing:
        raise DemoUnavailable(
            "the demo's virtual desktop needs "
            + ", ".join(missing)
            + f"; install with: sudo apt-get install -y {' '.join(missing)} at-spi2-core"
        )


def _run_task(args: argparse.Namespace, task: str) -> int:
    from deskloop.agent.commands import run_command

    session_args = argparse.Namespace(
        task=task, endpoint=args.endpoint, model=args.model, no_mcp=["all"], resume=None
    )
    return run_command(session_args)


def _show_result() -> str:
    """Print what the sample app shows now, as the agent would see it, and return it."""
    command = ["deskloop", "observe", "--app", SAMPLE_APP_NAME, "--budget", "150"]
    print(f"\n--- {SAMPLE_APP_NAME} now ({' '.join(command)}) ---", file=sys.stderr)
    shown = subprocess.run(
        [sys.executable, "-m", *command],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(shown.stdout, end="", flush=True)
    print(shown.stderr, end="", file=sys.stderr, flush=True)
    return shown.stdout


def _outcome(code: int, args: argparse.Namespace, shown: str) -> int:
    """The agent's exit code, except that the default task is checked on the screen: a
    model that says it is done without a "hello" in the app has not done it."""
    if code != 0 or args.task or "hello" in shown.lower():
        return code
    print(
        f'deskloop demo: the model said it was done, but {SAMPLE_APP_NAME} shows no "hello": '
        "the embedded model is small (see the README); try --endpoint with a bigger one",
        file=sys.stderr,
    )
    return 1


# A demo should end in a minute or two, even when a small model wanders.
DEMO_MAX_TURNS = "8"


def demo_command(args: argparse.Namespace) -> int:
    task = args.task or DEFAULT_TASK
    os.environ.setdefault("DESKLOOP_AGENT_MAX_TURNS", DEMO_MAX_TURNS)
    if args.here or sys.platform == "darwin":
        if sys.platform == "darwin":
            subprocess.run(["open", "-a", SAMPLE_APP_NAME], check=False, timeout=30)
        elif not os.environ.get("DISPLAY"):
            raise DemoUnavailable("--here needs a display (DISPLAY is not set); drop --here")
        code = _run_task(args, task)
        return _outcome(code, args, _show_result())

    from deskloop.screen.virtual_desktop import SAMPLE_APP, VirtualDesktop

    _check_programs()
    print("deskloop demo: starting a virtual desktop with Mousepad ...", file=sys.stderr)
    desktop = VirtualDesktop.start((SAMPLE_APP,))
    try:
        desktop.wait_for_trees((SAMPLE_APP,))
        desktop.focus(SAMPLE_APP)
        print(f"deskloop demo: desktop {desktop.display}; task: {task}", file=sys.stderr)
        with desktop.environment():
            code = _run_task(args, task)
            return _outcome(code, args, _show_result())
    finally:
        desktop.stop()
