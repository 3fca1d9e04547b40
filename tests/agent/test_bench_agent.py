"""The agent benchmark runs end to end and reports both figures as ratios."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_agent.py"


@pytest.mark.slow
def test_the_agent_benchmark_reports_loop_overhead_and_mcp_round_trip() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--turns", "5", "--mcp-calls", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = finished.stdout.splitlines()
    assert lines[0].startswith("loop overhead per turn (30 tools, 2 calls, store writes)")
    assert "x the 10 ms target" in lines[0]
    assert lines[1].startswith("MCP round trip to mcp-server-time over stdio")
    assert "x the bare call" in lines[1]
