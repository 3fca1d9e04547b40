"""Live sessions against a real `deskloop serve` (scripted engine) and a real MCP server (tests/mcp's fixture).

Each session's events stay its own, held calls wait for the page's answer, a stop ends the
turn and the session carries on.
"""

import asyncio
import json
import sys
from pathlib import Path

import pytest

from deskloop.mcp.config import servers_file
from deskloop.settings import set_setting
from deskloop.store import Store
from deskloop.ui import ChatSessions, LiveSession
from tests.agent.scripted_server import scripted_server, tool_call

pytestmark = pytest.mark.slow
# The fixture server's tools carry no annotations, so the policy treats them as external: ask.
ECHO_TOOL = "mcp__fixture__echo"
FIXTURE_SERVER = Path(__file__).parents[1] / "mcp" / "mcp_fixture_server.py"


@pytest.fixture(autouse=True)
def no_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scripted server's window holds the prompt with every native and MCP tool (~8k).
    monkeypatch.setenv("DESKLOOP_SERVER_CONTEXT_WINDOW", "32768")
    monkeypatch.setenv("DESKLOOP_AGENT_MODEL", "claude-deskloop-test")
    monkeypatch.setenv("DESKLOOP_AGENT_OBSERVE_FIRST", "false")
    servers_file().parent.mkdir(parents=True, exist_ok=True)
    servers_file().write_text(json.dumps(
        {"mcpServers": {"fixture": {"command": sys.executable, "args": [str(FIXTURE_SERVER)]}}}
    ))


async def until(live: LiveSession, kind: str, timeout: float = 30.0) -> dict[str, object]:
    """The first event of `kind` in the session's stream, waiting for it to come."""
    async with asyncio.timeout(timeout):
        async for event in live.events_after(0):
            assert event is not None
            if event["event"] == kind:
                return event
    raise AssertionError(f"session {live.session_id} closed without a {kind} event")


async def idle(live: LiveSession, timeout: float = 30.0) -> None:
    """Until the running turn has ended and the session takes the next message."""
    async with asyncio.timeout(timeout):
        while live.running:
            await asyncio.sleep(0.02)


def texts(live: LiveSession) -> str:
    return "".join(str(e["text"]) for e in live.events if e["event"] == "text_delta")


async def test_two_sessions_at_once_keep_their_own_events(tmp_path: Path) -> None:
    outputs = [
        tool_call(ECHO_TOOL, {"text": "from alpha"}, "alpha asks. "),
        "beta answer",
        "alpha answer",
    ]
    with scripted_server(tmp_path, outputs) as url:
        set_setting("agent.endpoint", url)
        hub = ChatSessions()
        try:
            alpha = await hub.start("alpha task")
            held = await until(alpha, "approval_needed")
            assert held["name"] == ECHO_TOOL and held["risk"] == "external"
            # While alpha waits for its person, beta runs a whole turn.
            beta = await hub.start("beta task")
            assert beta.session_id != alpha.session_id
            assert (await until(beta, "run_end"))["reason"] == "end_turn"
            assert sorted(hub.live) == sorted([alpha.session_id, beta.session_id])
            assert [s["waiting_for"] for s in (alpha.summary(), beta.summary())] == [
                [held["id"]], []
            ]

            alpha.answer(str(held["id"]), "allow_once")
            assert (await until(alpha, "run_end"))["reason"] == "end_turn"
        finally:
            await hub.close_all()

    assert texts(alpha) == "alpha asks.alpha answer"
    assert texts(beta) == "beta answer"
    assert [e["text"] for e in alpha.events if e["event"] == "user_message"] == ["alpha task"]
    assert [e["text"] for e in beta.events if e["event"] == "user_message"] == ["beta task"]
    assert not [e for e in beta.events if e["event"].startswith(("approval", "tool"))]
    (result,) = [e for e in alpha.events if e["event"] == "tool_end"]
    assert result["status"] == "ok" and "echo: from alpha" in json.dumps(result["content"])
    assert [e["answer"] for e in alpha.events if e["event"] == "approval_answered"] == [
        "allow_once"
    ]
    assert [e["seq"] for e in alpha.events] == list(range(1, len(alpha.events) + 1))
    # A reconnecting page (Last-Event-ID: n) gets what came after n, and the stream ends.
    last = len(alpha.events)
    assert [e["seq"] async for e in alpha.events_after(last - 2) if e] == [last - 1, last]
    assert alpha.events[-1]["event"] == beta.events[-1]["event"] == "session_closed"
    assert alpha.events[0]["event"] == "session_start"
    with Store.open() as store:
        assert store.session(alpha.session_id).endpoint == url
        # closing keeps how its last run ended; the session is no longer held
        closed = store.session(alpha.session_id)
        assert closed.end_reason == "end_turn" and closed.owner_pid is None


async def test_a_refused_call_then_a_stopped_turn_then_more_work(tmp_path: Path) -> None:
    outputs = [
        tool_call(ECHO_TOOL, {"text": "one"}),
        "I will not echo.",
        tool_call(ECHO_TOOL, {"text": "two"}),
        "still here",
    ]
    with scripted_server(tmp_path, outputs) as url:
        set_setting("agent.endpoint", url)
        hub = ChatSessions()
        try:
            live = await hub.start("what time is it?")
            live.answer(str((await until(live, "approval_needed"))["id"]), "deny")
            await until(live, "run_end")
            await idle(live)
            refused = next(e for e in live.events if e["event"] == "tool_end")
            assert refused["status"] == "denied" and "declined" in refused["error"]

            start = len(live.events)
            hub.send(live.session_id, "try again")
            async with asyncio.timeout(30):
                while not [e for e in live.events[start:] if e["event"] == "approval_needed"]:
                    await asyncio.sleep(0.05)
            assert live.stop()
            await until(live, "turn_stopped")
            later = live.events[start:]
            assert [e["answer"] for e in later if e["event"] == "approval_answered"] == ["withdrawn"]
            assert not live.running

            hub.send(live.session_id, "are you there?")
            async with asyncio.timeout(30):
                while "still here" not in texts(live):
                    await asyncio.sleep(0.05)
            with pytest.raises(Exception, match="nothing is waiting"):
                live.answer(str(refused["id"]), "allow_once")
        finally:
            await hub.close_all()
    with Store.open() as store:
        calls = store.tool_calls(live.session_id)
    assert [c.status for c in calls] == ["denied", "error"]
    assert "interrupted" in json.dumps(calls[1].result)


async def test_a_closed_session_is_resumed_with_its_conversation(tmp_path: Path) -> None:
    with scripted_server(tmp_path, ["first answer", "second answer"]) as url:
        set_setting("agent.endpoint", url)
        hub = ChatSessions()
        try:
            live = await hub.start("first question")
            await until(live, "run_end")
            hub.close(live.session_id)
            await until(live, "session_closed")
            assert live.session_id not in hub.live

            again = await hub.resume(live.session_id)
            assert again.session_id == live.session_id and again.messages_before == 2
            hub.send(again.session_id, "second question")
            await until(again, "run_end")
        finally:
            await hub.close_all()
    assert texts(again) == "second answer"
    with Store.open() as store:
        said = [m.content[0]["text"] for m in store.messages(live.session_id)]
    assert said == ["first question", "first answer", "second question", "second answer"]
