"""Every failure answers in the Anthropic envelope, with the right status and type."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from deskloop.engines.scripted import ScriptedEngine

from .helpers import client_for, parse_sse, request_body, scripted_app


def assert_envelope(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"].startswith("req_")
    assert "Traceback" not in response.text
    message: str = body["error"]["message"]
    return message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "hi"}]}', "max_tokens"),
        (b'{"model": "x", "max_tokens": 5, "messages": []}', "messages"),
        (
            b'{"model": "x", "max_tokens": 5, "messages": [{"role": "robot", "content": "hi"}]}',
            "role",
        ),
        (
            b'{"model": "x", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}',
            "max_tokens",
        ),
        (
            b'{"model": "x", "max_tokens": 5, "temperature": -1, "messages": [{"role": "user", "content": "hi"}]}',
            "temperature",
        ),
        (
            b'{"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "bogus"}]}]}',
            "messages",
        ),
        (
            b'{"model": "x", "max_tokens": 5, "messages": [{"role": "system", "content": "only system"}]}',
            "user or assistant",
        ),
    ],
)
async def test_malformed_requests_get_400(body: bytes, fragment: str) -> None:
    app, _ = scripted_app(["unused"])
    async with client_for(app) as client:
        response = await client.post(
            "/v1/messages", content=body, headers={"content-type": "application/json"}
        )
    message = assert_envelope(response, 400, "invalid_request_error")
    assert fragment in message


async def test_tool_result_without_its_tool_use_is_mis_ordered() -> None:
    app, _ = scripted_app(["unused"])
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}],
        }
    ]
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body(messages=messages))
    assert "tool_use_id" in assert_envelope(response, 400, "invalid_request_error")


async def test_api_key_is_required_when_configured() -> None:
    app, _ = scripted_app(["ok", "ok"], api_key="sekrit")
    async with client_for(app) as client:
        missing = await client.post("/v1/messages", json=request_body())
        wrong = await client.post(
            "/v1/messages", json=request_body(), headers={"x-api-key": "nope"}
        )
        bearer = await client.post(
            "/v1/messages", json=request_body(), headers={"authorization": "Bearer sekrit"}
        )
        right = await client.post(
            "/v1/messages", json=request_body(), headers={"x-api-key": "sekrit"}
        )
    assert_envelope(missing, 401, "authentication_error")
    assert_envelope(wrong, 401, "authentication_error")
    assert bearer.status_code == 200
    assert right.status_code == 200


async def test_unknown_model_and_route_are_404_and_a_wrong_method_405(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _ = scripted_app(["unused"], aliases=["my-local"])
    caplog.set_level(logging.INFO, logger="deskloop.server")
    async with client_for(app) as client:
        model = await client.post("/v1/messages", json=request_body(model="gpt-4o"))
        route = await client.get("/v1/nothing-here")
        method = await client.get("/v1/messages")
        alias_model = await client.get("/v1/models/my-local")
    assert "gpt-4o" in assert_envelope(model, 404, "not_found_error")
    assert_envelope(route, 404, "not_found_error")
    said = assert_envelope(method, 405, "invalid_request_error")
    assert said == "GET is not supported on /v1/messages; use POST"
    assert method.headers["allow"] == "POST"
    assert alias_model.status_code == 200
    logged = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("GET /v1/nothing-here -> 404 req_") for line in logged)
    assert any(line.startswith("GET /v1/messages -> 405 req_") for line in logged)


async def test_body_over_the_limit_is_413() -> None:
    app, _ = scripted_app(["unused"], max_body_bytes=1000)
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body("x" * 2000))
    assert_envelope(response, 413, "request_too_large")


async def test_prompt_over_the_window_uses_the_text_clients_compact_on() -> None:
    app, _ = scripted_app(["unused"], context_window=200)
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body("word " * 100))
    message = assert_envelope(response, 400, "invalid_request_error")
    assert message.startswith("prompt is too long: ")
    assert message.endswith(" tokens > 200 maximum")


async def test_engine_failure_is_500_api_error() -> None:
    app, _ = scripted_app([])  # nothing to replay: the engine fails
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body())
    assert_envelope(response, 500, "api_error")


async def test_failure_after_the_stream_started_is_an_error_event() -> None:
    app, _ = scripted_app([])
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body(stream=True))
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert events[0][0] == "message_start"
    kind, data = events[-1]
    assert kind == "error"
    assert data["error"]["type"] == "api_error"
    assert data["request_id"].startswith("req_")


async def test_full_queue_is_429_and_a_long_wait_is_529() -> None:
    engine = ScriptedEngine(["slow answer"] * 4, token_delay_s=0.05)
    app, service = scripted_app(engine, queue_size=1)
    service.queue._max_wait_s = 0.2
    async with client_for(app) as client:
        running = asyncio.create_task(client.post("/v1/messages", json=request_body()))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(client.post("/v1/messages", json=request_body()))
        await asyncio.sleep(0.05)
        refused = await client.post("/v1/messages", json=request_body())
        assert_envelope(refused, 429, "rate_limit_error")
        assert_envelope(await waiting, 529, "overloaded_error")
        assert (await running).status_code == 200


async def test_a_tool_schema_that_cannot_validate_is_400() -> None:
    app, _ = scripted_app(["unused"])
    tools = [
        {"name": "broken", "input_schema": {"type": "object", "properties": {"x": {"type": 12}}}}
    ]
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body(tools=tools))
    assert "broken" in assert_envelope(response, 400, "invalid_request_error")
