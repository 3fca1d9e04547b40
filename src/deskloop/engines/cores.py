"""How many cores inference may use right now: all of them on an idle machine, fewer on a busy one.

llama.cpp's threads meet at a barrier after every layer, so one thread whose core is
taken by another process stalls all of them. Measured on a 2-core machine with another
process busy (bench_engines.py): 2 threads decoded 7-8 tok/s, 1 thread 40-88. So the
thread count follows what the rest of the machine leaves free, sampled from /proc/stat.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from deskloop.engines.base import EngineError

MIN_SAMPLE_S = 0.25  # shorter intervals are too noisy to act on; the last answer stands
# A longer look back spans an idle spell between requests: what ran in it may have ended.
STALE_WINDOW_S = 1.0
# Reads of the run queue after an idle spell, and the pause between them (others_running).
RUN_QUEUE_READS = 4
RUN_QUEUE_GAP_S = 0.005


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
        self._others = 0.0  # the others' average at the last look
        self._waited = False

    def request_starts(self) -> None:
        """The engine waited for the request it now serves: the next look also asks the
        run queue, however short its look back.

        What ran while it waited has often ended: llama-server's warm-up answer, 0.36 s
        before a 2k prompt, made that prompt's first 512-token chunk run on one core of
        two (3.3-4.4 s, against 2.1 s on both).
        """
        self._waited = True

    def free(self) -> int:
        """Cores not used by other processes since the last look (at least 1)."""
        last = self._last
        if last is None:
            return self.cores
        waited, self._waited = self._waited, False
        if not waited and time.monotonic() - last.wall < MIN_SAMPLE_S:
            return self._free
        now = self._sample()
        if now is None:
            return self._free
        if now.wall - last.wall >= MIN_SAMPLE_S:
            self._last = now
            self._others = others_busy(last, now)
        # else: too short a look back to average (/proc/stat counts in 10 ms ticks); the
        # last average stands, and the run queue says whether what it saw still runs.
        self._free = cores_left(self.cores, self._others, None)
        # Only a look back over an idle spell asks the run queue (up to RUN_QUEUE_READS
        # reads, each scanning this process's threads twice), and only when the average
        # says the others took a core: the run queue can only lower that.
        stale = waited or now.wall - last.wall > STALE_WINDOW_S
        if stale and self._free < self.cores:
            self._free = cores_left(self.cores, self._others, others_running())
        return self._free

    def _sample(self) -> CpuSample | None:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                fields = [int(value) for value in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None  # not Linux: the thread count stays at the physical cores
        user, nice, system, idle, iowait, irq, softirq, steal = fields
        busy = user + nice + system + irq + softirq + steal
        del idle, iowait
        return CpuSample(time.monotonic(), busy / self._ticks_per_s, time.process_time())


@dataclass(frozen=True)
class CpuSample:
    wall: float  # seconds (monotonic)
    machine_busy: float  # CPU seconds the whole machine has spent busy
    own_busy: float  # CPU seconds this process has spent


def others_busy(last: CpuSample, now: CpuSample) -> float:
    """Cores other processes kept busy on average between two samples."""
    elapsed = now.wall - last.wall
    if elapsed <= 0:
        return 0.0
    own = now.own_busy - last.own_busy
    return max(0.0, (now.machine_busy - last.machine_busy) - own) / elapsed


def cores_left(cores: int, others_average: float, others_running: int | None) -> int:
    """Cores to use: all but what the others take, and at least one.

    The average says what ran since the last look. After an idle spell (`others_running`
    is given then) that is whatever ran during it: an agent reading the screen, the app
    redrawing, another model server answering. It has often ended by the time the model
    is asked, and a prefill chunk decided on it ran on one core of two for its whole
    length (a 504-token prompt 50 ms after llama-server answered: 3.7 s, against 1.9 s on
    both cores). The run queue says what runs now; alone it misleads too (it catches a
    passing process), so the smaller of the two is taken. A busy process is always on
    the run queue, so it is never missed.
    """
    others = others_average if others_running is None else min(others_average, others_running)
    return max(1, min(cores, round(cores - others)))


def others_running(reads: int = RUN_QUEUE_READS, gap_s: float = RUN_QUEUE_GAP_S) -> int | None:
    """Threads of other processes on a CPU or ready for one: the fewest seen in up to
    `reads` reads of the run queue `gap_s` apart (None: not Linux).

    A thread that is only passing is gone within milliseconds: another model server's
    threads winding down after its answer, a client sending its request. One read caught
    them often enough that the first 512-token prefill chunk after llama-server answered
    ran on one core of two (3.1 s against 1.9 s); a busy process is there at every read.
    """
    fewest: int | None = None
    for read in range(reads):
        if read:
            time.sleep(gap_s)
        count = _others_running_now()
        if count is None:
            return None
        fewest = count if fewest is None else min(fewest, count)
        if fewest == 0:
            break
    return fewest


def _others_running_now() -> int | None:
    """The machine's run queue (`procs_running`) less this process's own threads in it."""
    own_before = _own_running()
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            running = next(
                (int(line.split()[1]) for line in stat if line.startswith("procs_running")), None
            )
    except (OSError, ValueError):
        return None
    own_after = _own_running()
    if running is None or own_before is None or own_after is None:
        return None
    # This process's threads come and go from the run queue while it is read: any of
    # them seen running either side is taken for one of its own.
    return max(0, running - max(own_before, own_after))


def _own_running() -> int | None:
    """This process's threads running or ready to run (the one asking included)."""
    own = 0
    try:
        for task in os.scandir("/proc/self/task"):
            with open(os.path.join(task.path, "stat"), encoding="ascii", errors="replace") as stat:
                text = stat.read()
            own += text[text.rindex(")") + 2 :].startswith("R")
    except (OSError, ValueError):
        return None
    return own
