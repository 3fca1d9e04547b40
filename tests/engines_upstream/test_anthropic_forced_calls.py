"""An Anthropic-shaped upstream that ignores `tool_choice` (a gateway in front of another
model): one retry with `output_config.format` where it honours that, else an error naming
the upstream, never an `end_turn`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from deskloop.engines import create_engine
from deskloop.engines.anthropic import AnthropicEngine
from deskloop.engines.base import (
    Finish,
    OutputEvent,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    UpstreamError,
    Usage,
)
from deskloop.server.protocol import MessagesRequest

UPSTREAM = "https://gateway.example/v1"
CLICK = {
    "name": "click",
    "description": "Click an element.",
    "input_schema": {
        "type": "object",
        "properties": {"id": {"type": "string", "enum": ["e3", "e7"], "x-grounded": True}},
        "required": ["id"],
    },
}


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def text_answer(text: str) -> str:
    usage = {"input_tokens": 30, "output_tokens": 1}
    return sse(
        {"type": "message_start", "message": {"id": "msg_1", "type": "message",
                                              "role": "assistant", "content": [], "usage": usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 12}},
        {"type": "message_stop"},
    )  # fmt: skip


@dataclass
class IgnoringGateway:
    """Ignores tool_choice; enforces `output_config.format` when `structured` is set."""

    structured: bool
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        schema = ((body.get("output_config") or {}).get("format") or {}).get("schema")
        if not body.get("stream"):  # the probe
            text = '{"probe": "ok-31"}' if self.structured and schema else "Hello!"
            return httpx.Response(200, json={"content": [{"type": "text", "text": text}]})
        if self.structured and schema:
            text = '{"name": "click", "arguments": {"id": "e7"}}'
        else:
            text = "I would click Page 2."
        return httpx.Response(
            200, text=text_answer(text), headers={"content-type": "text/event-stream"}
        )


def engine_for(gateway: IgnoringGateway) -> AnthropicEngine:
    engine = create_engine(
        "anthropic", "some-model", upstream=UPSTREAM, transport=httpx.MockTransport(gateway)
    )
    assert isinstance(engine, AnthropicEngine)
    return engine


def forced() -> dict[str, Any]:
    return MessagesRequest.model_validate(
        {
            "model": "some-model",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Select Page 2."}],
            "tools": [CLICK],
            "tool_choice": {"type": "any"},
            "output_config": {"effort": "medium"},
        }
    ).model_dump(exclude_none=True)


async def collect(engine: AnthropicEngine) -> list[OutputEvent]:
    return [event async for event in engine.stream(forced())]


async def test_ignored_tool_choice_is_retried_once_with_output_format() -> None:
    gateway = IgnoringGateway(structured=True)
    events = await collect(engine_for(gateway))
    assert events[0] == Usage(input_tokens=30, output_tokens=1)
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["click"]
    assert json.loads("".join(e.partial_json for e in events if isinstance(e, ToolInputDelta))) == {
        "id": "e7"
    }
    assert ToolCallEnd({"id": "e7"}) in events
    assert events[-1] == Finish("tool_use")
    first, probe, retry = gateway.requests
    assert first["tool_choice"]["type"] == "any" and "format" not in first["output_config"]
    assert "tools" not in probe and probe["output_config"]["format"]["type"] == "json_schema"
    assert retry["output_config"]["effort"] == "medium"  # the client's own config is kept
    schema = retry["output_config"]["format"]["schema"]
    assert schema["properties"]["arguments"]["properties"]["id"]["enum"] == ["e3", "e7"]


async def test_without_a_constraint_it_is_an_error_naming_the_upstream() -> None:
    gateway = IgnoringGateway(structured=False)
    with pytest.raises(UpstreamError) as caught:
        await collect(engine_for(gateway))
    assert caught.value.status == 502
    assert "gateway.example" in str(caught.value) and "ignored tool_choice" in str(caught.value)
    assert len([r for r in gateway.requests if r.get("stream")]) == 1  # no blind retry


async def test_a_retry_that_still_gives_no_call_is_an_error() -> None:
    class StillIgnoring(IgnoringGateway):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            if body.get("stream"):
                body.pop("output_config", None)  # honoured by the probe, not by the model
                request = httpx.Request("POST", request.url, json=body)
            return super().__call__(request)

    with pytest.raises(UpstreamError) as caught:
        await collect(engine_for(StillIgnoring(structured=True)))
    assert "twice" in str(caught.value) and "gateway.example" in str(caught.value)


async def test_an_upstream_that_honours_tool_choice_is_asked_once() -> None:
    tool_stream = sse(
        {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "click", "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '{"id": "e3"}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    )  # fmt: skip
    seen: list[httpx.Request] = []

    def honouring(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=tool_stream, headers={"content-type": "text/event-stream"})

    engine = create_engine(
        "anthropic", "m", upstream=UPSTREAM, transport=httpx.MockTransport(honouring)
    )
    events = [event async for event in engine.stream(forced())]
    assert ToolCallEnd({"id": "e3"}) in events and events[-1] == Finish("tool_use")
    assert len(seen) == 1
