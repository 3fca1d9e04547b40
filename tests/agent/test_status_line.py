"""The live status line on a terminal: what deskloop is waiting for, erased when output comes.

Runs `deskloop` in a pseudo-terminal, as a person sees it, and piped, as a script sees it.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted_server import scripted_server, tool_call

from deskloop.agent.loop import INTERRUPTED_TURN
from deskloop.mcp.config import servers_file
from deskloop.store import Store

DESKLOOP = [sys.executable, "-m", "deskloop"]
FIXTURE = Path(__file__).parents[1] / "mcp" / "mcp_fixture_server.py"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def quiet_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung MCP tool that times out after 1.5 s, and no screen to read first."""
    monkeypatch.setenv("DESKLOOP_AGENT_POLICY_EXTERNAL", "auto")
    monkeypatch.setenv("DESKLOOP_AGENT_TIMEOUT_MCP_S", "1.5")
    monkeypatch.setenv("DESKLOOP_AGENT_OBSERVE_FIRST", "false")
    servers_file().parent.mkdir(parents=True, exist_ok=True)
    entry = {"command": sys.executable, "args": [str(FIXTURE)]}
    servers_file().write_text(json.dumps({"mcpServers": {"fixture": entry}}))


class Terminal:
    """deskloop on a pseudo-terminal; `raw` is every byte it wrote, `lines` what stays on screen."""

    def __init__(self, *argv: str) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [*DESKLOOP, *argv], stdin=slave, stdout=slave, stderr=slave, close_fds=True
        )
        os.close(slave)
        self.raw = ""

    def read_until(self, wanted: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.raw:
            assert time.monotonic() < deadline, f"no {wanted!r} in {self.raw!r}"
            if not self._read(0.1):
                assert self.process.poll() is None, f"ended before {wanted!r}: {self.raw!r}"

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.1) or self.process.poll() is None:
            assert time.monotonic() < deadline, self.raw
        os.close(self.master)
        return self.process.wait()

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child has gone and the terminal is closed
            return False
        self.raw += chunk.decode(errors="replace")
        return bool(chunk)

    @property
    def lines(self) -> list[str]:
        """The screen's lines as a terminal leaves them: \\r returns, ESC[K erases the rest."""
        lines: list[str] = []
        line: list[str] = []
        cursor = 0
        text = self.raw
        index = 0
        while index < len(text):
            if text.startswith("\x1b[K", index):
                del line[cursor:]
                index += 3
                continue
            char = text[index]
            index += 1
            if char == "\r":
                cursor = 0
            elif char == "\n":
                lines.append("".join(line))
                line, cursor = [], 0
            else:
                if cursor < len(line):
                    line[cursor] = char
                else:
                    line.append(char)
                cursor += 1
        if line:
            lines.append("".join(line))
        return lines


def test_the_status_line_shows_the_wait_and_is_erased_when_output_comes(tmp_path: Path) -> None:
    outputs = [tool_call("mcp__fixture__hang", {}), "The check hung; I stopped."]
    with scripted_server(tmp_path, outputs, prefill_delay_s=1.5) as url:
        terminal = Terminal("run", "Run the check", "--endpoint", url)
        code = terminal.finish()
    assert code == 0
    raw = terminal.raw
    assert "starting the session" in raw
    assert "waiting for the model (" in raw and " prompt tokens) for 1 s" in raw
    assert "running mcp__fixture__hang for 1 s" in raw
    screen = terminal.lines
    # Each status was erased before anything else was written: nothing of it stays.
    assert not [line for line in screen if any(c in line for c in SPINNER)], screen
    assert not [line for line in screen if "waiting for" in line or "running " in line]
    assert "→ mcp__fixture__hang {}" in screen
    assert "The check hung; I stopped." in screen
    assert "Traceback" not in raw


def test_no_status_line_when_the_output_is_piped(tmp_path: Path) -> None:
    outputs = [tool_call("mcp__fixture__hang", {}), "The check hung; I stopped."]
    with scripted_server(tmp_path, outputs, prefill_delay_s=1.5) as url:
        done = subprocess.run(
            [*DESKLOOP, "run", "Run the check", "--endpoint", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "\x1b[K" not in done.stdout + done.stderr
    assert "waiting for" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "→ mcp__fixture__hang {}"


def test_ctrl_c_in_a_chat_turn_says_the_turn_was_interrupted(tmp_path: Path) -> None:
    with scripted_server(tmp_path, ["Too late."], prefill_delay_s=10) as url:
        terminal = Terminal("chat", "--endpoint", url)
        terminal.read_until("you> ")
        terminal.type("hello\n")
        terminal.read_until("waiting for the model")
        terminal.process.send_signal(signal.SIGINT)
        terminal.read_until("[turn interrupted]")
        terminal.read_until("you> ")
        terminal.type("\x04")  # Ctrl-D ends the chat
        code = terminal.finish()
    assert code == 0
    assert "[turn interrupted]" in terminal.lines
    assert "Traceback" not in terminal.raw
    with Store.open() as store:
        last = store.messages(1)[-1]
    assert last.role == "assistant" and last.content[0]["text"] == INTERRUPTED_TURN
