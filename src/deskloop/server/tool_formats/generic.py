"""The generic format, for models without a tool template (the embedded SmolLM2).

Tools are explained in the system message, with an example call built from the first
tool's schema; calls are `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` and
results come back as user text in `<tool_response>` blocks.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from deskloop.server.protocol import Message, Tool, ToolResultBlock, ToolUseBlock
from deskloop.server.tool_formats._conversation import result_text, to_template_messages
from deskloop.server.tool_formats._grammar import call_object_schema, json_rule
from deskloop.server.tool_formats._json_calls import JsonCallParser
from deskloop.server.tool_formats.base import (
    MarkerSyntax,
    TemplateInput,
    ToolCallParser,
    ToolFormat,
)


def example_value(schema: Any) -> Any:
    """A plausible value for `schema`, for the example call shown to the model."""
    if not isinstance(schema, dict):
        return "..."
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "string")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = schema.get("required", list(properties)[:1])
        return {
            name: example_value(properties.get(name)) for name in required if name in properties
        }
    if kind == "array":
        return [example_value(schema.get("items"))]
    return {"integer": 1, "number": 1.0, "boolean": True, "null": None}.get(str(kind), "...")


class GenericFormat(ToolFormat):
    name = "generic"
    call_opener = "<tool_call>"
    call_closer: ClassVar[str] = "</tool_call>"

    def write_call(self, name: str, arguments: Any) -> str:
        call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        return f"{self.call_opener}{call}{self.call_closer}"

    def tools_explanation(self, tools: list[Tool]) -> str:
        listing = "\n".join(
            json.dumps(
                {
                    "name": tool.name,
                    "description": tool.description or "",
                    "input_schema": tool.input_schema,
                },
                ensure_ascii=False,
            )
            for tool in tools
        )
        example = self.write_call(tools[0].name, example_value(tools[0].input_schema))
        return (
            "You can call these tools:\n"
            f"{listing}\n\n"
            "To call a tool, write a line of this form, with arguments that follow its input_schema:\n"
            '<tool_call>{"name": "TOOL_NAME", "arguments": {...}}</tool_call>\n'
            f"For example:\n{example}\n"
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
        body = json_rule(call_object_schema(tools, arguments_key="arguments"))
        return f"calls: call\ncall: body {marker(self.call_closer)}\nbody: {body}"
