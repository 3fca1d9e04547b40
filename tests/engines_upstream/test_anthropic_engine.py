"""The anthropic engine against a fake Anthropic SSE server (an httpx mock transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from deskloop.engines import create_engine
from deskloop.engines.anthropic import AnthropicEngine
from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    UpstreamError,
    Usage,
)
from deskloop.server.protocol import MessagesRequest

UPSTREAM = "https://gateway.example/v1"


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def message_start(input_tokens: int = 25, cache_read: int = 0) -> dict[str, Any]:
    usage = {"input_tokens": input_tokens, "output_tokens": 1}
    if cache_read:
        usage["cache_read_input_tokens"] = cache_read
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": usage}
    return {"type": "message_start", "message": message}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_end(stop_reason: str, output_tokens: int, stop_sequence: str | None = None) -> str:
    delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    return sse(
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    )


TOOL_STREAM = sse(
    message_start(input_tokens=25, cache_read=100),
    {"type": "ping"},
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    block_delta(0, {"type": "thinking_delta", "thinking": "Need the weather."}),
    block_delta(0, {"type": "signature_delta", "signature": "EqQBCkgIARAB"}),
    block_stop(0),
    block_start(1, {"type": "text", "text": ""}),
    block_delta(1, {"type": "text_delta", "text": "Checking."}),
    block_stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}),
    block_delta(2, {"type": "input_json_delta", "partial_json": ""}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '{"city": '}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
    block_stop(2),
    {"type": "some_future_event", "value": 1},
) + message_end("tool_use", 42)


class FakeAnthropicServer:
    """A fake Anthropic API: answers every request with one canned response, records requests."""

    def __init__(self, status: int = 200, body: str | dict[str, Any] = "") -> None:
        self.status = status
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.body, dict):
            return httpx.Response(self.status, json=self.body)
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(self.status, text=self.body, headers=headers)

    def sent_json(self, position: int = -1) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[position].content)
        return body


def engine_for(
    server: Callable[[httpx.Request], httpx.Response], **options: Any
) -> AnthropicEngine:
    engine = create_engine(
        "anthropic",
        "claude-opus-5-5",
        upstream=UPSTREAM,
        upstream_api_key="sk-test",
        transport=httpx.MockTransport(server),
        **options,
    )
    assert isinstance(engine, AnthropicEngine)
    return engine


def validated(**fields: Any) -> dict[str, Any]:
    fields.setdefault("model", "claude-opus-5-5")
    fields.setdefault("max_tokens", 100)
    fields.setdefault("messages", [{"role": "user", "content": "Weather in Paris?"}])
    return MessagesRequest.model_validate(fields).model_dump(exclude_none=True)


async def collect(engine: AnthropicEngine, request: dict[str, Any]) -> list[OutputEvent]:
    return [event async for event in engine.stream(request)]


async def test_stream_becomes_neutral_events() -> None:
    engine = engine_for(FakeAnthropicServer(body=TOOL_STREAM))
    events = await collect(engine, validated())
    assert events == [
        Usage(input_tokens=25, output_tokens=1, cache_read_input_tokens=100),
        ThinkingDelta("Need the weather."),
        ThinkingSignature("EqQBCkgIARAB"),
        TextDelta("Checking."),
        ToolCallStart("toolu_9", "get_weather"),
        ToolInputDelta('{"city": '),
        ToolInputDelta('"Paris"}'),
        ToolCallEnd({"city": "Paris"}),
        Usage(input_tokens=25, output_tokens=42, cache_read_input_tokens=100),
        Finish("tool_use"),
    ]


async def test_request_is_forwarded_with_key_version_and_stream() -> None:
    server = FakeAnthropicServer(body=TOOL_STREAM)
    engine = engine_for(server, anthropic_beta="context-management-2025-06-27")
    history = [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "unsigned, from a local model"},
                {"type": "thinking", "thinking": "signed", "signature": "EqQB"},
                {"type": "text", "text": "Hello."},
            ],
        },
        {"role": "user", "content": "Weather?"},
    ]
    request = validated(messages=history, temperature=0, top_k=5, metadata={"user_id": "u"})
    await collect(engine, request)
    sent = server.requests[0]
    assert str(sent.url) == "https://gateway.example/v1/messages"
    assert sent.headers["x-api-key"] == "sk-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "context-management-2025-06-27"
    body = server.sent_json()
    assert body["stream"] is True
    assert body["model"] == "claude-opus-5-5"
    assert body["temperature"] == 0 and body["top_k"] == 5
    assert body["metadata"] == {"user_id": "u"}
    # The cloud refuses thinking without a signature: only the signed block goes on.
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "signed", "signature": "EqQB"},
        {"type": "text", "text": "Hello."},
    ]


async def test_stop_sequence_is_kept() -> None:
    body = sse(
        message_start(),
        block_start(0, {"type": "text", "text": "1, 2"}),
        block_stop(0),
    ) + message_end("stop_sequence", 3, stop_sequence=", 3")
    events = await collect(engine_for(FakeAnthropicServer(body=body)), validated())
    assert events[1] == TextDelta("1, 2")
    assert events[-1] == Finish("stop_sequence", ", 3")


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        (404, "not_found_error", "model: claude-nonexistent"),
        (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit"),
        (529, "overloaded_error", "Overloaded"),
        (500, "api_error", "Internal server error"),
    ],
)
async def test_error_envelopes_keep_status_type_and_message(
    status: int, error_type: str, message: str
) -> None:
    envelope = {"type": "error", "error": {"type": error_type, "message": message}}
    engine = engine_for(FakeAnthropicServer(status, envelope))
    with pytest.raises(UpstreamError) as caught:
        await collect(engine, validated())
    assert (caught.value.status, caught.value.error_type) == (status, error_type)
    assert str(caught.value) == message  # Claude Code compacts on this exact text


async def test_refused_key_says_where_to_set_it() -> None:
    envelope = {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    engine = engine_for(FakeAnthropicServer(401, envelope))
    with pytest.raises(UpstreamError) as caught:
        await collect(engine, validated())
    assert caught.value.status == 401
    assert caught.value.error_type == "authentication_error"
    assert "invalid x-api-key" in str(caught.value)
    assert "server.upstream_api_key" in str(caught.value)


async def test_error_event_after_the_stream_started() -> None:
    body = sse(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, {"type": "text_delta", "text": "Hel"}),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    stream = engine_for(FakeAnthropicServer(body=body)).stream(validated())
    seen = []
    with pytest.raises(UpstreamError) as caught:
        async for event in stream:
            seen.append(event)
    assert TextDelta("Hel") in seen
    assert (caught.value.status, caught.value.error_type) == (529, "overloaded_error")


async def test_stream_cut_before_message_stop_is_an_error() -> None:
    body = sse(message_start(), block_start(0, {"type": "text", "text": "Hi"}))
    with pytest.raises(UpstreamError) as caught:
        await collect(engine_for(FakeAnthropicServer(body=body)), validated())
    assert caught.value.status == 502
    assert "message_stop" in str(caught.value)


async def test_an_html_answer_is_named_as_not_anthropic() -> None:
    engine = engine_for(FakeAnthropicServer(body="data: <html>proxy login</html>\n\n"))
    with pytest.raises(UpstreamError) as caught:
        await collect(engine, validated())
    assert "Anthropic-compatible" in str(caught.value)


async def test_count_tokens_forwards_only_what_the_endpoint_takes() -> None:
    server = FakeAnthropicServer(body={"input_tokens": 17})
    engine = engine_for(server)
    request = validated(system="Be brief.", temperature=0.5, stop_sequences=["x"])
    assert await engine.count_tokens(request) == 17
    assert str(server.requests[0].url) == "https://gateway.example/v1/messages/count_tokens"
    assert set(server.sent_json()) == {"model", "messages", "system"}


async def test_nothing_listening_names_the_url() -> None:
    engine = create_engine("anthropic", "claude-x", upstream="http://127.0.0.1:9")
    assert isinstance(engine, AnthropicEngine)
    with pytest.raises(UpstreamError) as caught:
        await collect(engine, validated())
    assert caught.value.status == 502
    assert "http://127.0.0.1:9/v1/messages" in str(caught.value)
    assert "--upstream" in str(caught.value)


def tool_turn(thinking_block: dict[str, Any]) -> list[dict[str, Any]]:
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
    return [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [thinking_block, tool_use]},
        {"role": "user", "content": [result]},
    ]


async def test_thinking_is_left_off_when_the_last_answer_lost_its_unsigned_thinking() -> None:
    server = FakeAnthropicServer(body=TOOL_STREAM)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    unsigned = tool_turn({"type": "thinking", "thinking": "from a server that signs nothing"})
    await collect(engine_for(server), validated(messages=unsigned, thinking=thinking))
    body = server.sent_json()
    assert "thinking" not in body
    assert [block["type"] for block in body["messages"][1]["content"]] == ["tool_use"]

    signed = tool_turn({"type": "thinking", "thinking": "cloud thinking", "signature": "EqQB"})
    await collect(engine_for(server), validated(messages=signed, thinking=thinking))
    body = server.sent_json()
    assert body["thinking"] == thinking
    assert [block["type"] for block in body["messages"][1]["content"]] == ["thinking", "tool_use"]
