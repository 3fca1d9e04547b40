"""A real `deskloop scheduler` process firing routines against a real `deskloop serve`.

The model behind the server is the scripted engine (a test fake, asked for by name): it
replays fixed outputs, so what each run says and calls is known.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deskloop.routines.routines import SCHEDULER_STOPPED, create_routine, run_to_json
from deskloop.store import RunRecord, Store
from tests.agent.scripted_server import scripted_server, tool_call

pytestmark = pytest.mark.slow

WAIT_S = 40.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings every child inherits: no screen observation first, a short poll, no observer."""
    monkeypatch.setenv("DESKLOOP_AGENT_OBSERVE_FIRST", "false")
    monkeypatch.setenv("DESKLOOP_SCHEDULER_POLL_S", "0.5")
    monkeypatch.setenv("DESKLOOP_SCHEDULER_OBSERVER_EVERY", "0")


def runs_of(name: str) -> list[RunRecord]:
    with Store.open() as store:
        routine = store.routine(name)
        assert routine is not None
        return list(reversed(store.runs(routine.id, 50)))


class SchedulerProcess:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "deskloop", "scheduler"],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        assert "scheduler running" in ready, self.log.read_text()

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)
        self.process.wait(timeout=20)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)


@pytest.fixture
def scheduler(tmp_path: Path, agent_env: None) -> Iterator[SchedulerProcess]:
    process = SchedulerProcess(tmp_path / "scheduler.log")
    try:
        yield process
    finally:
        process.stop()


def add(name: str, endpoint: str, **fields: Any) -> None:
    with Store.open() as store:
        create_routine(store, name, endpoint=endpoint, **fields)


def session_children(scheduler_pid: int) -> list[int]:
    """Pids of the live session processes the scheduler started (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, parent = stat[0], int(stat[1])
        ours = b"deskloop.scheduler.session_child" in words and parent == scheduler_pid
        if ours and state != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_every_routine_fires_twice_and_runs_never_overlap(
    tmp_path: Path, scheduler: SchedulerProcess
) -> None:
    # Each answer streams for about 1.5 s, longer than the 1 s interval.
    answer = "All clear: no new invoices in the inbox today."
    with scripted_server(tmp_path, [answer], repeat_last=True, token_delay_s=0.03) as url:
        add("inbox", url, prompt="check the inbox", schedule="every:1")
        scheduler.start()
        wait_for(
            lambda: len([r for r in runs_of("inbox") if r.status != "running"]) >= 2, "two runs"
        )
        scheduler.stop()
    runs = runs_of("inbox")
    assert all(r.status in ("ok", "error") for r in runs), [run_to_json(r) for r in runs]
    first, second = runs[0], runs[1]
    assert first.status == second.status == "ok"
    assert answer in first.output and first.output_tokens > 0 and first.input_tokens > 0
    assert first.session_id != second.session_id
    assert first.finished_at is not None and first.duration_s is not None
    assert first.duration_s > 1.0  # it outlasted its interval...
    assert second.started_at >= first.finished_at + 1.0  # ...and the next waited 1 s after it
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None and later.started_at >= earlier.finished_at


def test_sigkill_mid_run_then_restart_marks_it_error_and_never_repeats_a_slot(
    tmp_path: Path, scheduler: SchedulerProcess
) -> None:
    slow = {"prefill_delay_s": 30.0}
    with scripted_server(tmp_path, ["done"], repeat_last=True, **slow) as url:
        add("slow", url, prompt="take your time", schedule="every:1")
        scheduler.start()
        running = wait_for(
            lambda: [r for r in runs_of("slow") if r.status == "running" and r.session_id],
            "a run with its session",
        )[0]
        assert scheduler.process is not None
        pid = scheduler.process.pid
        children = session_children(pid)  # the run's session, and the standby for the next fire
        assert children
        scheduler.signal(signal.SIGKILL)
        wait_for(lambda: not any(alive(c) for c in children), "its sessions to die with it", 10)
        with Store.open() as store:
            assert store.run(running.id).status == "running"  # nobody has looked yet
    with scripted_server(tmp_path, ["finished quickly"], repeat_last=True) as url:
        with Store.open() as store:
            routine = store.routine("slow")
            assert routine is not None
            store.replace_routine(routine.id, _with_endpoint(routine, url), routine.next_fire_at)
        scheduler.start()
        wait_for(lambda: any(r.status == "ok" for r in runs_of("slow")), "a run after restart")
        scheduler.stop()
    runs = runs_of("slow")
    stale = next(r for r in runs if r.id == running.id)
    assert stale.status == "error" and stale.output == SCHEDULER_STOPPED
    assert not any(r.status == "running" for r in runs)
    slots = [r.slot for r in runs if r.slot is not None]
    assert len(slots) == len(set(slots)) >= 2
    with Store.open() as store:
        assert running.session_id is not None
        assert store.session(running.session_id).end_reason == "scheduler_stopped"


def _with_endpoint(routine: Any, url: str) -> Any:
    from deskloop.store import RoutineFields

    return RoutineFields(
        name=routine.name, prompt=routine.prompt, schedule=routine.schedule,
        timezone=routine.timezone, endpoint=url, timeout_s=routine.timeout_s,
    )  # fmt: skip


def test_unattended_call_outside_the_list_is_refused_and_recorded(
    tmp_path: Path, scheduler: SchedulerProcess
) -> None:
    outputs = [
        tool_call("routines_remove", {"name": "clicker"}),
        "I was not allowed to remove it, so I only looked.",
        "",  # the second routine's session: says and does nothing
    ]
    with scripted_server(tmp_path, outputs) as url:
        # No tool list: read-class tools only, and removing a routine is destructive.
        add("clicker", url, prompt="click the button", schedule="every:3600")
        with Store.open() as store:
            routine = store.routine("clicker")
            assert routine is not None
            store.request_run(routine.id)
        scheduler.start()
        (run,) = wait_for(lambda: [r for r in runs_of("clicker") if r.status != "running"], "run")
        add("idle", url, prompt="do nothing", schedule="every:3600")
        with Store.open() as store:
            idle = store.routine("idle")
            assert idle is not None
            store.request_run(idle.id)
        (empty,) = wait_for(lambda: [r for r in runs_of("idle") if r.status != "running"], "run")
        scheduler.stop()
    assert run.status == "ok" and run.refused_tools == ("routines_remove",)
    assert "refused tools: routines_remove" in run.output
    with Store.open() as store:
        assert run.session_id is not None
        assert store.routine("clicker") is not None  # the refused call did nothing
        (call,) = store.tool_calls(run.session_id)
        assert call.name == "routines_remove" and call.status == "denied"
        assert call.result is not None
        assert "not among the tools this routine was approved to use" in call.result[0]["text"]
    assert empty.status == "empty"
    assert "without doing or saying anything" in empty.output


def run_now_here(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deskloop", "routines", "run", name],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def test_run_now_without_a_scheduler_resumes_its_session_and_is_refused_while_live(
    tmp_path: Path, agent_env: None
) -> None:
    with scripted_server(tmp_path, ["Report written."], repeat_last=True) as url:
        add("report", url, prompt="write the report", schedule="cron:0 9 * * 1",
            session_mode="resume")  # fmt: skip
        first, second = run_now_here("report"), run_now_here("report")
        for done in (first, second):
            assert done.returncode == 0, done.stderr
            assert " ok " in done.stdout and "Report written." in done.stdout
        with Store.open() as store:
            routine = store.routine("report")
            assert routine is not None
            later, earlier = store.runs(routine.id)
            assert later.session_id == earlier.session_id is not None  # one session, resumed
            prompts = [m for m in store.messages(later.session_id) if m.role == "user"]
            assert len(prompts) == 2
            store.start_run(
                routine, slot=None, catch_up=False, owner_pid=os.getpid(),
                next_fire_at=routine.next_fire_at, enabled=True,
            )  # fmt: skip
        refused = run_now_here("report")
    assert refused.returncode == 1
    assert "is running now; one run at a time" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_run_past_its_timeout_is_stopped_and_recorded_as_timeout(
    tmp_path: Path, agent_env: None
) -> None:
    with scripted_server(tmp_path, ["too late"], prefill_delay_s=60.0) as url:
        add("stuck", url, prompt="wait", schedule="every:3600", timeout_s=3.0)
        done = run_now_here("stuck")
    assert done.returncode == 1 and " timeout " in done.stdout, done.stdout + done.stderr
    (run,) = runs_of("stuck")
    assert run.status == "timeout" and "the run's timeout" in run.output
    assert run.duration_s is not None and 3.0 <= run.duration_s < 20.0
