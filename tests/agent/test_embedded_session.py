"""With no endpoint set, a session starts the embedded model server and talks to a real model."""

import socket
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from deskloop.store import Store

DESKLOOP = [sys.executable, "-m", "deskloop"]
pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]


def test_run_with_no_endpoint_uses_the_embedded_model_and_leaves_no_server(
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
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", endpoint.port), 2):
        pass  # the embedded server went away with the session
