"""Llama 3.1+: the call is a bare JSON object `{"name": ..., "parameters": {...}}`.

The model may put `<|python_tag|>` before it; without the tag, a response is a call
only when it starts with `{` (Meta's prompt-format docs for JSON tool calling). The
official template takes one call per assistant turn, so parallel calls in the history
are written as successive call/result pairs.
"""

from __future__ import annotations

import json
from typing import Any

from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats._conversation import openai_tools, to_template_messages
from deskloop.server.tool_formats._grammar import named_calls
from deskloop.server.tool_formats._json_calls import JsonCallParser
from deskloop.server.tool_formats.base import (
    GuideMode,
    MarkerSyntax,
    TemplateInput,
    ToolCallParser,
    ToolFormat,
)


def one_call_per_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An assistant turn with n calls, followed by n results, becomes n call/result pairs."""
    out: list[dict[str, Any]] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        calls = message.get("tool_calls") or []
        if message["role"] != "assistant" or len(calls) < 2:
            out.append(message)
            index += 1
            continue
        results = []
        index += 1
        while index < len(messages) and messages[index]["role"] == "tool":
            results.append(messages[index])
            index += 1
        by_id = {result.get("tool_call_id"): result for result in results}
        for position, call in enumerate(calls):
            content = message["content"] if position == 0 else ""
            out.append({"role": "assistant", "content": content, "tool_calls": [call]})
            result = by_id.pop(call["id"], None)
            if result is not None:
                out.append(result)
        out.extend(by_id.values())
    return out


class Llama3Format(ToolFormat):
    name = "llama3"
    call_opener = "<|python_tag|>"

    def template_input(
        self, system: str, messages: list[Message], tools: list[Tool]
    ) -> TemplateInput:
        converted = one_call_per_turn(to_template_messages(system, messages))
        return TemplateInput(converted, openai_tools(tools) if tools else None)

    def new_parser(self, tools: list[Tool], *, guided: bool = False) -> ToolCallParser:
        return JsonCallParser(
            tools,
            opener=self.call_opener,
            argument_keys=("parameters", "arguments"),
            bare_object_at_start=True,
            guided=guided,
        )

    def write_call(self, name: str, arguments: dict[str, Any]) -> str:
        return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)

    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        # One call per turn: Llama 3.1 was not trained on parallel calls.
        # Each tool's name in its own tokens (MarkerSyntax.spelled), then its parameters.
        body = named_calls(
            tools, marker, before='{"name": "', between='", "parameters": ', after="}"
        )
        return f"calls: {body}"

    def grammar(
        self, tools: list[Tool], *, mode: GuideMode, parallel: bool, marker: MarkerSyntax
    ) -> str:
        tag = marker(self.call_opener)
        # Text is anything whose first visible character is not `{`.
        text = r"TEXT: /\s*[^{\s](?s:.*)/ | /\s*/"
        if mode == "none":
            return f"start: TEXT\n{text}\n"
        calls = self.call_rules(tools, parallel=parallel, marker=marker)
        # A forced call is the bare object the template's prompt asks for (`<|python_tag|>`
        # is for the built-in tools): without a choice of tag, all of `{"name": "` is forced.
        start = "start: calls" if mode == "forced" else f"start: TEXT | {tag}? calls"
        return f"{start}\n{text}\n{calls}\n"
