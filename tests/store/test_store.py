"""The conversation store: what is written comes back, search finds it, crashes lose nothing."""

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from deskloop.settings import paths
from deskloop.store import (
    INTERRUPTED_TOOL_MESSAGE,
    MIGRATIONS,
    Store,
    TurnUsage,
    UnknownSession,
)


def test_opens_in_the_data_dir_in_wal_mode_with_every_migration_recorded() -> None:
    with Store.open() as store:
        assert store.path == paths().database
    db = sqlite3.connect(paths().database)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    recorded = [row[0] for row in db.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert recorded == sorted(name for name, _ in MIGRATIONS)


def test_reopening_applies_no_migration_twice() -> None:
    Store.open().close()
    with Store.open() as store:
        store.create_session(title="second open")
    db = sqlite3.connect(paths().database)
    (count,) = db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
    assert count == len(MIGRATIONS)


def test_messages_keep_their_full_content_blocks_in_order() -> None:
    tool_use = {"type": "tool_use", "id": "tu_1", "name": "click", "input": {"id": "e12"}}
    result = {
        "type": "tool_result",
        "tool_use_id": "tu_1",
        "content": [{"type": "text", "text": "clicked Save"}],
        "is_error": False,
    }
    with Store.open() as store:
        session = store.create_session(title="save the file", model="m", endpoint="http://x")
        store.add_message(session.id, "user", "Save the document")
        store.add_message(session.id, "assistant", [{"type": "text", "text": "ok"}, tool_use])
        store.add_message(session.id, "user", [result])
        stored = store.messages(session.id)
    assert [m.role for m in stored] == ["user", "assistant", "user"]
    assert [m.position for m in stored] == [0, 1, 2]
    assert stored[0].content == [{"type": "text", "text": "Save the document"}]
    assert stored[1].content[1] == tool_use
    assert stored[2].as_api_message() == {"role": "user", "content": [result]}


def test_tool_calls_record_input_result_status_and_duration() -> None:
    with Store.open() as store:
        session = store.create_session()
        store.start_tool_call(session.id, "tu_1", "type_text", {"id": "e3", "text": "hi"})
        running = store.tool_calls(session.id)[0]
        store.finish_tool_call(
            session.id,
            "tu_1",
            status="ok",
            result=[{"type": "text", "text": "typed"}],
            is_error=False,
            duration_s=0.25,
        )
        (done,) = store.tool_calls(session.id)
    assert running.status == "running" and running.result is None
    assert done.input == {"id": "e3", "text": "hi"}
    assert done.status == "ok" and done.is_error is False
    assert done.result == [{"type": "text", "text": "typed"}]
    assert done.duration_s == 0.25


def test_usage_is_kept_per_turn() -> None:
    with Store.open() as store:
        session = store.create_session()
        store.record_usage(session.id, TurnUsage(1, 900, 40, stop_reason="tool_use"))
        store.record_usage(session.id, TurnUsage(2, 1000, 12, 800, 0.5, "end_turn"))
        usage = store.usage(session.id)
    assert [u.turn for u in usage] == [1, 2]
    assert sum(u.input_tokens for u in usage) == 1900
    assert usage[1].cache_read_tokens == 800 and usage[1].stop_reason == "end_turn"


def test_full_text_search_finds_words_in_text_tool_inputs_and_results() -> None:
    with Store.open() as store:
        first = store.create_session()
        second = store.create_session()
        store.add_message(first.id, "user", "Rename the quarterly invoice to paid")
        store.add_message(
            second.id,
            "assistant",
            [{"type": "tool_use", "id": "t", "name": "type_text", "input": {"text": "Zürich"}}],
        )
        store.add_message(
            second.id,
            "user",
            [{"type": "tool_result", "tool_use_id": "t", "content": "window Gedit opened"}],
        )
        invoice = store.search("invoice quarterly")
        city = store.search("zurich")
        result = store.search("gedit")
        nothing = store.search("invoice gedit")
        punctuation = store.search('"invoice" AND -(')
    assert [(h.session_id, h.role) for h in invoice] == [(first.id, "user")]
    assert "[invoice]" in invoice[0].snippet
    assert [h.session_id for h in city] == [second.id]
    assert [h.session_id for h in result] == [second.id]
    assert nothing == []
    assert punctuation == []


def test_an_unknown_session_says_how_to_find_the_right_one() -> None:
    with Store.open() as store, pytest.raises(UnknownSession, match="deskloop history"):
        store.add_message(404, "user", "hello")


def test_a_failed_write_leaves_nothing_behind() -> None:
    with Store.open() as store:
        session = store.create_session()
        with pytest.raises(RuntimeError), store.transaction():
            store.add_message(session.id, "user", "half a turn")
            raise RuntimeError("crash between two writes")
        assert store.messages(session.id) == []
        assert store.search("half") == []


def test_sessions_list_newest_first_and_end_with_a_reason() -> None:
    with Store.open() as store:
        old = store.create_session(title="old")
        new = store.create_session(title="new")
        store.end_session(old.id, "end_turn")
        listed = store.sessions()
    assert [s.title for s in listed] == ["new", "old"]
    assert listed[1].end_reason == "end_turn" and listed[1].ended_at is not None
    assert listed[0].id == new.id and listed[0].ended_at is None


# A child process writes a turn, starts a tool call, then dies by SIGKILL inside a
# transaction that writes the tool's result.
KILLED_MID_TURN = """
import sys, time
from pathlib import Path
from deskloop.store import Store

store = Store.open(Path(sys.argv[1]))
session = store.create_session(title="killed mid-turn")
store.add_message(session.id, "user", "open the invoice")
store.add_message(session.id, "assistant", [
    {"type": "text", "text": "Looking at the screen."},
    {"type": "tool_use", "id": "tu_1", "name": "observe_window", "input": {}},
])
store.start_tool_call(session.id, "tu_1", "observe_window", {})
print(session.id, flush=True)
with store.transaction():
    store.add_message(session.id, "user", [
        {"type": "tool_result", "tool_use_id": "tu_1", "content": "never committed"},
    ])
    print("inside", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_sigkill_mid_turn_keeps_what_was_committed_and_the_session_resumes(
    tmp_path: Path,
) -> None:
    database = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_TURN, str(database)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    session_id = int(child.stdout.readline())
    assert child.stdout.readline().strip() == "inside"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()

    with Store.open(database) as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = store.messages(session_id)
        assert [m.role for m in kept] == ["user", "assistant"]
        assert store.search("committed") == []
        assert store.tool_calls(session_id)[0].status == "running"

        resumed = store.resume(session_id)
        assert resumed.repaired_tool_use_ids == ["tu_1"]
        last = resumed.messages[-1]
        assert last["role"] == "user"
        assert last["content"][0]["tool_use_id"] == "tu_1"
        assert last["content"][0]["is_error"] is True
        assert INTERRUPTED_TOOL_MESSAGE in last["content"][0]["content"][0]["text"]
        assert store.tool_calls(session_id)[0].status == "interrupted"
        # Resuming twice adds nothing more: the conversation is already whole.
        again = store.resume(session_id)
        assert again.messages == resumed.messages and again.repaired_tool_use_ids == []


WRITES_UNTIL_KILLED = """
import sys
from pathlib import Path
from deskloop.store import Store

store = Store.open(Path(sys.argv[1]))
session = store.create_session()
print(session.id, flush=True)
n = 0
while True:
    store.add_message(session.id, "user" if n % 2 == 0 else "assistant", f"message {n} " * 50)
    print(n, flush=True)
    n += 1
"""


@pytest.mark.slow
def test_sigkill_during_a_stream_of_writes_loses_no_reported_commit(tmp_path: Path) -> None:
    database = tmp_path / "stream.db"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITES_UNTIL_KILLED, str(database)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    session_id = int(child.stdout.readline())
    last_reported = -1
    while last_reported < 200:
        last_reported = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()

    with Store.open(database) as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        positions = [m.position for m in store.messages(session_id)]
    assert len(positions) > last_reported
    assert positions == list(range(len(positions)))
