"""Scaffolding for parsers that run as state machines over held-back text (Gemma, Qwen3-Coder).

Text is held until a step can decide it; `_step_<state>` methods consume it. Outside a
call the machine looks for the opener, passing text through and holding back only what
could still be the opener's start.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from deskloop.server.protocol import Tool
from deskloop.server.tool_formats._text import TextSink, partial_suffix
from deskloop.server.tool_formats.base import ParsedCallInvalid, ParsedEvent, ToolCallParser


class StepwiseParser(ToolCallParser):
    opener: ClassVar[str]
    closer: ClassVar[str]
    first_call_state: ClassVar[str]
    call_states: ClassVar[frozenset[str]]  # states in which the output may not end

    def __init__(self, tools: list[Tool], *, guided: bool):
        self.tools = {tool.name: tool for tool in tools}
        self.guided = guided
        self._held = ""
        self._state = "text"
        self._raw = ""  # the current call's text so far
        self._events: list[ParsedEvent] = []
        self._text = TextSink(self._events)
        self._begin_call()

    @abstractmethod
    def _begin_call(self) -> None:
        """Forget what the previous call accumulated."""

    def feed(self, text: str) -> list[ParsedEvent]:
        self._held += text
        self._run(final=False)
        return self._drain()

    def _drain(self) -> list[ParsedEvent]:
        events = list(self._events)
        self._events.clear()
        return events

    def finish(self) -> list[ParsedEvent]:
        self._run(final=True)
        if self._state in self.call_states:
            self._events.append(
                ParsedCallInvalid(self._raw + self._held, "the output ended inside a tool call")
            )
        elif not (self._state == "closing" and self.closer.startswith(self._held.strip())):
            self._text.add(self._held)
        self._held = ""
        self._text.finish()
        return self._drain()

    def _run(self, *, final: bool) -> None:
        while self._held:
            before = (self._state, len(self._held))
            getattr(self, f"_step_{self._state}")(final)
            if (self._state, len(self._held)) == before:
                return

    def _take(self, count: int) -> str:
        taken, self._held = self._held[:count], self._held[count:]
        self._raw += taken
        return taken

    def _step_text(self, final: bool) -> None:
        at = self._held.find(self.opener)
        if at >= 0:
            self._text.add(self._held[:at])
            self._text.call_opened()
            self._held = self._held[at:]
            self._raw = ""
            self._take(len(self.opener))
            self._begin_call()
            self._state = self.first_call_state
            return
        keep = 0 if final else partial_suffix(self._held, self.opener)
        cut = len(self._held) - keep
        self._text.add(self._held[:cut])
        self._held = self._held[cut:]

    def _step_closing(self, final: bool) -> None:
        """After a call: drop its closer (whitespace around it too), then back to text."""
        stripped = self._held.lstrip()
        if stripped.startswith(self.closer):
            self._held = stripped[len(self.closer) :]
            self._state = "text"
        elif self.closer.startswith(stripped) and not final:
            return
        else:
            self._held = stripped
            self._state = "text"
