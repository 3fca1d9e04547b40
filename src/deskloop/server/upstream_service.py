"""Serving Messages requests through an upstream engine (openai- or anthropic-shaped).

Upstream models are not constrained by us, so each tool call is held until it is
complete, validated against its schema (after a careful JSON repair), and only then
emitted; a call that still fails is returned as text and logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from deskloop.engines.base import (
    OutputEvent,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    UpstreamEngine,
    UpstreamError,
)
from deskloop.server.admission import EngineQueue
from deskloop.server.errors import UpstreamFailed
from deskloop.server.protocol import MessagesRequest, Tool
from deskloop.server.responses import TokenCount

log = logging.getLogger("deskloop.server")


def _request_body(request: MessagesRequest, model: str) -> dict[str, Any]:
    body = request.model_dump(mode="json", exclude_none=True)
    body["model"] = model
    body.pop("stream", None)
    return body


class UpstreamModelService:
    def __init__(self, engine: UpstreamEngine, *, queue_size: int):
        self.engine = engine
        self.model_id = engine.model_id
        self.parameters = 0  # the upstream does not say
        self.family = ""
        self.context_window: int | None = None
        self.queue = EngineQueue(queue_size)

    async def count_tokens(self, request: MessagesRequest) -> TokenCount:
        try:
            return TokenCount(await self.engine.count_tokens(_request_body(request, self.model_id)))
        except UpstreamError as exc:
            raise UpstreamFailed(str(exc), exc.status, exc.error_type) from exc

    async def run(self, request: MessagesRequest) -> AsyncIterator[OutputEvent]:
        tools = {tool.name: tool for tool in request.tools or []}
        ticket = self.queue.admit()
        try:
            async with ticket.turn():
                held: list[OutputEvent] = []
                stream = self.engine.stream(_request_body(request, self.model_id))
                try:
                    async for event in stream:
                        if isinstance(event, ToolCallStart):
                            held = [event]
                        elif held and isinstance(event, ToolInputDelta):
                            held.append(event)
                        elif held and isinstance(event, ToolCallEnd):
                            for checked in _checked_call(held, event, tools):
                                yield checked
                            held = []
                        else:
                            yield event
                except UpstreamError as exc:
                    raise UpstreamFailed(str(exc), exc.status, exc.error_type) from exc
        finally:
            ticket.close()


def _checked_call(
    held: list[OutputEvent], end: ToolCallEnd, tools: dict[str, Tool]
) -> list[OutputEvent]:
    from deskloop.server.tool_schema import repair_json, validate_input

    start = held[0]
    assert isinstance(start, ToolCallStart)
    raw = "".join(e.partial_json for e in held[1:] if isinstance(e, ToolInputDelta))
    tool = tools.get(start.name)
    candidate: dict[str, Any] | None = end.input
    if tool is not None and validate_input(tool, candidate) is not None and raw:
        candidate = repair_json(raw)
    problem = (
        f"undeclared tool {start.name!r}"
        if tool is None
        else "input is not a JSON object"
        if candidate is None
        else validate_input(tool, candidate)
    )
    if problem is not None:
        log.warning("upstream tool call dropped (%s): %s %.200s", problem, start.name, raw)
        return [TextDelta(f"{start.name}({raw or json.dumps(end.input)})")]
    assert candidate is not None
    text = json.dumps(candidate, ensure_ascii=False)
    return [start, ToolInputDelta(text), ToolCallEnd(candidate)]
