"""The surface every tool-call format family shares.

A format knows three things about one family of models: how Anthropic tools, tool_use
and tool_result blocks are put into the chat template's input; how the model's output
text is parsed back into tool calls, incrementally; and the grammar of a call, so the
in-process engines can constrain generation to valid calls.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from deskloop.server.protocol import Message, Tool
from deskloop.server.tool_formats._conversation import openai_tools, to_template_messages


@dataclass(frozen=True)
class TemplateInput:
    """What the chat template is rendered with (Hugging Face chat-template conventions).

    `messages` use role/content plus `tool_calls` (assistant) and role `tool` with
    `tool_call_id`; `tools` is the OpenAI-style function list for templates that render
    tools themselves, or None when the format explains tools in the system message.
    """

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ParsedText:
    text: str


@dataclass(frozen=True)
class ParsedCallStart:
    name: str


@dataclass(frozen=True)
class ParsedInputDelta:
    partial_json: str


@dataclass(frozen=True)
class ParsedCallEnd:
    input: dict[str, Any]


@dataclass(frozen=True)
class ParsedCallInvalid:
    """A call that could not be parsed or validated; `raw` is the model's text for it.

    Only a guided parser can report this after a `ParsedCallStart` (its input streams
    before validation); an unguided parser validates before it starts a call.
    """

    raw: str
    reason: str


ParsedEvent = ParsedText | ParsedCallStart | ParsedInputDelta | ParsedCallEnd | ParsedCallInvalid

GuideMode = Literal["auto", "forced", "none"]

# Up to this many values, a choice is scored whole in one batched evaluation (issue 17).
CHOICE_LIMIT = 64


@dataclass(frozen=True)
class ValueChoice:
    """A place in a call where one of a few whole values goes (ids on screen, app names).

    `opening` is the text right before the value, `values` the values as the call writes
    them, `closing` the text (or marker) that ends one. The decoder scores each value whole:
    token by token a small model picks an id by its first digit.
    """

    opening: str
    values: tuple[str, ...]
    closing: str


def small_enums(schema: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(property, values) for each top-level property of `schema` that is a choice among
    2 to CHOICE_LIMIT strings."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    found = []
    for name, sub in properties.items():
        values = sub.get("enum") if isinstance(sub, dict) else None
        if (
            isinstance(values, list)
            and 2 <= len(values) <= CHOICE_LIMIT
            and all(isinstance(value, str) for value in values)
        ):
            found.append((name, values))
    return found


class ToolCallParser(ABC):
    """Turns model output, fed in arbitrary pieces, into text and tool-call events."""

    @abstractmethod
    def feed(self, text: str) -> list[ParsedEvent]: ...

    @abstractmethod
    def finish(self) -> list[ParsedEvent]:
        """End of output: flush held-back text; an unfinished call becomes ParsedCallInvalid."""


class MarkerSyntax(Protocol):
    """Lark expressions for fixed text, in terms of the model's vocabulary."""

    def __call__(self, text: str) -> str:
        """A marker: a special token (`<tool_call>`) when the vocabulary has it as one, a
        quoted string otherwise."""
        ...

    def spelled(self, text: str, *, before: str = "", after: str = "") -> str:
        """`before + text + after`, with `text` in the tokens the vocabulary writes for it
        there (a token that also covers a bit of `before` or `after` comes along), for a
        choice among names: otherwise a one-letter token such as `t` stands for every name
        that starts with it, and a small model picks it for what it wanted to write after
        (measured: SmolLM2-135M wanted "toggle", took `t`, and was held to "type_text"
        instead of "click", in 13 of 14 tasks of bench tasks)."""
        ...


def lark_string(text: str) -> str:
    """A Lark string literal matching `text` exactly."""
    return json.dumps(text)


def lark_regex_escape(text: str) -> str:
    """`text` escaped for use inside a Lark `/.../` regex."""
    return re.escape(text).replace("/", "\\/")


class ToolFormat(ABC):
    """One model family's tool calls: prompt input, output parser and call grammar."""

    name: ClassVar[str]
    # Text that opens a call in the model's output (e.g. "<tool_call>").
    call_opener: ClassVar[str]
    # Texts (or markers) that end what a call has open, tried in this order when a call must
    # be closed within the tokens left: a string, an object, a list, the call.
    closers: ClassVar[tuple[str, ...]] = ('"', "}", "]")

    def template_input(
        self, system: str, messages: list[Message], tools: list[Tool]
    ) -> TemplateInput:
        """Chat-template input for a conversation (system text already cleaned).

        By default the model's template renders the tools and past calls itself; formats
        whose templates cannot override this.
        """
        return TemplateInput(
            to_template_messages(system, messages), openai_tools(tools) if tools else None
        )

    @abstractmethod
    def new_parser(self, tools: list[Tool], *, guided: bool = False) -> ToolCallParser:
        """A parser for one response.

        `guided`: the output was generated under `grammar`, so a call's input may stream
        as it arrives; unguided, a call is validated (and repaired) before it starts.
        """

    def value_choices(self, tools: list[Tool]) -> list[ValueChoice]:
        """Where calls choose among a few values; the JSON families write `"key": "VALUE"`."""
        return [
            ValueChoice(
                f'{json.dumps(key, ensure_ascii=False)}: "',
                tuple(json.dumps(value, ensure_ascii=False)[1:-1] for value in values),
                '"',
            )
            for tool in tools
            for key, values in small_enums(tool.input_schema)
        ]

    @abstractmethod
    def write_call(self, name: str, arguments: dict[str, Any]) -> str:
        """One call as this family's model writes it (what its grammar accepts), arguments
        in the order given; for measuring what the grammar forces and for tests."""

    @abstractmethod
    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        """Lark rules defining `calls`: everything after the first opener, to the last call's end."""

    def grammar(
        self, tools: list[Tool], *, mode: GuideMode, parallel: bool, marker: MarkerSyntax
    ) -> str:
        """The whole-response Lark grammar (llguidance dialect) for a tool_choice mode.

        auto: free text, and once the opener appears, valid calls only, then the end;
        forced: a call from the first token; none: text that never opens a call.
        """
        opener = marker(self.call_opener)
        calls = self.call_rules(tools, parallel=parallel, marker=marker)
        if opener.startswith('"'):
            escaped = lark_regex_escape(self.call_opener)
            free = f"FREE: /(?s:.*)/ & ~/(?s:.*){escaped}(?s:.*)/"
            # Lazy: the prelude ends as soon as the opener is written (llguidance docs/syntax.md).
            prelude = f"prelude[lazy]: /(?s:.*){escaped}/"
            auto = "start: FREE | prelude calls"
        else:
            # A special-token opener cannot occur inside free text, so it ends the text.
            free = "FREE: /(?s:.*)/"
            prelude = ""
            auto = f"start: FREE | FREE? {opener} calls"
        if mode == "none":
            return f"start: FREE\n{free}\n"
        if mode == "forced":
            return f"start: {opener} calls\n{calls}\n"
        return "\n".join(line for line in (auto, free, prelude, calls) if line) + "\n"
