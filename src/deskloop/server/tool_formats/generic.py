"""The generic format, for models without a tool template (the embedded SmolLM2).

Tools are explained in the system message as compact signatures; calls are
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` and results come back as user
text in `<tool_response>` blocks.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from deskloop.server.protocol import Message, Tool, ToolResultBlock, ToolUseBlock
from deskloop.server.tool_formats._conversation import result_text, to_template_messages
from deskloop.server.tool_formats._grammar import named_calls
from deskloop.server.tool_formats._json_calls import JsonCallParser
from deskloop.server.tool_formats.base import (
    MarkerSyntax,
    TemplateInput,
    ToolCallParser,
    ToolFormat,
)


def _parameter(name: str, schema: Any, required: bool) -> str:
    if not isinstance(schema, dict):
        return name
    values = schema.get("enum")
    kind = (
        " | ".join(json.dumps(v) for v in values)
        if isinstance(values, list)
        else schema.get("type", "any")
    )
    hint = f" ({schema['description']})" if isinstance(schema.get("description"), str) else ""
    return f"{name}{'' if required else '?'}: {kind}{hint}"


def signature(tool: Tool) -> str:
    """`name(arg: type, opt?: type): description`: compact, the grammar enforces the rest."""
    schema = tool.input_schema
    properties = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required", []))
    parameters = ", ".join(
        _parameter(name, sub, name in required) for name, sub in properties.items()
    )
    return f"{tool.name}({parameters}): {tool.description or ''}".rstrip(": ")


CALL_TO_NAME = '{"name": "'
NAME_TO_ARGUMENTS = '", "arguments": '


class GenericFormat(ToolFormat):
    name = "generic"
    call_opener = "<tool_call>"
    call_closer: ClassVar[str] = "</tool_call>"
    closers = ('"', "}", "]", "</tool_call>")

    def write_call(self, name: str, arguments: Any) -> str:
        call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        return f"{self.call_opener}{call}{self.call_closer}"

    def tools_explanation(self, tools: list[Tool]) -> str:
        # Signatures, not JSON schemas and no example call: on bench_tools (SmolLM2-135M,
        # guided) full schemas plus a click example gave the right tool in 1 of 7 cases
        # (always the example's), signatures in 7 of 14, and 348 prompt tokens, not 910.
        listing = "\n".join(f"- {signature(tool)}" for tool in tools)
        return (
            "You can use these tools:\n"
            f"{listing}\n\n"
            "To use a tool, answer with one line of this form:\n"
            '<tool_call>{"name": "TOOL_NAME", "arguments": {"ARGUMENT": VALUE}}</tool_call>\n'
            "Tool results come back in <tool_response> blocks. "
            "When no tool is needed, answer in plain text."
        )

    def template_input(
        self, system: str, messages: list[Message], tools: list[Tool]
    ) -> TemplateInput:
        if tools:
            system = (
                f"{system}\n\n{self.tools_explanation(tools)}"
                if system
                else self.tools_explanation(tools)
            )

        def write_call(block: ToolUseBlock) -> str:
            return self.write_call(block.name, block.input)

        def write_result(name: str, block: ToolResultBlock) -> str:
            return f'<tool_response name="{name}">\n{result_text(block)}\n</tool_response>'

        return TemplateInput(
            to_template_messages(system, messages, write_call=write_call, write_result=write_result)
        )

    def new_parser(self, tools: list[Tool], *, guided: bool = False) -> ToolCallParser:
        return JsonCallParser(
            tools, opener=self.call_opener, closer=self.call_closer, guided=guided
        )

    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        # One call per turn, whatever `parallel` says: models without tool training repeat
        # calls when allowed several (SmolLM2-135M, guided: click e10, e11, e12... until
        # max_tokens). Answering with one call is always a valid answer.
        # The name in its own tokens, then that tool's arguments: the same text as
        # {"name": ..., "arguments": ...} in one schema, but a name cannot start with a
        # one-letter token that several names share (MarkerSyntax.spelled).
        choices = named_calls(
            tools, marker, before=CALL_TO_NAME, between=NAME_TO_ARGUMENTS, after="}"
        )
        return f"calls: call\ncall: body {marker(self.call_closer)}\nbody: {choices}"
