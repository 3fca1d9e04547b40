"""The agent loop against a real `deskloop serve` (scripted engine) and real MCP servers."""

import asyncio
import json
import sys
from pathlib import Path

import pytest
from scripted_server import scripted_server, tool_call

from deskloop.agent.ending import session_state
from deskloop.agent.endpoint import EndpointError
from deskloop.agent.events import read_log, session_log_path
from deskloop.agent.session import SessionOptions, open_session
from deskloop.agent.steps import (
    FollowupAsked,
    Notice,
    RunEnded,
    Step,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
    step_to_json,
)
from deskloop.agent.task_size import TaskTooLong
from deskloop.mcp.config import servers_file
from deskloop.store import Store
from deskloop.tools import Answer, Asker, PermissionRequest

FIXTURE_SERVER = Path(__file__).parents[1] / "mcp" / "mcp_fixture_server.py"
pytestmark = pytest.mark.slow


def configure_mcp(**servers: dict[str, object]) -> None:
    servers_file().parent.mkdir(parents=True, exist_ok=True)
    servers_file().write_text(json.dumps({"mcpServers": servers}))


TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
FIXTURE = {"command": sys.executable, "args": [str(FIXTURE_SERVER)]}


async def says_yes(request: PermissionRequest) -> Answer:
    """A person (test fake) who allows every call they are asked about."""
    return Answer.ALLOW_ONCE


async def run_task(url: str, task: str, asker: Asker | None = None) -> tuple[int, list[Step]]:
    steps: list[Step] = []
    options = SessionOptions(endpoint=url, title=task, asker=asker)
    async with open_session(options) as session:
        async for step in session.send(task):
            steps.append(step)
    return session.session_id, steps


async def test_a_task_runs_a_real_mcp_tool_and_ends_on_end_turn(tmp_path: Path) -> None:
    configure_mcp(time=TIME_SERVER)
    outputs = [
        tool_call("mcp__time__get_current_time", {"timezone": "Europe/Paris"}, "Let me check."),
        "It is lunchtime in Paris.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        session_id, steps = await run_task(url, "What time is it in Paris?")

    # Notices (the starting screen, MCP servers' stderr) come beside the turns.
    kinds = [type(step).__name__ for step in steps if not isinstance(step, Notice)]
    assert kinds[:3] == ["SessionStarted", "UserMessage", "TurnStarted"]
    assert kinds[-1] == "RunEnded"
    assert "".join(s.text for s in steps if isinstance(s, TextDelta)).startswith("Let me check.")
    started = [s.call for s in steps if isinstance(s, ToolCallStarted)]
    assert [(c.name, c.input) for c in started] == [
        ("mcp__time__get_current_time", {"timezone": "Europe/Paris"})
    ]
    (finished,) = [s.outcome for s in steps if isinstance(s, ToolCallFinished)]
    assert finished.status == "ok" and "Europe/Paris" in finished.content[0]["text"]
    assert [s.turn for s in steps if isinstance(s, TurnStarted)] == [1, 2]
    assert steps[-1] == RunEnded("end_turn", "done")
    assert all(s.usage.input_tokens > 0 for s in steps if isinstance(s, TurnEnded))

    with Store.open() as store:
        messages = store.messages(session_id)
        (call,) = store.tool_calls(session_id)
        usage = store.usage(session_id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2].content[0]["type"] == "tool_result"
    assert messages[3].content == [{"type": "text", "text": "It is lunchtime in Paris."}]
    assert call.status == "ok" and call.duration_s is not None
    assert [u.stop_reason for u in usage] == ["tool_use", "end_turn"]

    # The log is the same stream, each step as step_to_json makes it, less the text deltas.
    logged = read_log(session_log_path(session_id))
    assert [{k: v for k, v in e.items() if k != "time"} for e in logged] == [
        step_to_json(step) for step in steps if not isinstance(step, TextDelta)
    ]
    events = [e["event"] for e in logged]
    for expected in ("session_start", "user_message", "turn_start", "tool_start", "tool_end"):
        assert expected in events
    assert events.count("usage") == 2 and events[-1] == "run_end"


async def test_a_hung_tool_times_out_and_the_session_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_TIMEOUT_MCP_S", "0.5")
    monkeypatch.setenv("DESKLOOP_AGENT_POLICY_EXTERNAL", "auto")
    configure_mcp(fixture=FIXTURE)
    outputs = [tool_call("mcp__fixture__hang", {}), "The check hung, so I stopped it."]
    with scripted_server(tmp_path, outputs) as url:
        session_id, steps = await run_task(url, "Run the check")
    (outcome,) = [s.outcome for s in steps if isinstance(s, ToolCallFinished)]
    assert outcome.status == "timeout"
    assert steps[-1] == RunEnded("end_turn", "done")
    events = read_log(session_log_path(session_id))
    notices = [e for e in events if e["event"] == "notice"]
    stderr = [(e["server"], e["message"]) for e in notices if e["kind"] == "mcp_stderr"]
    assert ("fixture", "fixture server starting") in stderr
    timeouts = [e for e in events if e["event"] == "tool_end" and e["status"] == "timeout"]
    assert timeouts[0]["name"] == "mcp__fixture__hang"
    assert "timed out after 0.5 s" in timeouts[0]["error"]


async def test_the_same_failing_call_three_times_ends_the_session(tmp_path: Path) -> None:
    configure_mcp(time=TIME_SERVER)
    bad_call = tool_call("mcp__time__get_current_time", {"timezone": "Mars/Olympus"})
    with scripted_server(tmp_path, [bad_call], repeat_last=True) as url:
        _, steps = await run_task(url, "Do the thing")
    assert [s.turn for s in steps if isinstance(s, TurnStarted)] == [1, 2, 3]
    last = steps[-1]
    assert isinstance(last, RunEnded) and last.reason == "repeated_failure"
    assert "same failing call 3 times (mcp__time__get_current_time" in last.message
    assert "Mars/Olympus" in last.message


async def test_the_turn_limit_ends_the_session_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_TURNS", "2")
    configure_mcp(time=TIME_SERVER)
    question = tool_call("ask_followup", {"question": "Which file?", "options": ["a", "b"]})
    zones = ["Europe/Paris", "Asia/Tokyo", "Etc/UTC"]
    varied = [tool_call("mcp__time__get_current_time", {"timezone": zone}) for zone in zones]
    with scripted_server(tmp_path, varied) as url:
        _, steps = await run_task(url, "Loop forever")
    assert steps[-1] == RunEnded("max_turns", "stopped: reached 2 turns (agent.max_turns)")
    with scripted_server(tmp_path, [question]) as url:
        _, steps = await run_task(url, "Open my file")
    assert FollowupAsked("Which file?", ["a", "b"]) in steps
    assert steps[-1] == RunEnded("ask_followup", "Which file?")


async def test_a_message_after_the_turn_limit_gets_a_new_set_of_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_TURNS", "2")
    configure_mcp(time=TIME_SERVER)
    zones = ["Europe/Paris", "Asia/Tokyo"]
    outputs = [tool_call("mcp__time__get_current_time", {"timezone": zone}) for zone in zones]
    with scripted_server(tmp_path, [*outputs, "Finished, as you asked."]) as url:
        options = SessionOptions(endpoint=url, title="Loop")
        async with open_session(options) as session:
            first = [step async for step in session.send("Loop")]
            with Store.open() as store:
                stopped = session_state(store.session(session.session_id))
            second = [step async for step in session.send("Please finish now.")]
            with Store.open() as store:
                finished = session_state(store.session(session.session_id))
    assert first[-1].reason == "max_turns"  # type: ignore[union-attr]
    assert stopped.words == "stopped at a limit: reached 2 turns (agent.max_turns)"
    # the model was asked again, not stopped at once; turn numbers go on from the first set
    assert second[-1] == RunEnded("end_turn", "done")
    assert [s.turn for s in second if isinstance(s, TurnStarted)] == [3]
    assert finished.state == "finished"
    log = read_log(session_log_path(session.session_id))
    ends = [e for e in log if e["event"] == "run_end"]
    assert [e["state"] for e in ends] == ["stopped_at_limit", "finished"]
    assert ends[0]["words"] == stopped.words


async def test_endpoint_mistakes_are_explained(tmp_path: Path) -> None:
    with scripted_server(tmp_path, ["unused"]) as url:
        _, steps = await run_task(url + "/v1", "hello")
    last = steps[-1]
    assert isinstance(last, RunEnded) and last.reason == "endpoint_error"
    assert "does not speak the Anthropic Messages format (drop the trailing /v1" in last.message

    with Store.open() as store:
        sessions_before = len(store.sessions())
    # The server is gone now: said when the session opens, before any row or MCP server.
    with pytest.raises(EndpointError, match=f"^nothing is answering at {url} .--endpoint.: "):
        await run_task(url, "hello")
    with Store.open() as store:
        assert len(store.sessions()) == sessions_before


async def test_a_refused_key_and_an_unknown_model_are_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scripted_server(tmp_path, ["unused"], api_key="right-key") as url:
        monkeypatch.setenv("DESKLOOP_AGENT_API_KEY", "wrong-key")
        with pytest.raises(EndpointError) as refused:
            await run_task(url, "hello")
        monkeypatch.setenv("DESKLOOP_AGENT_API_KEY", "right-key")
        monkeypatch.setenv("DESKLOOP_AGENT_MODEL", "gpt-4o")
        _, unknown = await run_task(url, "hello")
    assert str(refused.value) == (
        f"{url} refused the API key: set the right one with "
        "`deskloop config set agent.api_key KEY` (or ANTHROPIC_API_KEY)"
    )
    last = unknown[-1]
    assert isinstance(last, RunEnded) and last.reason == "endpoint_error"
    assert last.message.startswith(f"{url} has no model 'gpt-4o' loaded")


async def test_the_token_limit_ends_the_session_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_SESSION_TOKENS", "100")
    configure_mcp(time=TIME_SERVER)
    check = tool_call("mcp__time__get_current_time", {"timezone": "Etc/UTC"})
    with scripted_server(tmp_path, [check], repeat_last=True) as url:
        _, steps = await run_task(url, "Keep checking the time")
    last = steps[-1]
    assert isinstance(last, RunEnded) and last.reason == "max_session_tokens"
    assert "the limit is 100 (agent.max_session_tokens)" in last.message
    assert [s.turn for s in steps if isinstance(s, TurnStarted)] == [1]


async def test_a_server_crash_mid_session_is_a_step_in_the_stream_and_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_POLICY_EXTERNAL", "auto")
    configure_mcp(fixture=FIXTURE)
    outputs = [
        tool_call("mcp__fixture__crash", {}),
        tool_call("mcp__fixture__echo", {"text": "still here"}),
        "The server came back.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        # After the crash report the echo is asked about (an MCP result is untrusted text).
        session_id, steps = await run_task(url, "Crash it, then echo", says_yes)
    reports = [s for s in steps if isinstance(s, Notice) and s.kind == "mcp_report"]
    assert reports == [
        Notice("mcp_report", "MCP server 'fixture' crashed and was restarted", "fixture")
    ]
    echoed = [s.outcome for s in steps if isinstance(s, ToolCallFinished)][-1]
    assert echoed.status == "ok" and "still here" in echoed.content[0]["text"]
    assert steps[-1] == RunEnded("end_turn", "done")
    logged = read_log(session_log_path(session_id))
    assert {
        "event": "notice",
        "kind": "mcp_report",
        "server": "fixture",
        "message": "MCP server 'fixture' crashed and was restarted",
    } in [{k: v for k, v in e.items() if k != "time"} for e in logged]


async def test_an_answer_cut_off_mid_stream_ends_the_run_with_a_message(tmp_path: Path) -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 0},
        },
    }
    event = f"event: message_start\ndata: {json.dumps(start)}\n\n".encode()

    async def cut_off(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A model server (test fake) that starts an answer and drops the connection."""
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + f"{len(event):x}\r\n".encode() + event + b"\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(cut_off, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, open_session(SessionOptions(endpoint=url, mcp_off=["all"])) as session:
        first = [step async for step in session.send("hello")]
        second = [step async for step in session.send("hello again")]
    for steps in (first, second):
        last = steps[-1]
        assert isinstance(last, RunEnded) and last.reason == "endpoint_error"
        assert last.message.startswith(f"the model server at {url} broke off its answer")
    with Store.open() as store:
        assert [m.role for m in store.messages(session.session_id)] == ["user", "user"]


async def test_a_task_too_long_for_the_window_is_refused_before_a_session_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_SERVER_CONTEXT_WINDOW", "8192")
    task = "Summarise this: " + "lorem ipsum dolor " * 17_000  # ~306,000 characters
    with scripted_server(tmp_path, ["unused"]) as url:
        options = SessionOptions(endpoint=url, title=task[:50], task=task, embedded_endpoint=True)
        with pytest.raises(TaskTooLong) as refused:
            async with open_session(options):
                pass
        # a task that fits opens as before
        fits = SessionOptions(endpoint=url, task="Say hi", embedded_endpoint=True)
        async with open_session(fits) as session:
            assert session.session_id == 1
    said = str(refused.value)
    assert "306,016 characters" in said and "context window is 8,192 tokens" in said
    assert "shorten the task" in said and "--context-window" in said
    with Store.open() as store:
        assert [s.id for s in store.sessions()] == [1]  # none stored for the refused task
