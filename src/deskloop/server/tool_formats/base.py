"""The surface every tool-call format family shares.

A format knows three things about one family of models: how Anthropic tools, tool_use
and tool_result blocks are put into the chat template's input; how the model's output
text is parsed back into tool calls, incrementally; and the grammar of a call, so the
in-process engines can constrain generation to valid calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from deskloop.server.protocol import Message, Tool


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
    """A call that could not be parsed or validated; `raw` is the model's text for it."""

    raw: str
    reason: str


ParsedEvent = ParsedText | ParsedCallStart | ParsedInputDelta | ParsedCallEnd | ParsedCallInvalid


class ToolCallParser(ABC):
    """Turns model output, fed in arbitrary pieces, into text and tool-call events."""

    @abstractmethod
    def feed(self, text: str) -> list[ParsedEvent]: ...

    @abstractmethod
    def finish(self) -> list[ParsedEvent]:
        """End of output: flush held-back text; an unfinished call becomes ParsedCallInvalid."""


class ToolFormat(ABC):
    name: ClassVar[str]
    # Text that opens a call in the model's output (e.g. "<tool_call>").
    call_opener: ClassVar[str]

    @abstractmethod
    def template_input(self, system: str, messages: list[Message], tools: list[Tool]) -> TemplateInput:
        """Chat-template input for a conversation (system text already cleaned)."""

    @abstractmethod
    def new_parser(self, tools: list[Tool]) -> ToolCallParser: ...

    @abstractmethod
    def call_grammar(self, tools: list[Tool], *, parallel: bool) -> str:
        """Lark grammar (llguidance dialect) for one or more calls, starting at `call_opener`."""
