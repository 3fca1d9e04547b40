"""The Tool contract every native, screen and MCP tool meets, and the errors a tool may raise."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from deskloop.errors import DeskloopError
from deskloop.screen import ScreenSession
from deskloop.settings import Paths, Settings

# One definition of a content block, shared with the store that keeps them.
from deskloop.store import ContentBlock as ContentBlock
from deskloop.store import Store

ToolInput = dict[str, Any]
RiskClass = Literal["read", "act", "destructive", "external"]
RISK_CLASSES: tuple[RiskClass, ...] = ("read", "act", "destructive", "external")

# The Messages API accepts tool names matching ^[a-zA-Z0-9_-]{1,64}$ (Anthropic tool-use docs).
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class TimeoutTier(StrEnum):
    """Which timeout applies: internal tools 10 s, MCP tools 120 s, everything else 300 s."""

    INTERNAL = "internal"
    MCP = "mcp"
    OTHER = "other"


class ToolError(DeskloopError):
    """Raised by a tool for a failure the model can read and correct from."""


class BadToolArguments(ToolError):
    """The arguments were wrong: missing, of the wrong shape, or naming nothing that exists."""


class ToolFailed(ToolError):
    """The tool ran and could not do its job (an app closed, a server crashed, a file is gone)."""


class ToolTimedOut(ToolFailed):
    """The call ran past its timeout tier and was cancelled."""


@dataclass
class ToolContext:
    """What a running tool may know about its session, loaded once by whoever opens it."""

    settings: Settings
    paths: Paths
    store: Store
    session_id: int | None = None
    # Routines and observer runs: nobody is there to ask, so nothing ever prompts.
    unattended: bool = False
    # A routine's approved tool list; None means every tool the session has.
    allowed_tools: frozenset[str] | None = None
    # Called when the session ends, for what tools opened (a screen connection, say).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The user's task as given; the screen's first observation looks at the window it names.
    task: str = ""
    # The step of the task being done (small models go step by step); empty otherwise.
    step: str = ""
    # Per-session connections, each created on first use by its family.
    screen: ScreenSession | None = None
    browser: object | None = None

    async def aclose(self) -> None:
        while self.closers:
            await self.closers.pop()()


ToolOutput = str | Sequence[ContentBlock]
ToolFunction = Callable[[ToolInput, ToolContext], Awaitable[ToolOutput]]
RiskClassifier = Callable[[ToolInput], RiskClass]


@dataclass(frozen=True)
class Tool:
    """One tool as the model sees it (name, description, schema) plus how deskloop runs it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    risk: RiskClass
    timeout_tier: TimeoutTier
    run: ToolFunction
    # Where the tool comes from: "native", "screen", or "mcp:<server>".
    source: str = "native"
    # True when its result carries text from outside: the screen, a web page, a file, MCP.
    untrusted: bool = False
    # For a tool whose risk depends on its input (a SELECT reads, an UPDATE destroys).
    classify: RiskClassifier | None = None
    # What a person approves, in words, shown when the policy asks (a routine's tool list).
    explain: Callable[[ToolInput], str] | None = None

    def risk_for(self, tool_input: ToolInput) -> RiskClass:
        """The risk class of this call: `classify(input)` when given, else `risk`."""
        return self.classify(tool_input) if self.classify is not None else self.risk

    def definition(self) -> dict[str, Any]:
        """The entry for the `tools` list of a Messages API request."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


def text_block(text: str) -> ContentBlock:
    return {"type": "text", "text": text}


def result_blocks(output: ToolOutput) -> list[ContentBlock]:
    """A tool's output as `tool_result` content blocks; a bare string becomes one text block."""
    if isinstance(output, str):
        return [text_block(output)]
    return [dict(block) for block in output]


@dataclass(frozen=True)
class ToolFamily:
    """A group of tools built together, switched on or off by the setting `tools.<name>`."""

    name: str
    # One line for the system prompt: which surface or job the family serves.
    routing: str
    build: Callable[[ToolContext], list[Tool]]
    # Needs a person or the loop to answer (ask_followup): left out of `deskloop mcp serve`.
    needs_person: bool = False
