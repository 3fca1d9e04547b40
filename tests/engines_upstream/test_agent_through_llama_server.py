"""The agent end to end through an upstream (issue 19): `deskloop run --endpoint` at
`deskloop serve --engine openai` in front of llama-server serving Qwen2.5-Coder-0.5B
selects "Page 2" in gtk3-widget-factory on a virtual desktop."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.engines_upstream.llama_server import qwen_gguf, serving

from deskloop.screen.virtual_desktop import TEST_APPS, VirtualDesktop

pytestmark = [pytest.mark.slow, pytest.mark.desktop, pytest.mark.llama_server]

FACTORY = next(spec for spec in TEST_APPS if spec.atspi_name == "gtk3-widget-factory")
# A 0.5B model on 2 shared cores prefills about 42 tokens/s (PROTOCOL-NOTES.md): the first
# turn of a session takes minutes, later ones reuse llama-server's prompt cache.
SESSION_SECONDS = 900


@pytest.fixture
def desktop() -> Iterator[VirtualDesktop]:
    if shutil.which("Xvfb") is None or shutil.which("gtk3-widget-factory") is None:
        pytest.skip("needs Xvfb and gtk3-widget-factory")
    running = VirtualDesktop.start(apps=(FACTORY,))
    try:
        running.wait_for_trees(apps=(FACTORY,))
        yield running
    finally:
        running.stop()


def page_two_shown(desktop: VirtualDesktop) -> bool:
    """Whether the factory's "Page 2" (its tab, or the switcher's radio) is selected."""
    from deskloop.screen.actions import ScreenSession
    from deskloop.screen.backends.atspi.backend import AtspiBackend

    async def read() -> bool:
        backend = await AtspiBackend.connect()
        try:
            result = await ScreenSession(backend).observe(app=FACTORY.atspi_name, budget=2000)
        finally:
            await backend.close()
        assert result.snapshot is not None
        return any(
            (element.name or "").lower() == "page 2"
            and element.states & {"selected", "checked"}
            and element.role in ("tab", "radio", "page tab")
            for element in result.snapshot
        )

    with desktop.environment():
        return asyncio.run(read())


def start_serve(upstream: str, log_path: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "deskloop", "serve", "--engine", "openai",
               "--upstream", f"{upstream}/v1", "--port", "0"]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"at (http://\S+)", line)
        if found:
            return process, found.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"deskloop serve did not start:\n{log_path.read_text()[-3000:]}")


def test_the_agent_selects_page_two_through_llama_server(
    desktop: VirtualDesktop, tmp_path: Path
) -> None:
    assert not page_two_shown(desktop)
    with serving(qwen_gguf(), context=8192) as upstream:
        serve, url = start_serve(upstream, tmp_path / "serve.log")
        try:
            env = {
                **os.environ,
                **desktop.env,
                "DESKLOOP_HOME": str(tmp_path / "home"),
                "DESKLOOP_AGENT_MODEL": "claude-deskloop-test",
            }
            command = [
                sys.executable, "-m", "deskloop", "run",
                "Select Page 2 in gtk3-widget-factory.", "--endpoint", url,
                "--max-turns", "6", "--max-seconds", str(SESSION_SECONDS),
            ]  # fmt: skip
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=SESSION_SECONDS + 120
            )
        finally:
            serve.terminate()
            serve.wait(timeout=15)
            assert serve.stdout is not None
            serve.stdout.close()
    transcript = done.stdout + done.stderr
    (tmp_path / "transcript.txt").write_text(transcript)
    time.sleep(0.3)  # synthetic input lands late under load
    assert page_two_shown(desktop), transcript[-4000:]
