"""How many cores inference may use right now: all of them on an idle machine, fewer on a busy one.

llama.cpp's threads meet at a barrier after every layer, so one thread whose core is
taken by another process stalls all of them. Measured on a 2-core machine with another
process busy (bench_engines.py): 2 threads decoded 7-8 tok/s, 1 thread 40-88. So the
thread count follows what the rest of the machine leaves free, sampled from /proc/stat.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from deskloop.engines.base import EngineError

MIN_SAMPLE_S = 0.25  # shorter intervals are too noisy to act on; the last answer stands


def allowed_cpus() -> int:
    """The CPUs (hardware threads) this process may run on: its affinity, as `taskset` sets it."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def pinned_threads(requested: int) -> int | None:
    """The thread count a person set (`server.threads`, `--threads`); None for 0, the default
    that follows the free cores.

    More threads than CPUs this process may run on only wait for each other at llama.cpp's
    per-layer barriers, so that is refused with what would fit.
    """
    if requested == 0:
        return None
    cpus = allowed_cpus()
    if requested < 0 or requested > cpus:
        raise EngineError(
            f"threads must be from 1 to {cpus} (the CPUs this process may run on), or 0 for "
            f"the default that follows the free cores; not {requested}. Change --threads or "
            "`deskloop config set server.threads N`"
        )
    return requested


def usable_cores() -> int:
    """The physical cores this process may run on (llama.cpp's own default counts these)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # macOS
        allowed = set(range(os.cpu_count() or 1))
    cores: set[str] = set()
    for cpu in allowed:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


class CoreBudget:
    """Free cores, estimated from the machine's busy time minus this process's own."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores or usable_cores()
        self._ticks_per_s = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        self._last = self._sample()
        self._free = self.cores

    def free(self) -> int:
        """Cores not used by other processes since the last look (at least 1)."""
        last = self._last
        if last is None:
            return self.cores
        if time.monotonic() - last[0] < MIN_SAMPLE_S:
            return self._free
        now = self._sample()
        if now is None:
            return self._free
        wall = now[0] - last[0]
        self._last = now
        others = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / wall
        self._free = max(1, min(self.cores, round(self.cores - others)))
        return self._free

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall seconds, machine busy CPU seconds, this process's CPU seconds)."""
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                fields = [int(value) for value in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None  # not Linux: the thread count stays at the physical cores
        user, nice, system, idle, iowait, irq, softirq, steal = fields
        busy = user + nice + system + irq + softirq + steal
        del idle, iowait
        return time.monotonic(), busy / self._ticks_per_s, time.process_time()
