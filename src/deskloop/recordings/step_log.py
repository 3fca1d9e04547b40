"""Replay steps logged as a session's steps are: one tool call per step, in a session row.

`deskloop sessions`, the web UI's history and a routine's run all read replays the way
they read an agent's session: each step a `replay_step` call with its intent and outcome.
"""

from __future__ import annotations

import time

from deskloop.recordings.recording import Step
from deskloop.recordings.replay_report import StepOutcome
from deskloop.store import Store

STEP_TOOL = "replay_step"


class SessionStepLog:
    """Writes each step of a replay as a tool call of session `session_id`."""

    def __init__(self, store: Store, session_id: int) -> None:
        self.store = store
        self.session_id = session_id
        self._started: dict[int, float] = {}
        # Call ids unique in the session, however many replays it holds.
        self._prefix = f"replay-{int(time.time() * 1000)}"

    @classmethod
    def new_session(cls, store: Store, recording: str, title: str = "") -> SessionStepLog:
        record = store.create_session(title=(title or f"replay {recording}")[:200])
        return cls(store, record.id)

    def started(self, number: int, step: Step) -> None:
        self._started[number] = time.monotonic()
        given = {"step": number, "action": step.action, "intent": step.intent, "app": step.app}
        self.store.start_tool_call(self.session_id, f"{self._prefix}-{number}", STEP_TOOL, given)

    def finished(self, number: int, step: Step, outcome: StepOutcome) -> None:
        words = outcome.line() + (f" (via {outcome.via})" if outcome.via else "")
        self.store.finish_tool_call(
            self.session_id,
            f"{self._prefix}-{number}",
            status="ok" if outcome.ok else "error",
            result=[{"type": "text", "text": words}],
            is_error=not outcome.ok,
            duration_s=time.monotonic() - self._started.pop(number, time.monotonic()),
        )

    def end(self, ok: bool, summary: str) -> None:
        self.store.end_session(self.session_id, "end_turn" if ok else "error", summary)
