"""The Messages API over the scripted engine: shapes, stream order, stop reasons, caching."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from deskloop.engines.scripted import ScriptedEngine
from deskloop.server.local_service import DELIVERY_INTERVAL_S
from deskloop.server.text_stream import Utf8Joiner

from .helpers import client_for, parse_sse, request_body, scripted_app


async def test_non_streaming_answer_has_the_api_shape() -> None:
    app, _ = scripted_app(["Hello there!"])
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body())
    assert response.status_code == 200
    message = response.json()
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["id"].startswith("msg_")
    assert message["content"] == [{"type": "text", "text": "Hello there!"}]
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None
    usage = message["usage"]
    assert usage["output_tokens"] == len(b"Hello there!")
    assert usage["input_tokens"] > 0
    assert response.headers["request-id"].startswith("req_")


async def test_stream_follows_the_documented_event_order() -> None:
    app, _ = scripted_app(["Hi, how can I help?"])
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body(stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "message_start"
    assert kinds[1] == "ping"
    assert kinds[2] == "content_block_start"
    assert set(kinds[3:-3]) == {"content_block_delta"}
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] > 0
    text = "".join(data["delta"]["text"] for kind, data in events if kind == "content_block_delta")
    assert text == "Hi, how can I help?"
    assert all(data["index"] == 0 for kind, data in events if kind.startswith("content_block"))
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == len(b"Hi, how can I help?")


async def test_max_tokens_ends_with_max_tokens() -> None:
    app, _ = scripted_app(["a long answer that will not fit"])
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=request_body(max_tokens=6))
    message = response.json()
    assert message["stop_reason"] == "max_tokens"
    assert message["content"][0]["text"] == "a long"
    assert message["usage"]["output_tokens"] == 6


async def test_a_cut_inside_a_character_leaves_the_character_out() -> None:
    # "🙂" is four bytes, four scripted tokens: max_tokens stops after two of them.
    cut = len(b"Hello there!") + 2
    app, _ = scripted_app(["Hello there!🙂 Bye", "Hello there!🙂 Bye"])
    async with client_for(app) as client:
        whole = (await client.post("/v1/messages", json=request_body(max_tokens=cut))).json()
        streamed = parse_sse(
            (await client.post("/v1/messages", json=request_body(max_tokens=cut, stream=True))).text
        )
    assert whole["content"] == [{"type": "text", "text": "Hello there!"}]
    assert whole["stop_reason"] == "max_tokens"
    assert whole["usage"]["output_tokens"] == cut
    text = "".join(d["delta"]["text"] for k, d in streamed if k == "content_block_delta")
    assert text == "Hello there!"
    assert streamed[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_bytes_that_are_never_utf8_still_show_as_replacement_characters() -> None:
    joiner = Utf8Joiner()
    assert joiner.push(b"a\x80b") == "a\ufffdb"  # a continuation byte with no start
    assert joiner.push(b"\xf0\x9f") == ""  # the start of a character waits
    assert joiner.push(b"\x99\x82!") == "🙂!"
    assert joiner.push(b"\xe2\x82") == ""
    assert joiner.flush() == ""  # ...and is left out when the answer ends there
    assert joiner.push(b"new") == "new"


async def test_stop_sequence_is_reported_and_not_emitted() -> None:
    outputs = ["First line\nSTOP here\nmore", "First line\nSTOP here\nmore"]
    app, _ = scripted_app(outputs)
    async with client_for(app) as client:
        body = request_body(stop_sequences=["STOP"])
        whole = (await client.post("/v1/messages", json=body)).json()
        streamed = parse_sse(
            (await client.post("/v1/messages", json={**body, "stream": True})).text
        )
    assert whole["stop_reason"] == "stop_sequence"
    assert whole["stop_sequence"] == "STOP"
    assert whole["content"][0]["text"] == "First line\n"
    text = "".join(d["delta"]["text"] for k, d in streamed if k == "content_block_delta")
    assert text == "First line\n"
    assert streamed[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "STOP"}


async def test_sampling_values_reach_the_engine_exactly() -> None:
    engine = ScriptedEngine(["x", "y"])
    app, _ = scripted_app(engine)
    async with client_for(app) as client:
        await client.post("/v1/messages", json=request_body(temperature=0, top_k=5, top_p=0.9))
        await client.post("/v1/messages", json=request_body())
    exact, default = engine.samplings
    assert exact.temperature == 0.0
    assert exact.top_k == 5
    assert exact.top_p == 0.9
    assert default.temperature == 1.0
    assert default.top_k is None


async def test_requests_as_claude_code_sends_them_are_accepted() -> None:
    engine = ScriptedEngine(["ok", "ok"])
    app, _ = scripted_app(engine)
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "stream": True,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=aaaa1;"},
            {
                "type": "text",
                "text": "You are a coding agent.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}],
            },
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        ],
        "metadata": {"user_id": '{"device": "abc"}'},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "output_config": {"effort": "medium"},
    }
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "a-2025,b-2026"}
    async with client_for(app) as client:
        first = await client.post("/v1/messages?beta=true", json=body, headers=headers)
        body["system"][0]["text"] = "x-anthropic-billing-header: cc_version=2.1; cch=bbbb2;"  # type: ignore[index]
        second = await client.post("/v1/messages?beta=true", json=body, headers=headers)
    assert first.status_code == 200, first.text
    prompt = bytes(t for t in engine.prompts[0] if t < 256).decode()
    assert "billing-header" not in prompt
    assert "You are a coding agent." in prompt
    assert "Be brief." in prompt
    # The changing billing line is gone, so the second request reuses the whole prompt.
    end_usage = parse_sse(second.text)[-2][1]["usage"]
    assert end_usage["cache_read_input_tokens"] == len(engine.prompts[1])
    assert end_usage["input_tokens"] == 0
    # max_tokens far above the window is clamped, not refused.
    assert engine.samplings[0].max_tokens < 8192


async def test_prefix_cache_is_reported_for_a_growing_conversation() -> None:
    engine = ScriptedEngine(["Sure.", "Done."])
    app, _ = scripted_app(engine)
    turn1 = request_body("Open the file")
    turn2 = request_body(
        "Open the file",
        messages=[
            {"role": "user", "content": "Open the file"},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": "Now save it"},
        ],
    )
    async with client_for(app) as client:
        await client.post("/v1/messages", json=turn1)
        second = (await client.post("/v1/messages", json=turn2)).json()
    usage = second["usage"]
    shared = len(engine.prompts[0])
    assert usage["cache_read_input_tokens"] >= shared
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == len(engine.prompts[1])


async def test_count_tokens_counts_the_prompt_inference_runs() -> None:
    engine = ScriptedEngine(["ok"])
    app, _ = scripted_app(engine)
    body = request_body("How many tokens is this?", system="Be kind.")
    async with client_for(app) as client:
        counted = await client.post(
            "/v1/messages/count_tokens", json={k: v for k, v in body.items() if k != "max_tokens"}
        )
        answer = (await client.post("/v1/messages", json=body)).json()
    assert counted.status_code == 200
    usage = answer["usage"]
    assert counted.json() == {
        "input_tokens": usage["input_tokens"] + usage["cache_read_input_tokens"]
    }
    assert counted.json()["input_tokens"] == len(engine.prompts[0])


async def test_assistant_prefill_is_continued() -> None:
    engine = ScriptedEngine([" world"])
    app, _ = scripted_app(engine)
    body = request_body(
        messages=[
            {"role": "user", "content": "Say hello world"},
            {"role": "assistant", "content": "Hello"},
        ]
    )
    async with client_for(app) as client:
        message = (await client.post("/v1/messages", json=body)).json()
    prompt = bytes(t for t in engine.prompts[0] if t < 256).decode()
    assert prompt.endswith("assistant\nHello")
    assert message["content"][0]["text"] == " world"


async def test_models_and_health() -> None:
    app, _ = scripted_app(["ok"])
    async with client_for(app) as client:
        models = (await client.get("/v1/models")).json()
        one = await client.get("/v1/models/scripted")
        alias = await client.get("/v1/models/claude-opus-5-5")
        health = (await client.get("/health")).json()
    assert [m["id"] for m in models["data"]] == ["scripted"]
    assert models["has_more"] is False
    assert one.json()["type"] == "model"
    assert alias.status_code == 200
    assert health["status"] == "ok" and health["busy"] is False


async def test_signed_thinking_reaches_the_client_whole() -> None:
    from deskloop.engines.base import Finish, ThinkingDelta, ThinkingSignature, Usage
    from deskloop.server.responses import SSEWriter, collect_message

    events = [
        ThinkingDelta("Let me think."),
        ThinkingSignature("sig-1"),
        Usage(3, 4),
        Finish("end_turn"),
    ]

    async def replay():  # type: ignore[no-untyped-def]
        for event in events:
            yield event

    message = await collect_message(Usage(3), replay(), model="m")
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"}
    ]
    writer = SSEWriter("m")
    chunks = b"".join(b"".join(writer.event(e)) for e in events) + b"".join(writer.end())
    deltas = [d["delta"] for k, d in parse_sse(chunks.decode()) if k == "content_block_delta"]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "Let me think."},
        {"type": "signature_delta", "signature": "sig-1"},
    ]


async def test_tool_diet_reports_the_tokens_it_saves(caplog: pytest.LogCaptureFixture) -> None:
    long = "Click an element by its id. Uses the element's own action when it has one, else a synthetic click at its centre; returns what changed."
    tools = [
        {
            "name": "click",
            "description": long,
            "input_schema": {
                "type": "object",
                "properties": {
                    "element_id": {
                        "type": "string",
                        "description": "The element id, like e12, from the latest observation.",
                    }
                },
                "required": ["element_id"],
            },
        }
    ]
    body = {k: v for k, v in request_body(tools=tools).items() if k != "max_tokens"}
    plain_app, _ = scripted_app(["ok"])
    diet_app, _ = scripted_app(["ok"], tool_diet=True)
    async with client_for(plain_app) as client:
        plain = (await client.post("/v1/messages/count_tokens", json=body)).json()
    caplog.set_level(logging.INFO, logger="deskloop.server")
    async with client_for(diet_app) as client:
        slim = (await client.post("/v1/messages/count_tokens", json=body)).json()
    assert "tool_diet_saved_tokens" not in plain
    assert slim["tool_diet_saved_tokens"] > 0
    assert slim["input_tokens"] + slim["tool_diet_saved_tokens"] == plain["input_tokens"]
    assert any("prompt tokens saved" in record.getMessage() for record in caplog.records)


async def test_fast_tokens_reach_the_event_loop_in_batches_and_slow_ones_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waking the event loop for every token took a core from llama.cpp's threads; events
    now go at most every DELIVERY_INTERVAL_S, the first at once, and nothing is lost."""
    fast = "fast " * 40  # 200 tokens of the scripted engine, about 1 ms apart
    engine = ScriptedEngine([fast, "slow"], token_delay_s=0.001)
    app, service = scripted_app(engine)
    handed: list[tuple[float, int]] = []  # when each batch went to the loop, its events
    work = service._work

    def counted(prepared: Any, cancel: Any, deliver: Callable[[Any], None]) -> None:
        def counting(item: Any) -> None:
            if isinstance(item, list):
                handed.append((time.monotonic(), len(item)))
            deliver(item)

        work(prepared, cancel, counting)

    monkeypatch.setattr(service, "_work", counted)
    async with client_for(app) as client:
        started = time.monotonic()
        response = await client.post("/v1/messages", json=request_body(stream=True, max_tokens=400))
        streamed = parse_sse(response.text)
        text = "".join(d["delta"]["text"] for k, d in streamed if k == "content_block_delta")
        assert text == fast
        assert handed[0][0] - started < DELIVERY_INTERVAL_S  # the first text at once
        assert len(handed) < 200 / 5  # not one wake-up per token

        handed.clear()
        engine.token_delay_s = 0.08  # slower than the interval: each token goes at once
        response = await client.post("/v1/messages", json=request_body(stream=True, max_tokens=400))
        assert "".join(
            d["delta"]["text"] for k, d in parse_sse(response.text) if k == "content_block_delta"
        ) == "slow"
        assert len(handed) >= 4
