"""`deskloop bench NAME`: run `benchmarks/bench_NAME.py` from a source checkout."""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

from deskloop.command_line import print_table
from deskloop.errors import DeskloopError


class BenchmarkNotFound(DeskloopError):
    """No benchmark script by that name, or no source checkout to find it in."""


def benchmarks_dir() -> Path:
    """benchmarks/ of the checkout deskloop was installed from (editable), or of the cwd."""
    candidates = [Path(__file__).resolve().parents[2] / "benchmarks", Path.cwd() / "benchmarks"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise BenchmarkNotFound(
        "benchmarks live in the source checkout (benchmarks/); run this from a checkout "
        "installed with scripts/bootstrap.sh"
    )


def available_benchmarks(folder: Path) -> dict[str, str]:
    """Each benchmark's name and the first line of what its docstring says it measures."""
    found = {}
    for script in sorted(folder.glob("bench_*.py")):
        summary = ""
        with contextlib.suppress(OSError, SyntaxError, ValueError):
            docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
            paragraph = " ".join(docstring.strip().split("\n\n")[0].split())
            first = re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0].rstrip(".")
            summary = re.sub(r"^(`deskloop bench \w+`|\w+ benchmark):\s*", "", first)
        found[script.stem.removeprefix("bench_")] = summary
    return found


def bench_command(args: argparse.Namespace) -> int:
    folder = benchmarks_dir()
    known = available_benchmarks(folder)
    if args.name is None:
        print("benchmarks (run one with `deskloop bench NAME`):")
        print_table([("NAME", "WHAT IT MEASURES"), *known.items()])
        return 0
    script = folder / f"bench_{args.name}.py"
    if not script.is_file():
        close = difflib.get_close_matches(args.name, list(known), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise BenchmarkNotFound(
            f"no benchmark {args.name!r}; {hint}available: {', '.join(known)} "
            "(`deskloop bench` describes each)"
        )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.call([sys.executable, str(script), *args.rest], env=env)
