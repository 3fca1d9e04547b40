"""`deskloop bench routines`: a fire's wait for the model, resident server against a model load.

- Fire to first output: from the moment a run row is claimed to the first model output
  reaching the run's session, on the embedded model (real llama.cpp).
  Resident: `deskloop scheduler` with the resident embedded server up between fires (its
  first fire, which starts the server, is left out). Cold: `deskloop routines run` with
  no scheduler up and the resident server stopped before each, so the model loads. Only the
  routines tool family is on, so prefill stays small on both sides.
  Target (issue 10): resident <= 2 s and >= 5x faster than cold.
- Idle CPU: a scheduler with routines that are not due, over a minute. Target: about 0.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from deskloop.settings import ToolsSettings

LATENCY = re.compile(r"run (\d+) (\w+) \(first output ([0-9.]+) s after the fire\)")
TARGET_RESIDENT_S = 2.0
TARGET_RATIO = 5.0


def deskloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "deskloop", *args]


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("ANTHROPIC_BASE_URL", "DESKLOOP_AGENT_ENDPOINT"):
        env.pop(name, None)
    env.update(
        DESKLOOP_HOME=str(home),
        DESKLOOP_AGENT_OBSERVE_FIRST="false",  # no desktop here: time the model, not the screen
        DESKLOOP_AGENT_TOOL_CALLS="free",  # a text answer streams, so its first token shows
        DESKLOOP_AGENT_MAX_TURNS="1",
        DESKLOOP_AGENT_MAX_TOKENS_PER_TURN="16",
        DESKLOOP_SCHEDULER_OBSERVER_EVERY="0",
    )
    # Only the routines family: the prompt's size is the routine's business, and with every
    # family (about 8k tokens) prefill on the 135M model would hide what the fire costs.
    for family in fields(ToolsSettings):
        env[f"DESKLOOP_TOOLS_{family.name.upper()}"] = str(family.name == "routines").lower()
    return env


def add_routine(env: dict[str, str], schedule: str) -> None:
    subprocess.run(
        deskloop("routines", "add", "bench", "--schedule", schedule, "--prompt", "Say hello."),
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def cold_fires(env: dict[str, str], count: int) -> list[float]:
    """`deskloop routines run` with no scheduler: each run starts the server, loading the model."""
    found = []
    for _ in range(count):
        stop_resident(env)  # else the run reuses the last run's resident server
        done = subprocess.run(
            deskloop("routines", "run", "bench"), env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        match = LATENCY.search(done.stderr)
        if match is None:
            raise SystemExit(f"cold run gave no latency:\n{done.stdout}\n{done.stderr}")
        found.append(float(match.group(3)))
    return found


def stop_resident(env: dict[str, str]) -> None:
    code = "from deskloop.agent.resident_server import stop_resident_server as s; s()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def resident_fires(env: dict[str, str], count: int, log: Path) -> list[float]:
    """A scheduler firing the routine again and again; the first fire (server start) is left
    out."""
    found: list[float] = []
    with log.open("w") as sink:
        scheduler = subprocess.Popen(
            deskloop("scheduler"), env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    try:
        deadline = time.monotonic() + 600
        while len(found) < count + 1 and time.monotonic() < deadline:
            time.sleep(0.5)
            found = [float(m.group(3)) for m in LATENCY.finditer(log.read_text())]
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    if len(found) < count + 1:
        raise SystemExit(f"the scheduler fired {len(found)} times:\n{log.read_text()}")
    return found[1 : count + 1]


def idle_cpu(env: dict[str, str], seconds: float) -> tuple[float, float, float]:
    """CPU seconds a scheduler with nothing due (and its standby child) uses over `seconds`,
    as % of one core, and the standby child's resident memory in MB."""
    scheduler = subprocess.Popen(
        deskloop("scheduler"), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert scheduler.stdout is not None
        scheduler.stdout.readline()
        time.sleep(15.0)  # past start-up, the standby child's imports included
        before = _cpu_seconds(scheduler.pid)
        time.sleep(seconds)
        used = _cpu_seconds(scheduler.pid) - before
        standby_mb = sum(_rss_mb(child) for child in _children(scheduler.pid))
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    return used, 100.0 * used / seconds, standby_mb


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def _cpu_seconds(pid: int) -> float:
    """The CPU time of `pid` and its children now alive (proc(5): utime + stime)."""
    ticks = 0
    for one in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fires", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        env = environment(home)
        add_routine(env, "cron:0 0 1 1 *")
        cold = cold_fires(env, args.fires)
        # Fires spaced as real ones are, so the standby child is ready when the next comes.
        subprocess.run(deskloop("routines", "update", "bench", "--schedule", "every:30"),
                       env=env, check=True, capture_output=True)  # fmt: skip
        resident = resident_fires(env, args.fires, home / "scheduler.log")
        subprocess.run(deskloop("routines", "update", "bench", "--schedule", "every:86400"),
                       env=env, check=True, capture_output=True)  # fmt: skip
        stop_resident(env)
        linux = sys.platform == "linux"
        cpu, percent, standby_mb = idle_cpu(env, args.idle_seconds) if linux else (0, 0, 0)
    cold_s, resident_s = statistics.median(cold), statistics.median(resident)
    ratio = cold_s / resident_s
    print("fire to first model output, embedded model (llama.cpp), median of", args.fires)
    print(f"  cold (server started per fire, model load): {cold_s:6.2f} s  {cold}")
    print(f"  resident (scheduler's server kept up):      {resident_s:6.2f} s  {resident}")
    print(f"  ratio cold/resident: {ratio:.1f}x (target >= {TARGET_RATIO:g}x); resident "
          f"{'meets' if resident_s <= TARGET_RESIDENT_S else 'misses'} <= {TARGET_RESIDENT_S:g} s")  # fmt: skip
    if sys.platform == "linux":
        print(
            f"idle scheduler and standby child: {cpu:.3f} CPU s over {args.idle_seconds:g} s "
            f"= {percent:.3f}% of a core; the standby child holds {standby_mb:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
