"""`deskloop bench NAME`: run `benchmarks/bench_NAME.py` from a source checkout."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

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


def bench_command(args: argparse.Namespace) -> int:
    folder = benchmarks_dir()
    script = folder / f"bench_{args.name}.py"
    if not script.is_file():
        known = sorted(p.stem.removeprefix("bench_") for p in folder.glob("bench_*.py"))
        raise BenchmarkNotFound(f"no benchmark {args.name!r}; available: {', '.join(known)}")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.call([sys.executable, str(script), *args.rest], env=env)
