"""The `deskloop` command: parses arguments and hands off to the packages.

Each subcommand names a `module:function` that is imported only when it runs, so
`deskloop doctor` does not load a model library and `deskloop serve` does not touch D-Bus.
The function takes the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import cast

from deskloop import __version__
from deskloop.agent.arguments import add_agent_commands
from deskloop.command_line import (
    CommandParser,
    base_url,
    port_number,
    positive_number,
    task_text,
    thread_count,
)
from deskloop.errors import DeskloopError
from deskloop.mcp.arguments import add_mcp_command
from deskloop.recordings.arguments import add_recording_commands
from deskloop.scheduler.arguments import add_scheduler_commands
from deskloop.scheduler.replay_arguments import add_replay_command

Handler = Callable[[argparse.Namespace], int]
# What a shell reports for a process ended by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def _lazy(target: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        module_name, _, function_name = target.partition(":")
        handler: Handler = getattr(importlib.import_module(module_name), function_name)
        return handler(args)

    return run


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve a model over the Anthropic Messages API",
        description="Serve a local model (or an upstream) as an Anthropic Messages API. "
        "With no arguments: the embedded SmolLM2-135M-Instruct on 127.0.0.1:8888.",
    )
    serve.add_argument("--engine", help="llamacpp, mlx, openai, anthropic (default: platform)")
    serve.add_argument("--model", help="a GGUF file, an MLX folder, or an upstream model name")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=port_number, help="port (default 8888; 0 picks a free one)")
    serve.add_argument("--api-key", help="key clients must send; required off loopback")
    serve.add_argument(
        "--upstream", type=base_url, help="base URL of the upstream for openai/anthropic"
    )
    serve.add_argument(
        "--context-window", type=positive_number, help="tokens of context to allocate"
    )
    serve.add_argument(
        "--threads",
        type=thread_count,
        help="llama.cpp threads, for cores pinned to the model (default 0: follow the free cores)",
    )
    serve.add_argument(
        "--alias",
        action="append",
        dest="aliases",
        metavar="NAME",
        help="another model name that maps to the served model (repeatable)",
    )
    serve.add_argument("--tool-format", help="override the tool-call format family")
    serve.add_argument(
        "--tool-diet",
        action="store_true",
        default=None,
        help="shorten tool descriptions to their first sentence to save prompt tokens",
    )
    serve.add_argument(
        "--prompt-drafts",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="guess values the answer copies from the conversation and verify them in one "
        "batch (server.prompt_drafts; default off: no gain measured on a small CPU)",
    )
    serve.add_argument(
        "--script",
        help="(scripted engine only) JSON file of outputs to replay; for tests",
    )
    serve.set_defaults(handler=_lazy("deskloop.server.run:serve_command"))


def _add_config(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser("config", help="read or change settings")
    actions = config.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    get = actions.add_parser("get", help="print a setting (or all of them)")
    get.add_argument("key", nargs="?", metavar="KEY")
    put = actions.add_parser("set", help="change a setting in config.toml")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    unset = actions.add_parser(
        "unset", help="remove a setting from config.toml (its default applies)"
    )
    unset.add_argument("key", metavar="KEY")
    actions.add_parser("path", help="print where settings and data live")
    config.set_defaults(handler=_lazy("deskloop.config_commands:config_command"))


def _add_screen(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    observe = commands.add_parser("observe", help="print what the agent sees of a window")
    target = observe.add_mutually_exclusive_group()
    target.add_argument("--app", help="application name (as the accessibility tree names it)")
    target.add_argument("--pid", type=int, help="process id of the application")
    target.add_argument("--focused", action="store_true", help="the focused window (default)")
    observe.add_argument("--json", action="store_true", help="the structured snapshot as JSON")
    observe.add_argument("--budget", type=positive_number, help="token budget for the observation")
    observe.set_defaults(handler=_lazy("deskloop.screen.commands:observe_command"))

    doctor = commands.add_parser(
        "doctor", help="check that deskloop can see and act on this desktop"
    )
    doctor.add_argument("--json", action="store_true", help="the checks as JSON")
    doctor.add_argument(
        "--endpoint",
        type=base_url,
        help="also ask the model server at URL (a deskloop server or an OpenAI-compatible "
        "upstream) what it can enforce for tool calls",
    )
    doctor.set_defaults(handler=_lazy("deskloop.screen.commands:doctor_command"))


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="watch the agent do a small task in a sample app",
        description="Run one agent session on Mousepad. On Linux it runs on a private "
        "virtual desktop unless --here is given.",
    )
    demo.add_argument(
        "task", nargs="?", type=task_text, help="what to ask (default: type a line in Mousepad)"
    )
    demo.add_argument("--here", action="store_true", help="use the current display")
    demo.add_argument(
        "--endpoint", type=base_url, help="Anthropic Messages base URL (default: embedded)"
    )
    demo.add_argument("--model", help="model name to ask the endpoint for")
    demo.set_defaults(handler=_lazy("deskloop.demo:demo_command"))


def _add_ui(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ui = commands.add_parser(
        "ui",
        help="open the web UI: chat, settings, routines, MCP servers, doctor, history",
        description="Serve the local web UI (default http://127.0.0.1:8890) and open it in "
        "your browser.",
    )
    ui.add_argument("--host", help="address to bind (default 127.0.0.1; others need --token)")
    ui.add_argument("--port", type=int, help="port (default 8890; 0 picks a free one)")
    ui.add_argument("--token", help="secret the browser must present; required off loopback")
    ui.add_argument("--no-open", action="store_true", help="do not open a browser")
    ui.set_defaults(handler=_lazy("deskloop.ui.command:ui_command"))


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        help="run a benchmark from benchmarks/ (with no name: list them)",
        description="Run benchmarks/bench_NAME.py; with no NAME, list the benchmarks.",
    )
    bench.add_argument("name", nargs="?", metavar="NAME", help="which benchmark")
    bench.add_argument(
        "rest", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the benchmark"
    )
    bench.set_defaults(handler=_lazy("deskloop.bench:bench_command"))


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="deskloop",
        description="A local desktop agent and an Anthropic Messages server for local models.",
    )
    parser.add_argument("--version", action="version", version=f"deskloop {__version__}")
    # Subcommand parsers are CommandParsers too (argparse uses the parent's class); typed
    # as plain parsers so each package's `add_*` function needs nothing of ours.
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND"),
    )
    add_agent_commands(commands, _lazy)
    _add_demo(commands)
    _add_serve(commands)
    _add_screen(commands)
    add_mcp_command(commands, _lazy)
    add_scheduler_commands(commands, _lazy)
    add_recording_commands(commands, _lazy)
    add_replay_command(commands, _lazy)
    _add_config(commands)
    _add_ui(commands)
    _add_bench(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe is found here, not in the interpreter's exit
    except BrokenPipeError:
        # The reader went away (`deskloop history | head`): stop quietly, as Unix tools do.
        # Point stdout at /dev/null so the interpreter's last flush cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except DeskloopError as exc:
        print(f"deskloop: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except Exception as exc:  # a bug: the person gets one line and where the details are
        report = save_crash_report(exc)
        print(
            f"deskloop: unexpected error ({type(exc).__name__}: {exc}). This is a bug in "
            f"deskloop; the details are in {report}",
            file=sys.stderr,
        )
        return 1


def save_crash_report(exc: BaseException) -> str:
    """Write the traceback to a file in the logs folder; returns where (or why not)."""
    from deskloop.settings import paths

    folder = paths().logs_dir
    report = folder / time.strftime("crash-%Y%m%d-%H%M%S.txt")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        text = "".join(traceback.format_exception(exc))
        report.write_text(f"deskloop {__version__} {sys.argv}\n{text}", encoding="utf-8")
    except OSError as problem:
        return f"nowhere: writing {report} failed ({problem.strerror})"
    return str(report)


if __name__ == "__main__":
    sys.exit(main())
