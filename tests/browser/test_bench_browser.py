"""`deskloop bench browser` runs end to end and prints the ratios the issue asks for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_browser_prints_its_ratios() -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium is not installed (scripts/debian-packages.txt)")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_browser.py"), "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "tokens: cl100k_base (tiktoken)" in out
    for page in ("form", "list", "article"):
        assert f"\n{page} " in out
    assert "browser_snapshot / aria_snapshot tokens, median of three:" in out
    assert "browser_snapshot / screenshot tokens, median of three:" in out
