"""A consumer that stops reading (its client went away) closes the upstream response."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from deskloop.engines import create_engine
from deskloop.engines.base import TextDelta, UpstreamEngine
from deskloop.server.protocol import MessagesRequest


class EndlessFakeStream(httpx.AsyncByteStream):
    """A fake upstream body that never ends on its own; records whether it was closed."""

    def __init__(self, first: bytes, repeated: bytes) -> None:
        self.first = first
        self.repeated = repeated
        self.chunks_sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        while not self.closed:
            self.chunks_sent += 1
            yield self.repeated

    async def aclose(self) -> None:
        self.closed = True


def openai_chunk(text: str) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def anthropic_event(payload: dict[str, object]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


REQUEST = MessagesRequest.model_validate(
    {"model": "m", "max_tokens": 10_000, "messages": [{"role": "user", "content": "Go on."}]}
).model_dump(exclude_none=True)


async def read_one_text_then_stop(engine: UpstreamEngine) -> None:
    stream = engine.stream(REQUEST)
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # what the server does when its client disconnects
    await engine.aclose()


async def test_openai_engine_closes_the_upstream_stream() -> None:
    body = EndlessFakeStream(openai_chunk("Once"), openai_chunk(" upon"))
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    engine = create_engine("openai", "m", upstream="http://fake.test/v1", transport=transport)
    assert isinstance(engine, UpstreamEngine)
    await read_one_text_then_stop(engine)
    assert body.closed
    assert body.chunks_sent < 5


async def test_anthropic_engine_closes_the_upstream_stream() -> None:
    start = anthropic_event(
        {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}}
    ) + anthropic_event(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    delta = anthropic_event(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}}
    )
    body = EndlessFakeStream(start, delta)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    engine = create_engine("anthropic", "m", upstream="http://fake.test", transport=transport)
    assert isinstance(engine, UpstreamEngine)
    await read_one_text_then_stop(engine)
    assert body.closed
    assert body.chunks_sent < 5
