"""How a session stands, in words: the same for `deskloop history`, the UI, recaps and the log.

The store keeps the code of the last run's end (`end_reason`) and its message
(`end_detail`); this module is the one place a code becomes a state and words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from deskloop.routines.routines import process_alive
from deskloop.store import SessionRecord

State = Literal["finished", "stopped_at_limit", "interrupted", "timed_out", "failed", "running"]

LIMIT_REASONS = {
    "max_turns": "the turn limit (agent.max_turns)",
    "max_session_tokens": "the token limit (agent.max_session_tokens)",
    "max_session_seconds": "the time limit (agent.max_session_seconds)",
    "max_tokens": "the answer's length limit (agent.max_tokens_per_turn)",
}
_FAILED = {
    "endpoint_error": "the model endpoint failed",
    "repeated_failure": "the same call kept failing",
    "repeated_call": "the agent repeated the same call",
    "refusal": "the model declined to continue",
    "crashed": "the session process crashed",
    "error": "the session could not run",
}
_INTERRUPTED = {
    "interrupted": "stopped by you",
    "scheduler_stopped": "the scheduler stopped during the run",
}
# Written by earlier versions when a chat was closed: the last run's end was not kept.
_CLOSED = {"user_quit": "closed at the prompt", "user_closed": "closed in the web UI"}
_WHEN_DEAD = "the process stopped (killed or crashed) before the session ended"


@dataclass(frozen=True)
class SessionState:
    """A session's state and the words a person reads for it."""

    state: State
    words: str

    @property
    def at_limit(self) -> bool:
        return self.state == "stopped_at_limit"


def state_of(reason: str | None, detail: str = "", *, owner_alive: bool = False) -> SessionState:
    """The state for a stored end reason and message (`owner_alive`: its process still runs)."""
    said = detail.removeprefix("stopped: ").strip()
    if reason is None or reason == "running":
        if owner_alive:
            return SessionState("running", "running")
        return SessionState("interrupted", f"interrupted: {_WHEN_DEAD}")
    if reason in ("end_turn", "stop_sequence"):
        return SessionState("finished", "finished")
    if reason == "ask_followup":
        return SessionState("finished", "finished with a question for you")
    if reason in LIMIT_REASONS:
        return SessionState(
            "stopped_at_limit", f"stopped at a limit: {said or LIMIT_REASONS[reason]}"
        )
    if reason in ("timeout", "timed_out"):
        return SessionState("timed_out", f"timed out{': ' + said if said else ''}")
    if reason in _INTERRUPTED:
        return SessionState("interrupted", f"interrupted: {said or _INTERRUPTED[reason]}")
    if reason in _CLOSED:
        return SessionState("finished", f"finished ({_CLOSED[reason]})")
    why = said or _FAILED.get(reason, reason.replace("_", " "))
    return SessionState("failed", f"failed: {why}")


def session_state(record: SessionRecord) -> SessionState:
    """How a stored session stands now: its process is asked whether it still runs."""
    return state_of(record.end_reason, record.end_detail, owner_alive=_alive(record.owner_pid))


def _alive(pid: int | None) -> bool:
    return pid is not None and (pid == os.getpid() or process_alive(pid))
