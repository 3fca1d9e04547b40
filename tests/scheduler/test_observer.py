"""The observer: after 10 turn pairs, a background session saves what the conversation taught.

A real scheduler process and a real `deskloop serve` on the scripted engine (a test fake,
asked for by name), whose outputs are the observer model's calls.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskloop.scheduler.observer import due_position
from deskloop.store import Store
from tests.agent.scripted_server import scripted_server, tool_call

pytestmark = pytest.mark.slow

GRAPH = {
    "nodes": [{"label": "Bea", "type": "person"}, {"label": "Porto", "type": "place"}],
    "edges": [["Bea", "lives in", "Porto"]],
}
CARD = {"kind": "pattern", "title": "Ana books trips to Porto each spring"}


def conversation(store: Store, pairs: int) -> int:
    session = store.create_session(title="trip planning")
    for turn in range(pairs):
        store.add_message(session.id, "user", f"Turn {turn}: my sister Bea lives in Porto.")
        store.add_message(session.id, "assistant", f"Noted for turn {turn}.")
    return session.id


def test_ten_pairs_wake_the_observer_which_saves_a_card_and_a_graph_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = [
        tool_call("save_knowledge_graph", GRAPH),
        tool_call("save_observer_card", CARD),
        "Saved Bea in Porto and one pattern card.",
    ]
    with Store.open() as store:
        short = conversation(store, 9)
        talk = conversation(store, 10)
        assert due_position(store, short, 10) is None
        assert due_position(store, talk, 10) == 19
    with scripted_server(tmp_path, outputs) as url:
        monkeypatch.setenv("DESKLOOP_AGENT_ENDPOINT", url)
        monkeypatch.setenv("DESKLOOP_SCHEDULER_OBSERVER_EVERY", "10")
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "deskloop", "scheduler"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert scheduler.stdout is not None
            assert "scheduler running" in scheduler.stdout.readline()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with Store.open() as store:
                    runs = store.observer_runs()
                if runs and runs[0].status != "running":
                    break
                time.sleep(0.2)
        finally:
            scheduler.send_signal(signal.SIGTERM)
            scheduler.wait(timeout=30)
            scheduler.stdout.close()  # type: ignore[union-attr]
    (run,) = runs  # the 9-pair conversation did not wake it
    assert run.status == "ok" and run.watched_session_id == talk and run.watched_upto == 19
    assert "Saved Bea in Porto" in run.output and run.input_tokens > 0
    with Store.open() as store:
        nodes, edges = store.query_graph("Bea")
        assert [n.label for n in nodes] == ["Bea"]
        assert [(e.source, e.relation, e.target) for e in edges] == [("Bea", "lives in", "Porto")]
        (card,) = store.observer_cards()
        assert card.title == CARD["title"] and card.kind == "pattern"
        assert run.session_id is not None
        calls = [(c.name, c.status) for c in store.tool_calls(run.session_id)]
        assert calls == [("save_knowledge_graph", "ok"), ("save_observer_card", "ok")]
        first = store.messages(run.session_id)[0].content[0]["text"]
        assert "[conversation data ends]" in first and "Bea lives in Porto" in first
        assert due_position(store, talk, 10) is None  # read up to its end already
