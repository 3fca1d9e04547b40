"""How many cores inference takes: all of them unless another process is busy, now."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from deskloop.engines import cores
from deskloop.engines.cores import CoreBudget, CpuSample, cores_left, others_busy, others_running

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


@pytest.fixture
def busy_process() -> Iterator[subprocess.Popen[bytes]]:
    """Another process keeping one core busy, as a build or a browser would."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield hog
    finally:
        hog.kill()
        hog.wait()


def sample(wall: float, machine_busy: float, own_busy: float = 0.0) -> CpuSample:
    return CpuSample(wall, machine_busy, own_busy)


def test_a_process_busy_all_along_keeps_its_core() -> None:
    # Two seconds with another process on one core, which is still running at the end.
    last, now = sample(0.0, 100.0), sample(2.0, 102.0)
    assert others_busy(last, now) == pytest.approx(1.0)
    assert cores_left(2, others_busy(last, now), 1) == 1
    assert cores_left(8, others_busy(last, now), 1) == 7


def test_a_burst_that_has_ended_leaves_every_core_after_an_idle_spell() -> None:
    # The other process was busy during the gap between two requests, and is gone now.
    last, now = sample(0.0, 100.0), sample(2.0, 102.0)
    assert cores_left(2, others_busy(last, now), 0) == 2


def test_a_passing_process_on_the_run_queue_does_not_take_a_core() -> None:
    last, now = sample(0.0, 100.0), sample(2.0, 100.1)
    assert cores_left(2, others_busy(last, now), 1) == 2


def test_this_processs_own_work_is_not_counted_as_anothers() -> None:
    last, now = sample(0.0, 100.0, own_busy=5.0), sample(1.0, 102.0, own_busy=7.0)
    assert others_busy(last, now) == pytest.approx(0.0)
    assert cores_left(2, others_busy(last, now), None) == 2


def test_at_least_one_core_whatever_the_others_take() -> None:
    assert cores_left(2, 5.0, 9) == 1
    assert cores_left(2, 5.0, None) == 1


def test_the_run_queue_counts_a_busy_process_and_not_this_one(
    busy_process: subprocess.Popen[bytes],
) -> None:
    time.sleep(0.3)
    running = others_running()
    # The hog is always on the run queue; other work on the machine only adds to it.
    assert running is not None and running >= 1


def test_a_busy_process_takes_a_core_from_the_model_even_after_an_idle_spell(
    busy_process: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    if cores.usable_cores() < 2:
        pytest.skip("needs two cores")
    budget = CoreBudget()
    time.sleep(0.5)
    assert budget.free() <= budget.cores - 1  # a fresh look: the average
    # A look back longer than an idle spell also asks the run queue, where the hog still is.
    monkeypatch.setattr(cores, "STALE_WINDOW_S", 0.2)
    time.sleep(0.5)
    assert budget.free() <= budget.cores - 1


def test_a_thread_only_passing_through_the_run_queue_is_not_a_competitor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = iter([1, 0, 1, 1])  # another server's last thread winding down, then gone
    monkeypatch.setattr(cores, "_others_running_now", lambda: next(reads))
    assert others_running() == 0
    assert next(reads) == 1  # it stopped reading once it saw nobody

    monkeypatch.setattr(cores, "_others_running_now", lambda: 1)  # a busy process: every read
    assert others_running() == 1
    assert cores_left(2, 1.6, others_running()) == 1


def _window(budget: CoreBudget, seconds: float, others: float, own: float) -> CpuSample:
    """Start `budget`'s look back `seconds` ago; the sample its next look will take, in
    which the others kept `others` cores busy on average and this process `own`."""
    now = time.monotonic()
    budget._last = CpuSample(now - seconds, machine_busy=100.0, own_busy=10.0)
    return CpuSample(now, 100.0 + (others + own) * seconds, 10.0 + own * seconds)


def test_a_request_after_another_server_answered_gets_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budget = CoreBudget(cores=2)
    running = iter([0])  # nothing runs now
    monkeypatch.setattr(cores, "_others_running_now", lambda: next(running))

    # Shorter than STALE_WINDOW_S, and busy for this process too (it answered, then
    # tokenized the next prompt), while another server answered a request.
    then = _window(budget, 0.57, others=0.7, own=0.8)
    monkeypatch.setattr(budget, "_sample", lambda: then)
    budget.request_starts()
    assert budget.free() == 2

    # During that request the others compete: the average says so, and the run queue is
    # not read between two pieces of it.
    then = _window(budget, 0.3, others=1.0, own=1.0)
    assert budget.free() == 1

    # Nobody ran while it waited for the next request: the run queue is not read either.
    then = _window(budget, 0.6, others=0.05, own=0.0)
    budget.request_starts()
    assert budget.free() == 2


def test_a_request_right_after_the_last_look_still_sees_a_busy_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budget = CoreBudget(cores=2)
    then = _window(budget, 0.3, others=1.0, own=1.0)
    monkeypatch.setattr(budget, "_sample", lambda: then)
    assert budget.free() == 1
    # 5 ms later (too short to average over): the last average stands, and the busy
    # process is on the run queue.
    then = CpuSample(then.wall + 0.005, then.machine_busy + 0.01, then.own_busy)
    monkeypatch.setattr(cores, "_others_running_now", lambda: 1)
    budget.request_starts()
    assert budget.free() == 1
    # ... and once it has ended, this request gets both cores.
    monkeypatch.setattr(cores, "_others_running_now", lambda: 0)
    budget.request_starts()
    assert budget.free() == 2
