"""`deskloop bench screen` runs end to end and prints the figures the issue asks for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.desktop
@pytest.mark.slow
def test_bench_screen_prints_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_screen.py"), "--rounds", "4"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "tokens: cl100k_base (tiktoken)" in out
    for key in ("widget-factory", "demo", "mousepad"):
        assert f"\n{key} " in out
    assert "capture speedup over pyatspi, median of three:" in out
    assert "observation / screenshot tokens, median of three:" in out
    assert "click check box + settled diff: median" in out
