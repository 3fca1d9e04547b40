"""Choosing the endpoint, and the embedded server living exactly as long as its parent."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskloop.agent.endpoint import LOCAL_API_KEY, resolve_endpoint
from deskloop.settings import AgentSettings


def test_the_first_endpoint_that_is_set_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://from-env:1")
    configured = AgentSettings(endpoint="http://from-setting:2/")
    assert resolve_endpoint(configured, "http://from-flag:3").url == "http://from-flag:3"
    assert resolve_endpoint(configured).url == "http://from-setting:2"
    assert resolve_endpoint(AgentSettings()).url == "http://from-env:1"
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    embedded = resolve_endpoint(AgentSettings())
    assert embedded.url is None and embedded.source == "the embedded server"
    assert embedded.api_key == LOCAL_API_KEY
    assert resolve_endpoint(AgentSettings(api_key="sk-1")).api_key == "sk-1"


SPAWNS_THEN_WAITS = """
import sys, time
from deskloop.agent.endpoint import EmbeddedServer
server = EmbeddedServer(["--engine", "scripted", "--script", sys.argv[1]])
print(server.start(), flush=True)
time.sleep(120)
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux's prctl")
def test_the_embedded_server_dies_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"outputs": ["hi"]}))
    parent = subprocess.Popen(
        [sys.executable, "-c", SPAWNS_THEN_WAITS, str(script)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    url = parent.stdout.readline().strip()
    port = int(url.rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.1)
    raise AssertionError(f"the embedded server at {url} outlived its parent")
