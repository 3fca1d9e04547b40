"""`deskloop run`, `chat --resume`, `history` and `tools` as a user runs them, in processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted_server import scripted_server, tool_call

from deskloop.agent.events import read_log, session_log_path
from deskloop.agent.loop import INTERRUPTED_TURN
from deskloop.mcp.config import servers_file
from deskloop.store import INTERRUPTED_TOOL_MESSAGE, Store

DESKLOOP = [sys.executable, "-m", "deskloop"]
FIXTURE_SERVER = Path(__file__).parents[1] / "mcp" / "mcp_fixture_server.py"
TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
FIXTURE = {"command": sys.executable, "args": [str(FIXTURE_SERVER)]}
pytestmark = pytest.mark.slow


def configure_mcp(**servers: dict[str, object]) -> None:
    servers_file().parent.mkdir(parents=True, exist_ok=True)
    servers_file().write_text(json.dumps({"mcpServers": servers}))


def deskloop(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DESKLOOP, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_deskloop(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*DESKLOOP, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_event(session_id: int, event: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log = session_log_path(session_id)
        if log.exists() and any(e["event"] == event for e in read_log(log)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {event} event in the session log within 60 s")


def test_run_streams_text_shows_each_tool_call_and_exits_0(tmp_path: Path) -> None:
    configure_mcp(time=TIME_SERVER)
    outputs = [
        tool_call("mcp__time__get_current_time", {"timezone": "Asia/Tokyo"}, "Checking. "),
        "It is evening in Tokyo.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        done = deskloop("run", "What time is it in Tokyo?", "--endpoint", url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Checking."
    assert lines[1] == '→ mcp__time__get_current_time {"timezone": "Asia/Tokyo"}'
    assert lines[2].startswith("  ✓ mcp__time__get_current_time ")
    assert '"timezone": "Asia/Tokyo"' in lines[2]
    assert lines[3] == "It is evening in Tokyo."
    # the model that answers, as the endpoint names it, not the name asked for
    assert done.stderr.splitlines()[0] == f"[session 1: scripted at {url}]"
    assert "2 turns, " in done.stderr and " tokens in " in done.stderr


def test_run_exits_1_and_explains_an_endpoint_mistake(tmp_path: Path) -> None:
    with scripted_server(tmp_path, ["unused"]) as url:
        done = deskloop("run", "hello", "--endpoint", url + "/v1", "--no-mcp", "all")
    assert done.returncode == 1
    assert "does not speak the Anthropic Messages format" in done.stderr
    # it never reached the model: no turns line before the error, no history entry
    assert "[0 turns" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("deskloop: ")
    assert "Traceback" not in done.stderr
    assert deskloop("history").stdout.startswith("no sessions yet")


def test_an_endpoint_that_is_down_is_said_first_before_mcp_servers_start() -> None:
    configure_mcp(fixture=FIXTURE)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    done = deskloop("run", "hello", "--endpoint", url)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"deskloop: nothing is answering at {url} (--endpoint): start the model server there, "
        "or check the URL given to --endpoint, or leave it out to use the embedded model"
    ]
    assert deskloop("history").stdout.startswith("no sessions yet")
    assert not session_log_path(1).exists()
    # the setting's way out is named when the URL came from the setting
    deskloop("config", "set", "agent.endpoint", url)
    chat = deskloop("chat", stdin="hello\n")
    assert chat.returncode == 1
    assert "`deskloop config unset agent.endpoint`" in chat.stderr


def test_ctrl_c_ends_the_turn_and_records_the_interrupted_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_POLICY_EXTERNAL", "auto")
    configure_mcp(fixture=FIXTURE)
    with scripted_server(tmp_path, [tool_call("mcp__fixture__hang", {})]) as url:
        running = start_deskloop("run", "Run the check", "--endpoint", url)
        wait_for_event(1, "tool_start")
        running.send_signal(signal.SIGINT)
        _, stderr = running.communicate(timeout=60)
    assert running.returncode == 130, stderr
    assert stderr.splitlines()[-2:] == ["[interrupted]", stderr.splitlines()[-1]]
    assert "Traceback" not in stderr
    with Store.open() as store:
        assert store.session(1).end_reason == "interrupted"
        (call,) = store.tool_calls(1)
        results, marker = store.messages(1)[-2:]
    assert call.status == "error" and call.is_error
    assert results.content[0]["is_error"] is True
    assert "interrupted by the user" in results.content[0]["content"][0]["text"]
    # the transcript says the turn was cut, so a resume does not take it up again
    assert marker.role == "assistant"
    assert marker.content == [{"type": "text", "text": INTERRUPTED_TURN}]
    transcript = deskloop("history", "1").stdout
    assert f"deskloop> {INTERRUPTED_TURN}" in transcript
    assert "; interrupted: stopped by you" in transcript.splitlines()[1]


def test_a_session_killed_mid_turn_resumes_in_chat_with_a_recap_and_runs_nothing_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_POLICY_EXTERNAL", "auto")
    configure_mcp(fixture=FIXTURE)
    outputs = [
        tool_call("mcp__fixture__hang", {}, "Starting the check."),
        "You're welcome; the check was cut off.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        running = start_deskloop("run", "Run the check", "--endpoint", url)
        wait_for_event(1, "tool_start")
        os.kill(running.pid, signal.SIGKILL)
        running.communicate(timeout=30)

        # No input: the resumed chat shows where it stands and waits; no tool runs.
        quiet = deskloop("chat", "--resume", "1", "--endpoint", url)
        with Store.open() as store:
            calls_after_quiet = len(store.tool_calls(1))
        resumed = deskloop("chat", "--resume", "1", "--endpoint", url, stdin="thanks\n")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    assert lines[0] == f"[session 1: scripted at {url}; Ctrl-D or Ctrl-C at the prompt ends it]"
    assert lines[1] == "resuming: Run the check"
    assert "  you> Run the check" in lines
    assert "  agent> Starting the check." in lines
    assert "    → mcp__fixture__hang {}" in lines
    assert lines[lines.index("    → mcp__fixture__hang {}") + 1].startswith(
        "      ✗ mcp__fixture__hang: interrupted:"
    )
    assert (
        "[interrupted: the process stopped (killed or crashed) before the session ended; its "
        "last turn did not finish and is not run again. Nothing runs until you type.]"
    ) in lines
    assert "You're welcome" not in quiet.stdout
    assert calls_after_quiet == 1

    assert resumed.returncode == 0, resumed.stderr
    assert "You're welcome; the check was cut off." in resumed.stdout
    with Store.open() as store:
        messages = store.messages(1)
        session = store.session(1)
    assert [m.role for m in messages] == ["user", "assistant", "user", "user", "assistant"]
    assert messages[2].content[0]["content"][0]["text"] == INTERRUPTED_TOOL_MESSAGE
    assert messages[3].content == [{"type": "text", "text": "thanks"}]
    assert session.end_reason == "end_turn"  # how its last run ended, not how the chat closed


def test_history_lists_searches_and_prints_a_transcript(tmp_path: Path) -> None:
    with scripted_server(tmp_path, ["Renamed the invoice."]) as url:
        deskloop("run", "Rename the quarterly invoice", "--endpoint", url, "--no-mcp", "all")
    listed = deskloop("history")
    found = deskloop("history", "--search", "quarterly")
    transcript = deskloop("history", "1")
    assert " finished " in listed.stdout and "Rename the quarterly invoice" in listed.stdout
    assert "[quarterly]" in found.stdout and found.stdout.splitlines()[1].split()[0] == "1"
    assert transcript.stdout.splitlines()[2:] == [
        "you> Rename the quarterly invoice",
        "agent> Renamed the invoice.",
    ]


def test_tools_lists_every_tool_with_its_token_cost() -> None:
    configure_mcp(time=TIME_SERVER)
    done = deskloop("tools")
    assert done.returncode == 0, done.stderr
    # Without a desktop here, a last footnote marks the screen tools sessions leave out.
    lines = [line for line in done.stdout.splitlines() if not line.startswith("-  ")]
    header, *rows, total, footnote = lines
    assert header.split() == ["TOKENS", "RISK", "SOURCE", "TOOL"]
    table = {row.split()[3]: (int(row.split()[0]), row.split()[1], row.split()[2]) for row in rows}
    # ask_followup needs a person, so another MCP host does not get it from `mcp serve`.
    assert [row.split()[3] for row in rows if row.endswith("*")] == ["ask_followup"]
    assert footnote.split() == ["*", "not", "offered", "by", "`deskloop", "mcp", "serve`:", "it",
                                "needs", "a", "person", "to", "answer"]
    assert {"ask_followup", "mcp__time__get_current_time", "mcp__time__convert_time"} < set(table)
    assert {"observe", "click", "type_text", "capture_screenshot"} < set(table)
    assert table["mcp__time__convert_time"][1:] == ("read", "mcp:time")
    assert table["click"][1:] == ("act", "screen")
    assert table["mcp__time__convert_time"][0] > table["mcp__time__get_current_time"][0] > 20
    assert total.split()[0] == str(sum(tokens for tokens, _, _ in table.values()))
    assert total.endswith(f"in all: {len(table)} tools, counted with cl100k_base (tiktoken)")
    assert len({row.index(row.split()[3]) for row in [header, *rows]}) == 1  # one column


def test_a_followup_question_is_answered_by_its_option_number(tmp_path: Path) -> None:
    question = tool_call(
        "ask_followup", {"question": "Which report?", "options": ["March", "April"]}
    )
    with scripted_server(tmp_path, [question, "Opening the April report."]) as url:
        done = deskloop("chat", "--endpoint", url, "--no-mcp", "all", stdin="open my report\n2\n")
    assert done.returncode == 0, done.stderr
    assert "? Which report?\n  1. March\n  2. April\n" in done.stdout
    assert "Opening the April report." in done.stdout
    with Store.open() as store:
        messages = store.messages(1)
    assert messages[-2].content == [{"type": "text", "text": "April"}]
