"""Every test gets its own deskloop home: no test reads or writes the user's real settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import ToolContext


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need llama-server run last in their group: scripts/test.sh builds it (about
    12 minutes of CPU) beside the tests, and a test that asks earlier waits for the build."""
    items.sort(key=lambda item: item.get_closest_marker("llama_server") is not None)


@pytest.fixture(autouse=True)
def deskloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "deskloop-home"
    monkeypatch.setenv("DESKLOOP_HOME", str(home))
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def tool_context(deskloop_home: Path) -> Iterator[ToolContext]:
    """What a session hands its tools: settings, paths and an open store in the test's home."""
    with Store.open() as store:
        yield ToolContext(settings=load_settings(), paths=paths(), store=store)
