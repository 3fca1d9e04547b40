"""The native tools' fixtures: the shared tool context (tests/conftest.py) and its store."""

from __future__ import annotations

import pytest

from deskloop.store import Store
from deskloop.tools import ToolContext


@pytest.fixture
def context(tool_context: ToolContext) -> ToolContext:
    return tool_context


@pytest.fixture
def store(tool_context: ToolContext) -> Store:
    return tool_context.store
