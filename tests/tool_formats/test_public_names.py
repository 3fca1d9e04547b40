"""The tool-format package exposes exactly its intended names, and every family the same surface."""

from __future__ import annotations

import pytest

import deskloop.server.tool_formats as tool_formats
from deskloop.server.tool_formats import TOOL_FORMATS, tool_format
from deskloop.server.tool_formats.base import ToolFormat


def test_public_names() -> None:
    assert sorted(tool_formats.__all__) == [
        "TOOL_FORMATS",
        "UnknownToolFormat",
        "choose_tool_format",
        "detect_tool_format",
        "tool_format",
    ]


@pytest.mark.parametrize("name", sorted(TOOL_FORMATS))
def test_every_family_is_registered_under_its_own_name(name: str) -> None:
    fmt = tool_format(name)
    assert isinstance(fmt, ToolFormat)
    assert fmt.name == name
    assert fmt.call_opener
