"""Every test gets its own DESKLOOP_HOME, so no test reads or writes the user's files."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def deskloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "deskloop-home"
    monkeypatch.setenv("DESKLOOP_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A claude-* name the local server maps to its model, and that the SDK does not deprecate."""
    monkeypatch.setenv("DESKLOOP_AGENT_MODEL", "claude-deskloop-test")
