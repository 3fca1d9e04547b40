"""A tool context over a fresh deskloop home for each test: real settings, paths and store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import ToolContext


@pytest.fixture(autouse=True)
def deskloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "deskloop-home"
    monkeypatch.setenv("DESKLOOP_HOME", str(home))
    return home


@pytest.fixture
def store(deskloop_home: Path) -> Iterator[Store]:
    with Store.open() as opened:
        yield opened


@pytest.fixture
def context(store: Store) -> ToolContext:
    return ToolContext(settings=load_settings(), paths=paths(), store=store)
