"""Random `deskloop` command lines never end in a traceback: a usage error, a message, or work.

Bounded: 200 argument lists in-process through `main(argv)`, and a few as real processes.
Commands that would start a model, a desktop or a benchmark are only parsed, not run.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys

import pytest

from deskloop.cli import build_parser, main

RUNS = 200
SEED = int(os.environ.get("DESKLOOP_FUZZ_SEED", "13"))
VALUES = [
    "", " ", "0", "1", "-1", "2.5", "99999", "x", "histroy", "a__b", "-", "--", "é",
    "http://127.0.0.1:1", "notaurl", "agent.max_turns", "agent.endpoint", "server.port",
    "agent.nothing", "KEY=VALUE", "NOEQUALS", "true", "/nowhere/bin", "hel*", '"(',
]
# Parsed and run: these only read or write files under DESKLOOP_HOME.
RUN_THESE = {"config", "history", "mcp", "bench"}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for action in parser._actions for flag in action.option_strings]


def random_argv(rng: random.Random) -> list[str]:
    parser = build_parser()
    argv: list[str] = []
    while True:
        commands = subcommands(parser)
        if not commands or rng.random() < 0.05:
            break
        if not argv and rng.random() < 0.6:
            name = rng.choice(sorted(RUN_THESE))  # most lines reach a handler that runs
        else:
            name = rng.choice([*commands, rng.choice(VALUES)])
        argv.append(name)
        if name not in commands:
            break
        parser = commands[name]
    flags = [flag for flag in options(parser) if flag not in ("-h", "--help")] or ["--help"]
    for _ in range(rng.randint(0, 4)):
        argv.append(rng.choice(flags) if rng.random() < 0.4 else rng.choice(VALUES))
    return argv


def should_run(args: argparse.Namespace) -> bool:
    if args.command not in RUN_THESE:
        return False
    if args.command == "mcp" and args.mcp_action == "serve":
        return False  # it would serve on stdin until it closes
    return not (args.command == "bench" and args.name is not None)  # a real benchmark runs


def test_random_command_lines_never_end_in_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(SEED)
    ran = 0
    for _ in range(RUNS):
        argv = random_argv(rng)
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as stopped:
            assert stopped.code in (0, 2), argv
        else:
            if should_run(args):
                ran += 1
                assert main(argv) in (0, 1), argv
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "unexpected error" not in err, (argv, err)
        assert "Traceback" not in out, argv
    assert ran >= 20  # the fuzz reached the handlers, not only the parser


@pytest.mark.slow
def test_random_command_lines_in_real_processes() -> None:
    rng = random.Random(SEED + 1)
    checked = 0
    while checked < 6:
        argv = random_argv(rng)
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:
            pass
        else:
            if not should_run(args):
                continue
        done = subprocess.run(
            [sys.executable, "-m", "deskloop", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode in (0, 1, 2), (argv, done.stderr)
        assert "Traceback" not in done.stderr, (argv, done.stderr)
        checked += 1
