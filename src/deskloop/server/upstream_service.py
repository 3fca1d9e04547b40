"""Serving Messages requests through an upstream engine (openai- or anthropic-shaped).

A tool call the upstream returns as a call is held until it is complete, validated against
its schema (after a careful JSON repair), and only then emitted; one that still fails is
returned as text and logged. A call streamed under the upstream's own constraint (a forced
choice, `StreamedCallStart`) passes through as it comes. A call the model wrote as text is
read as one when it is a lone JSON object naming a declared tool with valid arguments
(`server.text_tool_calls`). In auto mode, a call attempt that fails validation is asked
again once, forced to that tool, where the upstream enforces a constraint: the model chose
to act, the constraint keeps its arguments (grounded ids included) to the schema.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    UpstreamEngine,
    UpstreamError,
    Usage,
)
from deskloop.engines.openai_probe import Enforcement
from deskloop.engines.upstream_calls import (
    StreamedCallStart,
    closing,
    could_be_call,
    read_text_call,
)
from deskloop.server.admission import EngineQueue
from deskloop.server.errors import UpstreamFailed
from deskloop.server.protocol import MessagesRequest, Tool
from deskloop.server.responses import TokenCount
from deskloop.server.tool_schema import repair_json, validate_input

log = logging.getLogger("deskloop.server")

FORCED_CHOICES = ("any", "tool")
# How long /health waits for a first probe of the upstream before saying it is probing.
HEALTH_WAIT_S = 1.0


@runtime_checkable
class Enforcing(Protocol):
    """An upstream engine that knows what its upstream can enforce (probed once)."""

    async def enforcement(self) -> Enforcement: ...


def _request_body(request: MessagesRequest, model: str) -> dict[str, Any]:
    body = request.model_dump(mode="json", exclude_none=True)
    body["model"] = model
    body.pop("stream", None)
    return body


class UpstreamModelService:
    def __init__(self, engine: UpstreamEngine, *, queue_size: int, text_tool_calls: bool = True):
        self.engine = engine
        self.model_id = engine.model_id
        self.parameters = 0  # the upstream does not say
        self.family = ""
        self.context_window: int | None = None
        self.queue = EngineQueue(queue_size)
        # Read a lone JSON call written as text as a tool_use (server.text_tool_calls).
        self.text_tool_calls = text_tool_calls
        self._probe: asyncio.Future[Enforcement] | None = None

    async def upstream_report(self) -> dict[str, Any]:
        """What the upstream enforces, for /health. Probed on first use, in the background:
        clients ask /health with short timeouts (the agent's is 3 s), a probe takes longer."""
        if not isinstance(self.engine, Enforcing):
            return {}
        if self._probe is None or (self._probe.done() and not self._probe.result().probed):
            self._probe = asyncio.ensure_future(self.engine.enforcement())
        try:
            found = await asyncio.wait_for(asyncio.shield(self._probe), HEALTH_WAIT_S)
        except TimeoutError:
            return {"probing": True}
        return found.to_json()

    async def count_tokens(self, request: MessagesRequest) -> TokenCount:
        try:
            return TokenCount(await self.engine.count_tokens(_request_body(request, self.model_id)))
        except UpstreamError as exc:
            raise UpstreamFailed(str(exc), exc.status, exc.error_type) from exc

    async def run(self, request: MessagesRequest) -> AsyncIterator[OutputEvent]:
        tools = {tool.name: tool for tool in request.tools or []}
        choice = request.tool_choice.type if request.tool_choice else "auto"
        # A forced choice the upstream did not enforce falls back to reading text (issue 19).
        reading = (
            bool(tools) and choice != "none" and (self.text_tool_calls or choice in FORCED_CHOICES)
        )
        body = _request_body(request, self.model_id)
        ticket = self.queue.admit()
        try:
            async with ticket.turn():
                try:
                    async for event in self._answer(body, tools, reading, choice):
                        yield event
                except UpstreamError as exc:
                    raise UpstreamFailed(str(exc), exc.status, exc.error_type) from exc
        finally:
            ticket.close()

    async def _answer(
        self, body: dict[str, Any], tools: dict[str, Tool], reading: bool, choice: str
    ) -> AsyncIterator[OutputEvent]:
        check = CallCheck(tools, reading, may_retry=choice == "auto" and bool(tools))
        async with closing(self.engine.stream(body)) as answer:
            async for event in answer:
                for checked in check.feed(event):
                    yield checked
        retry = check.retry_choice
        if retry is None:
            return
        if (
            not isinstance(self.engine, Enforcing)
            or not (await self.engine.enforcement()).constraint
        ):
            for checked in check.give_up():
                yield checked
            return
        log.info("upstream call attempt failed (%s); asked again, forced: %s", check.failure, retry)
        again = CallCheck(tools, reading=True, may_retry=False)
        first = True
        async with closing(self.engine.stream({**body, "tool_choice": retry})) as answer:
            async for event in answer:
                if first and isinstance(event, Usage):
                    first = False
                    continue  # the answer already reported its input usage
                if isinstance(event, Usage) and check.usage is not None:
                    event = Usage(
                        input_tokens=event.input_tokens,
                        output_tokens=check.usage.output_tokens + event.output_tokens,
                        cache_read_input_tokens=event.cache_read_input_tokens,
                        cache_creation_input_tokens=event.cache_creation_input_tokens,
                    )
                for checked in again.feed(event):
                    yield checked


@dataclass
class CallCheck:
    """Checks one answer's calls as its events go by: holds, validates, reads text calls.

    When the answer tried a call that failed and `may_retry`, its final usage and finish
    are kept back and `retry_choice` says what to force on a second try.
    """

    tools: dict[str, Tool]
    reading: bool
    may_retry: bool
    usage: Usage | None = None
    retry_choice: dict[str, Any] | None = None
    failure: str = ""
    _held_call: list[OutputEvent] = field(default_factory=list)
    _live: StreamedCallStart | None = None
    _live_json: str = ""
    _text: str | None = None  # text held while it may still be a lone call
    _called: bool = False
    _failed_text: str = ""
    _finish: Finish | None = None

    def __post_init__(self) -> None:
        self._text = "" if self.reading else None

    def feed(self, event: OutputEvent) -> list[OutputEvent]:
        if isinstance(event, StreamedCallStart):
            self._live, self._live_json = event, ""
            return [*self._release_text(), event]
        if self._live is not None:
            return self._live_event(event)
        if isinstance(event, ToolCallStart):
            self._held_call = [event]
            return self._release_text()
        if self._held_call and isinstance(event, ToolInputDelta):
            self._held_call.append(event)
            return []
        if self._held_call and isinstance(event, ToolCallEnd):
            checked = self._checked_call(event)
            self._held_call = []
            return checked
        if isinstance(event, TextDelta):
            return self._text_delta(event)
        if isinstance(event, Usage):
            first, self.usage = self.usage is None, event
            # The first reports input; the last is kept back while a retry may replace it.
            return [event] if first or not self.may_retry or self._called else []
        if isinstance(event, Finish):
            return self._finished(event)
        return [event]  # thinking passes as it comes

    def _live_event(self, event: OutputEvent) -> list[OutputEvent]:
        if isinstance(event, ToolInputDelta):
            self._live_json += event.partial_json
        elif isinstance(event, ToolCallEnd):
            assert self._live is not None
            tool = self.tools.get(self._live.name)
            problem = "undeclared tool" if tool is None else validate_input(tool, event.input)
            if problem is not None:  # already streamed: the upstream's constraint fell short
                log.warning("constrained upstream call is not valid (%s)", problem)
            self._live = None
            self._called = True
        return [event]

    def _text_delta(self, event: TextDelta) -> list[OutputEvent]:
        if self._text is None:
            return [event]
        self._text += event.text
        if could_be_call(self._text):
            return []
        return self._release_text()

    def _release_text(self) -> list[OutputEvent]:
        """Give up holding text: what was held goes out as it was."""
        held, self._text = self._text, None
        return [TextDelta(held)] if held else []

    def _checked_call(self, end: ToolCallEnd) -> list[OutputEvent]:
        start = self._held_call[0]
        assert isinstance(start, ToolCallStart)
        raw = "".join(e.partial_json for e in self._held_call[1:] if isinstance(e, ToolInputDelta))
        tool = self.tools.get(start.name)
        candidate: dict[str, Any] | None = end.input
        if tool is not None and validate_input(tool, candidate) is not None and raw:
            candidate = repair_json(raw)
        problem = _problem(tool, start.name, candidate)
        if problem is None:
            assert candidate is not None
            self._called = True
            text = json.dumps(candidate, ensure_ascii=False)
            return [start, ToolInputDelta(text), ToolCallEnd(candidate)]
        log.warning("upstream tool call dropped (%s): %s %.200s", problem, start.name, raw)
        return self._failed(start.name, problem, f"{start.name}({raw or json.dumps(end.input)})")

    def _failed(self, name: str, problem: str, as_text: str) -> list[OutputEvent]:
        """A call attempt that is not valid: kept for a forced retry, or said as text."""
        if self.may_retry and not self._called and self.retry_choice is None:
            self.failure = problem
            declared = name in self.tools
            self.retry_choice = {"type": "tool", "name": name} if declared else {"type": "any"}
            self._failed_text += as_text
            return []
        return [TextDelta(as_text)]

    def _finished(self, finish: Finish) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        held, self._text = self._text, None
        if held and held.strip():
            out += self._read_call(held)
        if self.retry_choice is not None and not self._called:
            self._finish = finish
            return out  # the caller asks again, or gives up (give_up)
        if self.may_retry and self.usage is not None:
            out.append(self.usage)  # kept back in case of a retry
        if self._called and finish.stop_reason in ("end_turn", "stop_sequence"):
            finish = Finish("tool_use")
        out.append(finish)
        return out

    def _read_call(self, text: str) -> list[OutputEvent]:
        call = read_text_call(text)
        if call is None:
            return [TextDelta(text)]
        name, arguments = call
        tool = self.tools.get(name)
        problem = _problem(tool, name, arguments)
        if problem is not None:
            log.info("a call written as text was not read (%s): %.200s", problem, text)
            return self._failed(name, problem, text)
        self._called = True
        start = ToolCallStart(_new_call_id(), name)
        return [
            start,
            ToolInputDelta(json.dumps(arguments, ensure_ascii=False)),
            ToolCallEnd(arguments),
        ]

    def give_up(self) -> list[OutputEvent]:
        """No retry is possible: the failed attempt goes out as text, with what was held."""
        out: list[OutputEvent] = [TextDelta(self._failed_text)] if self._failed_text else []
        if self.usage is not None:
            out.append(self.usage)
        out.append(self._finish or Finish("end_turn"))
        return out


def _problem(tool: Tool | None, name: str, candidate: dict[str, Any] | None) -> str | None:
    if tool is None:
        return f"undeclared tool {name!r}"
    if candidate is None:
        return "input is not a JSON object"
    return validate_input(tool, candidate)


def _new_call_id() -> str:
    return f"toolu_{uuid.uuid4().hex[:24]}"
