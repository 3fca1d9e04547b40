"""With no endpoint set, a session uses the resident embedded model server and a real model."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from urllib.parse import urlparse

import pytest

from deskloop.agent.resident_server import find_resident_server, stop_resident_server
from deskloop.settings import ToolsSettings
from deskloop.store import Store

DESKLOOP = [sys.executable, "-m", "deskloop"]
pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]


@pytest.fixture(autouse=True)
def no_server_left() -> Iterator[None]:
    yield
    stop_resident_server()


def test_run_with_no_endpoint_uses_the_embedded_model_and_leaves_it_resident(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_TURNS", "2")
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_TOKENS_PER_TURN", "24")
    done = subprocess.run(
        [*DESKLOOP, "run", "Say hello in one word.", "--no-mcp", "all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), done.stderr
    with Store.open() as store:
        (session,) = store.sessions()
        roles = [message.role for message in store.messages(session.id)]
        usage = store.usage(session.id)
    endpoint = urlparse(session.endpoint)
    assert endpoint.hostname == "127.0.0.1" and endpoint.port
    assert roles[:2] == ["user", "assistant"]
    assert usage[0].output_tokens > 0
    resident = find_resident_server()  # kept for the next command, until idle
    assert resident is not None and resident.url == session.endpoint


def quick_run_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """One short turn with a small prompt: what is timed is which server answers."""
    monkeypatch.setenv("DESKLOOP_AGENT_OBSERVE_FIRST", "false")
    monkeypatch.setenv("DESKLOOP_AGENT_TOOL_CALLS", "free")
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_TURNS", "1")
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_TOKENS_PER_TURN", "4")
    for family in fields(ToolsSettings):
        monkeypatch.setenv(f"DESKLOOP_TOOLS_{family.name.upper()}", str(family.name == "routines"))


def run_task(task: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*DESKLOOP, "run", task, "--no-mcp", "all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> None:
    _, stderr = process.communicate(timeout=300)
    assert "Traceback" not in stderr, stderr
    assert process.returncode in (0, 1), stderr


def endpoints() -> list[str]:
    with Store.open() as store:
        return [session.endpoint for session in reversed(store.sessions())]


def test_a_second_run_reuses_the_first_runs_server_and_a_killed_one_is_restarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quick_run_environment(monkeypatch)
    finished(run_task("Say hello."))
    first = find_resident_server()
    assert first is not None
    finished(run_task("Say goodbye."))
    second = find_resident_server()
    assert second is not None and (second.server_pid, second.url) == (first.server_pid, first.url)
    os.kill(first.server_pid, signal.SIGKILL)
    finished(run_task("Say thanks."))
    third = find_resident_server()
    assert third is not None and third.server_pid != first.server_pid
    assert endpoints() == [first.url, first.url, third.url]


def test_two_runs_started_at_once_share_one_server(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_run_environment(monkeypatch)
    runs = [run_task("Say hello."), run_task("Say goodbye.")]
    for process in runs:
        finished(process)
    found = find_resident_server()
    assert found is not None
    assert endpoints() == [found.url, found.url]
