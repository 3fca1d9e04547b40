"""Hermes / Qwen2.5 / Qwen3: `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`.

The chat template renders `tools` and past `tool_calls` itself; results go in as role
`tool` (Qwen templates wrap them in `<tool_response>`).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from deskloop.server.protocol import Tool
from deskloop.server.tool_formats._grammar import named_calls
from deskloop.server.tool_formats._json_calls import JsonCallParser
from deskloop.server.tool_formats.base import (
    MarkerSyntax,
    ToolCallParser,
    ToolFormat,
)


class HermesFormat(ToolFormat):
    name = "hermes"
    call_opener = "<tool_call>"
    call_closer: ClassVar[str] = "</tool_call>"
    closers = ('"', "}", "]", "</tool_call>")

    def new_parser(self, tools: list[Tool], *, guided: bool = False) -> ToolCallParser:
        return JsonCallParser(
            tools, opener=self.call_opener, closer=self.call_closer, guided=guided
        )

    def write_call(self, name: str, arguments: dict[str, Any]) -> str:
        call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        return f"{self.call_opener}\n{call}\n{self.call_closer}"

    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        # Each tool's name in its own tokens (MarkerSyntax.spelled), then its arguments.
        body = named_calls(
            tools, marker, before='{"name": "', between='", "arguments": ', after="}"
        )
        more = f' ("\\n"? {marker(self.call_opener)} call)*' if parallel else ""
        # The newlines Qwen's template writes around the object, fixed: optional, each was a
        # choice (a forward pass) in every call; fixed, they are forced with the rest.
        return f'calls: call{more}\ncall: "\\n" body "\\n" {marker(self.call_closer)}\nbody: {body}'
