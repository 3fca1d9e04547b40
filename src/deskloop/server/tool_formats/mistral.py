"""Mistral: `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]` (tokenizer v3 to v7), and
`[TOOL_CALLS]NAME[ARGS]{...}` per call (tokenizer v11+: Mistral Small 3.2, Devstral).

Mistral's templates refuse tool-call ids that are not 9 alphanumeric characters, so
`toolu_` ids are mapped to stable 9-character ids. Both parsers read both shapes.
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats._conversation import openai_tools, to_template_messages
from deskloop.server.tool_formats._grammar import (
    input_schema,
    json_rule,
    json_schema_with_style,
    named_calls,
)
from deskloop.server.tool_formats._json_calls import JsonCallParser
from deskloop.server.tool_formats.base import (
    MarkerSyntax,
    TemplateInput,
    ToolCallParser,
    ToolFormat,
)

_ALPHABET = string.ascii_letters + string.digits
ARGS = "[ARGS]"


def mistral_call_id(tool_use_id: str) -> str:
    """A stable 9-character alphanumeric id for a tool_use id."""
    number = int.from_bytes(hashlib.sha256(tool_use_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)


class MistralFormat(ToolFormat):
    name = "mistral"
    call_opener = "[TOOL_CALLS]"

    def template_input(
        self, system: str, messages: list[Message], tools: list[Tool]
    ) -> TemplateInput:
        converted = to_template_messages(system, messages, call_id=mistral_call_id)
        return TemplateInput(converted, openai_tools(tools) if tools else None)

    def new_parser(self, tools: list[Tool], *, guided: bool = False) -> ToolCallParser:
        return JsonCallParser(
            tools, opener=self.call_opener, array_body=True, name_marker=ARGS, guided=guided
        )

    def write_call(self, name: str, arguments: dict[str, Any]) -> str:
        call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        return f"{self.call_opener} [{call}]"

    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        more = ' (", " body)*' if parallel else ""
        # Each tool's name in its own tokens (MarkerSyntax.spelled), then its arguments.
        body = named_calls(
            tools, marker, before='{"name": "', between='", "arguments": ', after="}"
        )
        return f'calls: " "? "[" body{more} "]"\nbody: {body}'


class MistralV11Format(MistralFormat):
    """Tokenizer v11+: one `[TOOL_CALLS]NAME[ARGS]{...}` per call."""

    name = "mistral_v11"

    def write_call(self, name: str, arguments: dict[str, Any]) -> str:
        return f"{self.call_opener}{name}{ARGS}{json.dumps(arguments, ensure_ascii=False)}"

    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        more = f" ({marker(self.call_opener)} call)*" if parallel else ""
        lines = [f"calls: call{more}", "call: " + " | ".join(f"f{i}" for i in range(len(tools)))]
        for index, tool in enumerate(tools):
            schema = json_rule(json_schema_with_style(input_schema(tool)))
            lines.append(f"f{index}: {marker.spelled(tool.name)} {marker(ARGS)} {schema}")
        return "\n".join(lines)
