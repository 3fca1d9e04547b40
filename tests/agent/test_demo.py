"""`deskloop demo` end to end: its own virtual desktop, a real Mousepad, a scripted model."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from scripted_server import scripted_server, tool_call

pytestmark = [pytest.mark.slow, pytest.mark.desktop]


def scripted_demo(tmp_path: Path, outputs: list[str]) -> subprocess.CompletedProcess[str]:
    """`deskloop demo` on its own virtual desktop, the model a scripted server."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
    with scripted_server(tmp_path, outputs) as url:
        return subprocess.run(
            [sys.executable, "-m", "deskloop", "demo", "--endpoint", url],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )


def test_demo_types_into_mousepad_on_its_own_desktop(tmp_path: Path) -> None:
    outputs = [tool_call("type_text", {"text": "hello from deskloop"}), "I typed the line."]
    result = scripted_demo(tmp_path, outputs)
    assert result.returncode == 0, result.stderr
    assert "virtual desktop" in result.stderr
    assert "type_text" in result.stdout + result.stderr
    # The closing observation of Mousepad shows the typed line in its text field.
    assert 'entry = "hello from deskloop"' in result.stdout


def test_demo_is_not_a_success_when_the_model_typed_something_else(tmp_path: Path) -> None:
    """The embedded model once typed "type_text" and said it was done: that is exit 1."""
    outputs = [tool_call("type_text", {"text": "type_text"}), "I typed the line."]
    result = scripted_demo(tmp_path, outputs)
    assert result.returncode == 1, result.stderr
    assert 'the model said it was done, but mousepad shows no "hello"' in result.stderr
    assert 'entry = "type_text"' in result.stdout


def test_demo_here_without_a_display_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    result = subprocess.run(
        [sys.executable, "-m", "deskloop", "demo", "--here"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "needs a display" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.llamacpp
def test_demo_on_the_embedded_model_is_recorded(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """What the embedded model does with the demo's own task, kept in the test report
    (its sampling is not fixed, so the outcome is recorded rather than required)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
    result = subprocess.run(
        [sys.executable, "-m", "deskloop", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    record_property("demo_exit_code", result.returncode)
    record_property("demo_transcript", result.stdout[-3000:])
    print(f"deskloop demo on the embedded model: exit {result.returncode}\n{result.stdout}")
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1), result.stderr
    assert "→ " in result.stdout  # it acted through its tools
    # A runaway answer is stopped early, never cut at max_tokens.
    assert "the answer was cut at" not in result.stdout + result.stderr
