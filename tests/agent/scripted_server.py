"""A real `deskloop serve` on the scripted engine (a test fake, asked for by name) on a free port."""

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def tool_call(name: str, arguments: dict[str, Any], text: str = "") -> str:
    """Model output that the server's generic tool format turns into a tool_use block."""
    call = json.dumps({"name": name, "arguments": arguments})
    return f"{text}<tool_call>{call}</tool_call>"


@contextmanager
def scripted_server(
    folder: Path,
    outputs: list[str],
    *,
    repeat_last: bool = False,
    api_key: str = "",
    **script_options: Any,
) -> Iterator[str]:
    """`script_options` go into the script: token_delay_s, prefill_delay_s (see engines/scripted)."""
    script = folder / "script.json"
    script.write_text(
        json.dumps({"outputs": outputs, "repeat_last": repeat_last, **script_options})
    )
    command = [sys.executable, "-m", "deskloop", "serve", "--engine", "scripted"]
    if api_key:
        command += ["--api-key", api_key]
    server = subprocess.Popen(
        # A token per byte: a session's tools and first screen alone pass 8192 of them.
        [*command, "--script", str(script), "--port", "0", "--tool-format", "generic",
         "--context-window", "32768"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert " at http" in ready, ready
        yield ready.rsplit(" at ", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
