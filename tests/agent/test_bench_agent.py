"""The agent benchmark runs end to end and reports both figures as ratios."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_agent.py"


@pytest.mark.slow
def test_the_agent_benchmark_reports_loop_overhead_and_mcp_round_trip() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--turns", "5", "--mcp-calls", "3", "--session-turns", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    parts, whole, longer, mcp = finished.stdout.splitlines()
    assert parts.startswith("loop overhead per turn (30 tools, 2 calls, store writes)")
    assert "x the 10 ms target" in parts
    assert whole.startswith("whole AgentSession turn through the SDK, model time zero, 3-turn")
    assert longer.startswith("whole AgentSession turn through the SDK, model time zero, 12-turn")
    assert mcp.startswith("MCP round trip to mcp-server-time over stdio")
    assert "x the bare call" in mcp
