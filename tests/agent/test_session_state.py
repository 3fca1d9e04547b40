"""A session's end in words, the same for history, the UI, recaps and the log (agent/ending.py)."""

from __future__ import annotations

from deskloop.agent.commands import recap
from deskloop.agent.ending import state_of
from deskloop.store import Store


def test_each_end_is_a_state_with_words() -> None:
    cases = {
        ("end_turn", ""): ("finished", "finished"),
        ("max_turns", "stopped: reached 30 turns (agent.max_turns)"): (
            "stopped_at_limit", "stopped at a limit: reached 30 turns (agent.max_turns)"),
        ("max_session_seconds", ""): (
            "stopped_at_limit", "stopped at a limit: the time limit (agent.max_session_seconds)"),
        ("interrupted", "stopped by you"): ("interrupted", "interrupted: stopped by you"),
        ("timed_out", "stopped after 60 s, the run's timeout"): (
            "timed_out", "timed out: stopped after 60 s, the run's timeout"),
        ("endpoint_error", "http://x answered 500"): ("failed", "failed: http://x answered 500"),
        ("repeated_call", ""): ("failed", "failed: the agent repeated the same call"),
        ("user_quit", ""): ("finished", "finished (closed at the prompt)"),
        (None, ""): ("interrupted",
                     "interrupted: the process stopped (killed or crashed) before the session ended"),
    }  # fmt: skip
    for (reason, detail), (state, words) in cases.items():
        said = state_of(reason, detail)
        assert (said.state, said.words) == (state, words), reason
    assert state_of("running", owner_alive=True).words == "running"
    assert state_of("running").state == "interrupted"  # its process is gone


def test_a_resumed_session_at_a_limit_is_not_called_a_crash() -> None:
    with Store.open() as store:
        record = store.create_session(title="Loop", model="m", endpoint="http://e")
        store.add_message(record.id, "user", "Loop")
        store.add_message(record.id, "assistant", "Still looping.")
        store.end_session(record.id, "max_turns", "stopped: reached 30 turns (agent.max_turns)")
        store.release_session(record.id)
        lines = recap(store.messages(record.id), store.session(record.id))
    assert lines[-1] == (
        "[stopped at a limit: reached 30 turns (agent.max_turns); your next message goes on "
        "with a new set of turns under the same limits. Nothing runs until you type.]"
    )
    assert "crashed" not in "\n".join(lines)
