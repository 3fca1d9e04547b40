"""The scheduler: fires due routines, each as a fresh agent session in a child process.

The child (`deskloop.scheduler.session_child`) talks to a model server that stays up
between fires: the routine's endpoint, the agent's, or the embedded `deskloop serve`
started once here. The child dies with the scheduler: PR_SET_PDEATHSIG on Linux, and on
every platform it exits when its stdin (a pipe from here) closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from deskloop.agent.endpoint import EndpointError, resolve_endpoint
from deskloop.agent.resident_server import use_resident_server
from deskloop.routines.outcome import SessionEnd, judge_run
from deskloop.routines.routines import (
    SCHEDULER_STOPPED,
    busy_error,
    recover_stale_runs,
    routine_schedule,
)
from deskloop.routines.schedule import ScheduleError
from deskloop.scheduler.observer import due_position
from deskloop.scheduler.replay_run import replay_routine
from deskloop.settings import AgentSettings
from deskloop.store import (
    RoutineBusy,
    RoutineRecord,
    RunRecord,
    RunResult,
    SlotTaken,
    Store,
)

# A slot this late while the scheduler was up also counts as missed (a suspended laptop).
LATE_IS_MISSED_S = 300.0
STOP_GRACE_S = 5.0
OBSERVER_TIMEOUT_S = 300.0
OBSERVER_LOOKBACK_S = 86_400.0
STDERR_TAIL_LINES = 12


@dataclass(frozen=True)
class Fire:
    """What one fire is: the slot it answers, and what the routine's row becomes."""

    slot: float | None
    catch_up: bool
    missed: int
    next_fire_at: float | None
    enabled: bool


def plan_fire(routine: RoutineRecord, now: float, scheduler_started: float) -> Fire:
    """Which slot a due routine answers now; missed slots collapse into this one."""
    if routine.run_requested_at is not None:
        return Fire(None, False, 0, routine.next_fire_at, routine.enabled)
    assert routine.next_fire_at is not None
    schedule = routine_schedule(routine)
    slot = routine.next_fire_at
    slot_time = datetime.fromtimestamp(slot, UTC)
    now_time = datetime.fromtimestamp(now, UTC)
    catch_up = slot < scheduler_started - 1.0 or now - slot > LATE_IS_MISSED_S
    missed = schedule.missed_fires(slot_time, now_time) if catch_up else 1
    if schedule.kind == "at":
        return Fire(slot, catch_up, missed, None, False)
    following = schedule.next_fire(now_time)
    return Fire(slot, catch_up, missed, None if following is None else following.timestamp(), True)


def next_after_run(routine: RoutineRecord, finished: float) -> float | None:
    """The fire after a run that ended at `finished`: `every:` counts from the end."""
    schedule = routine_schedule(routine)
    if schedule.kind == "at":
        return routine.next_fire_at  # a run now leaves a pending `at:` where it was
    if not routine.enabled:
        return None
    following = schedule.next_fire(datetime.fromtimestamp(finished, UTC))
    return None if following is None else following.timestamp()


class ModelServers:
    """The endpoint each routine talks to; the embedded one is the resident server that every
    command shares (agent/resident_server.py), checked at each fire and started if gone.

    No hold is kept between fires, so an idle scheduler lets it stop after
    `server.idle_minutes`; a fire's requests keep it up while the fire runs.
    """

    def __init__(self, agent: AgentSettings, embedded_args: Sequence[str] = ()) -> None:
        self.agent = agent
        self.embedded_args = list(embedded_args)
        self._embedded_url: str | None = None
        self._starting = asyncio.Lock()

    async def url_for(self, endpoint: str = "") -> tuple[str, bool]:
        """`endpoint` when given, else the agent's, else the embedded server's; and whether
        it is the embedded one."""
        if endpoint:
            return endpoint, False
        configured = resolve_endpoint(self.agent, None)
        if configured.url is not None:
            return configured.url, False
        async with self._starting:
            server, hold = await asyncio.to_thread(use_resident_server, self.embedded_args)
            hold.release()
            self._embedded_url = server.url
            return server.url, True

    @property
    def embedded_url(self) -> str | None:
        return self._embedded_url

    def close(self) -> None:
        """Nothing to stop: the resident server outlives the scheduler until it is idle."""
        self._embedded_url = None


def _die_with_parent() -> None:
    # prctl(2) PR_SET_PDEATHSIG = 1: SIGKILL this child when the scheduler's thread dies.
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


class Scheduler:
    """Fires due routines until `stop` is set; never two runs of one routine at once."""

    def __init__(
        self,
        store: Store,
        servers: ModelServers,
        *,
        poll_s: float = 2.0,
        observer_every: int = 0,
        standby: bool = False,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.store = store
        self.servers = servers
        self.poll_s = poll_s
        self.observer_every = observer_every
        # Keep one child started and imported, waiting for the next fire (see session_child).
        self.standby = standby
        self._standby: asyncio.subprocess.Process | None = None
        self._observer: asyncio.Task[None] | None = None
        # Conversations older than a day when the scheduler starts are left unread: a first
        # start would otherwise queue an observer run for every long chat in the history.
        self._seen_message_id = store.last_message_before(clock() - OBSERVER_LOOKBACK_S)
        self._unobserved: set[int] = set()
        self.clock = clock
        self.say = on_event
        self.started_at = clock()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._wake = asyncio.Event()

    async def serve(self, stop: asyncio.Event) -> None:
        for run in recover_stale_runs(self.store):
            self.say(f"run {run.id} was left running by a stopped scheduler: marked error")
        try:
            await self.start_standby()
            while not stop.is_set():
                self.fire_due()
                self.observe_due()
                self._wake.clear()
                await _first_of(stop.wait(), self._wake.wait(), timeout=self._sleep_s())
        finally:
            await self._stop_runs()

    async def run_once(self, routine: RoutineRecord) -> RunRecord:
        """Run `routine` now in this process (`deskloop routines run` with no scheduler up)."""
        recover_stale_runs(self.store)
        try:
            run = self.store.start_run(
                routine,
                slot=None,
                catch_up=False,
                owner_pid=os.getpid(),
                next_fire_at=routine.next_fire_at,
                enabled=routine.enabled,
            )
        except RoutineBusy as exc:
            raise busy_error(routine) from exc
        fire = Fire(None, False, 0, routine.next_fire_at, routine.enabled)
        try:
            await self._execute(routine, run, fire)
        except asyncio.CancelledError:
            self.store.finish_run(run.id, RunResult("error", "interrupted before it finished"))
            raise
        return self.store.run(run.id)

    def _sleep_s(self) -> float:
        """Until the next fire, at most one poll: a change in the database is seen that soon."""
        wake = self.store.next_wake()
        if wake is None:
            return self.poll_s
        return max(0.05, min(self.poll_s, wake - self.clock()))

    def fire_due(self) -> list[RunRecord]:
        """Claim and start every routine that is due now; returns the runs started."""
        started = []
        now = self.clock()
        for routine in self.store.due_routines(now):
            if routine.id in self._tasks:
                continue
            try:
                fire = plan_fire(routine, now, self.started_at)
            except ScheduleError as exc:
                self.say(f"routine {routine.name!r} has a schedule that no longer parses: {exc}")
                self.store.set_next_fire(routine.id, None)
                continue
            try:
                run = self.store.start_run(
                    routine,
                    slot=fire.slot,
                    catch_up=fire.catch_up,
                    owner_pid=os.getpid(),
                    next_fire_at=fire.next_fire_at,
                    enabled=fire.enabled,
                )
            except SlotTaken:
                self.store.set_next_fire(routine.id, fire.next_fire_at)
                continue
            except RoutineBusy:
                continue
            self.say(f"routine {routine.name!r}: run {run.id} started")
            task = asyncio.create_task(self._execute(routine, run, fire))
            self._tasks[routine.id] = task
            task.add_done_callback(partial(self._run_ended, routine.id))
            started.append(run)
        return started

    def observe_due(self) -> RunRecord | None:
        """Start the observer on a conversation with enough new turn pairs; one at a time."""
        if self.observer_every <= 0:
            return None
        changed, self._seen_message_id = self.store.conversations_changed_since(
            self._seen_message_id
        )
        self._unobserved.update(changed)
        if self._observer is not None:
            return None
        for session_id in sorted(self._unobserved):
            upto = due_position(self.store, session_id, self.observer_every)
            self._unobserved.discard(session_id)
            if upto is None:
                continue
            try:
                run = self.store.start_observer_run(
                    watched_session_id=session_id, watched_upto=upto, owner_pid=os.getpid()
                )
            except RoutineBusy:
                self._unobserved.add(session_id)
                return None
            self.say(f"observer: run {run.id} reads session {session_id}")
            self._observer = asyncio.create_task(self._execute_observer(run))
            self._observer.add_done_callback(self._observer_ended)
            return run
        return None

    def _observer_ended(self, _task: asyncio.Task[None]) -> None:
        self._observer = None
        self._wake.set()

    async def _execute_observer(self, run: RunRecord) -> None:
        try:
            url, embedded = await self.servers.url_for()
        except (EndpointError, OSError) as exc:
            self.store.finish_run(run.id, RunResult("error", f"no model server: {exc}"))
            return
        end = await self._run_child(run, OBSERVER_TIMEOUT_S, url, embedded)
        finished = self.store.finish_run(
            run.id, judge_run(self.store, self.store.run(run.id), end, 0)
        )
        self.say(f"observer: run {run.id} {finished.status}")

    def _run_ended(self, routine_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(routine_id, None)
        self._wake.set()

    async def _execute(self, routine: RoutineRecord, run: RunRecord, fire: Fire) -> None:
        if routine.recording:  # a replay, no model session (scheduler/replay_run.py)
            self._finish(routine, run, await replay_routine(self.store, routine, run))
            return
        baseline_turn = 0
        if routine.session_mode == "resume" and routine.last_session_id is not None:
            baseline_turn = max(
                (u.turn for u in self.store.usage(routine.last_session_id)), default=0
            )
        try:
            url, embedded = await self.servers.url_for(routine.endpoint)
        except (EndpointError, OSError) as exc:
            self._finish(routine, run, RunResult("error", f"no model server: {exc}"))
            return
        end = await self._run_child(run, routine.timeout_s, url, embedded)
        session_id = self.store.run(run.id).session_id
        if end.timed_out and session_id is not None:  # its session says so too
            self.store.end_session(session_id, "timed_out", end.message)
        elif end.reason == "crashed" and session_id is not None:
            self.store.end_session(session_id, "crashed", end.message)
        result = judge_run(self.store, self.store.run(run.id), end, baseline_turn)
        if fire.catch_up:
            said = f"{fire.missed} missed fires" if fire.missed > 1 else "a missed fire"
            result = RunResult(
                result.status,
                f"[catch-up run for {said} while the scheduler was down]\n{result.output}",
                result.input_tokens,
                result.output_tokens,
                result.refused_tools,
            )
        self._finish(routine, run, result, end.first_output_at)

    def _finish(
        self,
        routine: RoutineRecord,
        run: RunRecord,
        result: RunResult,
        first_output_at: float | None = None,
    ) -> None:
        finished = self.store.finish_run(run.id, result)
        latency = ""
        if first_output_at is not None:
            latency = f" (first output {first_output_at - run.started_at:.2f} s after the fire)"
        self.say(f"routine {routine.name!r}: run {run.id} {finished.status}{latency}")
        current = self.store.routine_by_id(routine.id)
        if current is None:
            return
        if finished.session_id is not None and current.session_mode == "resume":
            self.store.set_last_session(current.id, finished.session_id)
        if current.updated_at <= run.started_at:
            self.store.set_next_fire(current.id, next_after_run(current, self.clock()))

    async def _run_child(
        self, run: RunRecord, timeout_s: float, url: str, embedded: bool
    ) -> SessionEnd:
        words = [str(run.id), "--endpoint", url, *(["--embedded"] if embedded else [])]
        child = await self._child_for(words)
        self._children[run.id] = child
        try:
            async with asyncio.timeout(timeout_s):
                stdout, stderr = await child.communicate()
        except asyncio.CancelledError:
            await _end_group(child)
            raise
        except TimeoutError:
            await _end_group(child)
            return SessionEnd(timed_out=True, reason="timeout", message=(
                f"stopped after {timeout_s:g} s, the run's timeout"
            ))  # fmt: skip
        finally:
            self._children.pop(run.id, None)
        return SessionEnd.from_child(child.returncode, stdout, stderr, STDERR_TAIL_LINES)

    async def _child_for(self, words: list[str]) -> asyncio.subprocess.Process:
        """The standby child, handed `words`, or a fresh child when there is none."""
        child, self._standby = self._standby, None
        if child is not None and child.returncode is None and child.stdin is not None:
            try:
                child.stdin.write(json.dumps(words).encode() + b"\n")
                await child.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                child = None
        else:
            child = None
        if child is None:
            child = await _spawn_child(words)
        if self.standby:
            self._standby = await _spawn_child(["--standby"])  # ready for the next fire
        return child

    async def start_standby(self) -> None:
        """Start the child that waits, imports done, for the next fire."""
        if self.standby and self._standby is None:
            self._standby = await _spawn_child(["--standby"])

    async def _stop_runs(self) -> None:
        """On shutdown: end every child's group and mark its run as stopped with the scheduler."""
        if self._standby is not None:
            await _end_group(self._standby)
            self._standby = None
        for child in list(self._children.values()):
            await _end_group(child)
        tasks = [*self._tasks.values(), *([self._observer] if self._observer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for run in self.store.live_runs():
            if run.owner_pid == os.getpid():
                self.store.finish_run(run.id, RunResult("error", SCHEDULER_STOPPED))
                if run.session_id is not None:
                    self.store.end_session(
                        run.session_id, "scheduler_stopped", "the scheduler stopped during the run"
                    )


async def _spawn_child(words: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deskloop.scheduler.session_child", *words,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own group: a timeout ends its MCP servers too
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )  # fmt: skip


async def _end_group(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_GRACE_S):
            await child.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        await child.wait()


async def _first_of(*waits: object, timeout: float) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
