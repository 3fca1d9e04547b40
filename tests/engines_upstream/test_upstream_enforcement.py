"""The tool contract through upstreams that enforce, with recorded vLLM and Ollama answers.

Forced calls go through the upstream's constrained-output parameter (found by a probe),
stream as `input_json_delta`, and keep grounded ids out of the prompt but in the schema.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.engines_upstream.recorded_upstreams import (
    IgnoringUpstream,
    RecordedOllama,
    RecordedUpstream,
    RecordedVLLM,
)

from deskloop.engines import create_engine
from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    UpstreamEngine,
)
from deskloop.engines.openai import OpenAIEngine
from deskloop.engines.openai_probe import endpoint_section, probe_openai_upstream
from deskloop.engines.upstream_calls import StreamedCallStart, call_schema
from deskloop.server.app import create_app
from deskloop.server.protocol import MessagesRequest
from deskloop.server.upstream_service import UpstreamModelService
from deskloop.settings import ServerSettings

CLICK = {
    "name": "click",
    "description": "Click an element on screen.",
    "input_schema": {
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "enum": ["e3", "e7"],
                "x-grounded": True,
                "description": "The element's id, from the latest observation.",
            }
        },
        "required": ["id"],
    },
}
TYPE_TEXT = {
    "name": "type_text",
    "description": "Type text into a field.",
    "input_schema": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
        "required": ["id", "text"],
    },
}
ASK = [{"role": "user", "content": "Select Page 2.\n\n[e3] tab 'Page 1'\n[e7] tab 'Page 2'"}]


def validated(**fields: Any) -> dict[str, Any]:
    fields.setdefault("model", "m")
    fields.setdefault("max_tokens", 200)
    fields.setdefault("messages", ASK)
    fields.setdefault("tools", [CLICK, TYPE_TEXT])
    return MessagesRequest.model_validate(fields).model_dump(exclude_none=True)


def engine_for(upstream: RecordedUpstream, url: str = "http://gpu.example:8000/v1") -> OpenAIEngine:
    engine = create_engine("openai", "m", upstream=url, transport=httpx.MockTransport(upstream))
    assert isinstance(engine, OpenAIEngine)
    return engine


async def collect(engine: UpstreamEngine, request: dict[str, Any]) -> list[OutputEvent]:
    return [event async for event in engine.stream(request)]


def deltas(events: list[OutputEvent]) -> list[str]:
    return [event.partial_json for event in events if isinstance(event, ToolInputDelta)]


async def test_probe_finds_what_vllm_enforces() -> None:
    vllm = RecordedVLLM()
    found = await probe_openai_upstream(
        "http://gpu.example:8000/v1", "m", {}, transport=httpx.MockTransport(vllm)
    )
    assert found.server == "vllm"
    assert found.honoured == ("structured_outputs", "response_format")
    assert set(found.ignored) == {"guided_json", "json_object"}  # llama.cpp's are not tried
    assert found.native_tool_calls is True and found.shows_tools is True
    assert found.constraint == "structured_outputs"
    assert "structured_outputs" in " ".join(found.lines())


async def test_probe_finds_what_ollama_enforces() -> None:
    found = await probe_openai_upstream(
        "http://127.0.0.1:11434", "m", {}, transport=httpx.MockTransport(RecordedOllama())
    )
    assert found.server == "ollama"
    assert found.honoured == ("format", "response_format")
    assert found.native_tool_calls is False
    assert found.constraint == "format"


async def test_probe_of_an_upstream_that_is_down_is_not_kept() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    engine = create_engine(
        "openai", "m", upstream="http://x.test", transport=httpx.MockTransport(down)
    )
    assert isinstance(engine, OpenAIEngine)
    found = await engine.enforcement()
    assert not found.probed and "refused" in found.error
    assert "not probed" in found.lines()[0]


async def test_forced_tool_streams_through_vllm_structured_outputs() -> None:
    vllm = RecordedVLLM()
    engine = engine_for(vllm)
    request = validated(tool_choice={"type": "tool", "name": "click"})
    events = await collect(engine, request)
    sent = vllm.bodies("/v1/chat/completions")[-1]
    # The grounded ids go in the schema the upstream enforces, as plain JSON Schema...
    assert sent["structured_outputs"]["json"] == call_schema([{**CLICK}])
    enforced = sent["structured_outputs"]["json"]["properties"]["arguments"]["properties"]["id"]
    assert enforced["enum"] == ["e3", "e7"] and "x-grounded" not in enforced
    # ...never in the tools the upstream renders into the prompt.
    assert "e7" not in json.dumps(sent["tools"]) and "x-grounded" not in json.dumps(sent["tools"])
    assert "tool_choice" not in sent
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert len(starts) == 1 and isinstance(starts[0], StreamedCallStart)
    assert starts[0].name == "click"
    assert len(deltas(events)) > 1  # streamed as it came, not in one piece at the end
    assert json.loads("".join(deltas(events))) == {"id": "e7"}
    assert ToolCallEnd({"id": "e7"}) in events
    assert events[-1] == Finish("tool_use")
    assert not [e for e in events if isinstance(e, TextDelta)]


async def test_forced_any_goes_through_ollama_format() -> None:
    ollama = RecordedOllama(call='{"name": "type_text", "arguments": {"id": "e3", "text": "hi"}}')
    engine = engine_for(ollama, "http://127.0.0.1:11434")
    request = validated(tool_choice={"type": "any"}, temperature=0, max_tokens=64)
    events = await collect(engine, request)
    sent = ollama.bodies("/api/chat")[-1]
    assert sent["stream"] is True
    assert [option["properties"]["name"]["enum"] for option in sent["format"]["anyOf"]] == [
        ["click"],
        ["type_text"],
    ]
    assert sent["options"] == {"num_predict": 64, "temperature": 0}
    assert sent["messages"] == [{"role": "user", "content": ASK[0]["content"]}]
    assert "e7" not in json.dumps(sent["tools"])
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["type_text"]
    assert json.loads("".join(deltas(events))) == {"id": "e3", "text": "hi"}
    assert events[-1] == Finish("tool_use")
    final_usage = events[-2]
    assert final_usage == type(final_usage)(input_tokens=26, output_tokens=18)


async def test_a_constraint_the_upstream_refuses_falls_back_to_its_tool_choice() -> None:
    class RefusesSchemas(RecordedVLLM):
        def answer(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
            if (
                path == "/v1/chat/completions"
                and body.get("stream")
                and "structured_outputs" in body
            ):
                return httpx.Response(400, json={"object": "error", "message": "bad schema"})
            return super().answer(method, path, body)

    vllm = RefusesSchemas(call='{"name": "click", "arguments": {"id": "e3"}}')
    events = await collect(engine_for(vllm), validated(tool_choice={"type": "any"}))
    assert vllm.bodies("/v1/chat/completions")[-1]["tool_choice"] == "required"
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["click"]
    assert ToolCallEnd({"id": "e3"}) in events


async def test_constrained_call_cut_by_max_tokens_says_so() -> None:
    class Cut(RecordedVLLM):
        def answer(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
            if path == "/v1/chat/completions" and body.get("stream"):
                from tests.engines_upstream.recorded_upstreams import sse_chunks

                text = sse_chunks(['{"name": "click", "arguments": {"i'], finish="length")
                return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
            return super().answer(method, path, body)

    events = await collect(engine_for(Cut()), validated(tool_choice={"type": "any"}))
    assert events[-1] == Finish("max_tokens")
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["click"]


# -- through deskloop's server, in process -------------------------------------------------


def client_for(engine: UpstreamEngine, **settings: Any) -> httpx.AsyncClient:
    text_calls = settings.pop("text_tool_calls", "read")
    service = UpstreamModelService(engine, queue_size=4, text_tool_calls=text_calls != "off")
    app = create_app(service, ServerSettings(**settings), "openai")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://deskloop.test"
    )


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_server_streams_the_enforced_call_as_input_json_deltas() -> None:
    async with client_for(engine_for(RecordedVLLM())) as client:
        body = {**validated(tool_choice={"type": "tool", "name": "click"}), "stream": True}
        answer = await client.post("/v1/messages", json=body)
        health = (await client.get("/health")).json()
    events = sse_events(answer.text)
    kinds = [event["type"] for event in events]
    assert kinds[0] == "message_start"
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["tool_use"]
    pieces = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert len(pieces) > 1 and json.loads("".join(pieces)) == {"id": "e7"}
    stop = next(e for e in events if e["type"] == "message_delta")
    assert stop["delta"]["stop_reason"] == "tool_use"
    assert health["upstream"]["enforces"] == ["structured_outputs", "response_format"]
    assert health["upstream"]["forced_calls_through"] == "structured_outputs"


async def test_auto_reads_a_fenced_call_written_as_text() -> None:
    upstream = IgnoringUpstream(text='```json\n{"name": "click", "arguments": {"id": "e7"}}\n```')
    async with client_for(engine_for(upstream)) as client:
        answer = (await client.post("/v1/messages", json=validated())).json()
    assert answer["stop_reason"] == "tool_use"
    assert [(b["type"], b.get("input")) for b in answer["content"]] == [("tool_use", {"id": "e7"})]


@pytest.mark.parametrize(
    "text",
    [
        'I will click it: {"name": "click", "arguments": {"id": "e7"}}',  # prose around
        '{"name": "click", "arguments": {"id": "e7"}} and then done',
        '{"name": "click", "arguments": {"id": "e7"}, "why": "asked"}',  # another key
        '{"name": "click"}',  # no arguments
        "Page 2 is now selected.",
    ],
)
async def test_auto_leaves_anything_but_a_lone_valid_call_as_text(text: str) -> None:
    async with client_for(engine_for(IgnoringUpstream(text=text))) as client:
        answer = (await client.post("/v1/messages", json=validated())).json()
    assert answer["stop_reason"] == "end_turn"
    assert [b["type"] for b in answer["content"]] == ["text"]
    assert answer["content"][0]["text"] == text


async def test_auto_text_calls_can_be_switched_off() -> None:
    text = '{"name": "click", "arguments": {"id": "e7"}}'
    upstream = IgnoringUpstream(text=text)
    async with client_for(engine_for(upstream), text_tool_calls="off") as client:
        answer = (await client.post("/v1/messages", json=validated())).json()
    assert answer["stop_reason"] == "end_turn" and answer["content"][0]["text"] == text


async def test_auto_call_outside_the_grounded_enum_is_asked_again_under_the_constraint() -> None:
    # The model chose to act but named an id that is not on screen: with an upstream that
    # enforces, the same tool is asked for again, forced, and the enum holds.
    vllm = RecordedVLLM(text='{"name": "click", "arguments": {"id": "e99"}}')
    async with client_for(engine_for(vllm)) as client:
        answer = (await client.post("/v1/messages", json=validated())).json()
    assert answer["stop_reason"] == "tool_use"
    assert [(b["type"], b.get("input")) for b in answer["content"]] == [("tool_use", {"id": "e7"})]
    retry = vllm.bodies("/v1/chat/completions")[-1]
    assert retry["structured_outputs"]["json"]["properties"]["name"]["enum"] == ["click"]


async def test_auto_call_to_an_invented_tool_is_asked_again_as_any() -> None:
    vllm = RecordedVLLM(text='```json\n{"name": "select Page 2", "arguments": {}}\n```')
    async with client_for(engine_for(vllm)) as client:
        answer = (await client.post("/v1/messages", json=validated())).json()
    assert answer["stop_reason"] == "tool_use"
    assert answer["content"][0]["name"] == "click"
    retry = vllm.bodies("/v1/chat/completions")[-1]
    assert len(retry["structured_outputs"]["json"]["anyOf"]) == 2


async def test_without_enforcement_an_invalid_call_stays_text() -> None:
    text = '{"name": "click", "arguments": {"id": "e99"}}'
    async with client_for(engine_for(IgnoringUpstream(text=text))) as client:
        answer = (await client.post("/v1/messages", json=validated())).json()
    assert answer["stop_reason"] == "end_turn"
    assert answer["content"] == [{"type": "text", "text": text}]


async def test_forced_call_without_enforcement_is_read_from_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream = IgnoringUpstream(
        text='<tool_call>\n{"name": "click", "arguments": {"id": "e3"}}\n</tool_call>'
    )
    async with client_for(engine_for(upstream)) as client:
        body = {**validated(tool_choice={"type": "any"}), "stream": True}
        answer = await client.post("/v1/messages", json=body)
    events = sse_events(answer.text)
    assert (
        next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"]
        == "tool_use"
    )
    assert "enforces no constrained output" in caplog.text


# -- deskloop doctor --endpoint ------------------------------------------------------------


def test_doctor_endpoint_probes_an_upstream_directly() -> None:
    vllm = RecordedVLLM()
    vllm_models = {
        "object": "list",
        "data": [{"id": "Qwen/Qwen2.5-7B-Instruct", "object": "model"}],
    }

    def with_models(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=vllm_models)
        return vllm(request)

    data, lines = endpoint_section(
        "http://gpu.example:8000/v1", transport=httpx.MockTransport(with_models)
    )
    assert data["model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert data["upstream"]["forced_calls_through"] == "structured_outputs"
    assert lines[0] == "upstream http://gpu.example:8000: vllm"
    assert any("go through structured_outputs" in line for line in lines)
    assert vllm.bodies("/v1/chat/completions")[0]["model"] == "Qwen/Qwen2.5-7B-Instruct"


def test_doctor_endpoint_reads_a_deskloop_servers_health() -> None:
    service = UpstreamModelService(
        engine_for(RecordedOllama(), "http://127.0.0.1:11434"), queue_size=2
    )
    app = create_app(service, ServerSettings(), "openai")
    data, lines = endpoint_section("http://deskloop.test", transport=httpx.ASGITransport(app=app))
    assert data["deskloop"]["upstream"]["enforces"] == ["format", "response_format"]
    assert lines[0].startswith("http://deskloop.test: deskloop server, engine openai")
    assert "enforces constrained output through: format, response_format" in lines


def test_doctor_endpoint_that_answers_nothing_says_so() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    data, lines = endpoint_section("http://127.0.0.1:9", transport=httpx.MockTransport(down))
    assert "refused" in data["upstream"]["error"] and "not probed" in lines[0]


def test_doctor_takes_an_endpoint() -> None:
    from deskloop.cli import build_parser

    args = build_parser().parse_args(["doctor", "--endpoint", "http://127.0.0.1:8000/v1"])
    assert args.endpoint == "http://127.0.0.1:8000/v1"


async def test_health_does_not_wait_for_a_slow_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from deskloop.server import upstream_service

    monkeypatch.setattr(upstream_service, "HEALTH_WAIT_S", 0.05)
    vllm = RecordedVLLM()

    async def slow(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            await asyncio.sleep(0.1)  # a model still loading
        return vllm(request)

    engine = create_engine(
        "openai", "m", upstream="http://gpu.example/v1", transport=httpx.MockTransport(slow)
    )
    async with client_for(engine) as client:
        first = (await client.get("/health")).json()
        assert first["upstream"] == {"probing": True}
        for _ in range(100):
            later = (await client.get("/health")).json()
            if "enforces" in later["upstream"]:
                break
        assert later["upstream"]["forced_calls_through"] == "structured_outputs"


async def test_auto_native_call_outside_the_enum_is_asked_again_forced() -> None:
    class NativeCalls(RecordedVLLM):
        """Its own tool parser returns the auto answer's call, naming an id not on screen."""

        def answer(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
            stream = path == "/v1/chat/completions" and body.get("stream")
            if stream and body.get("tool_choice") == "auto":
                wrong = NativeCalls(call='{"name": "click", "arguments": {"id": "e99"}}')
                return wrong.tool_calls({**body, "tools": [{"function": {"name": "click"}}]})
            return super().answer(method, path, body)

    vllm = NativeCalls(call='{"name": "click", "arguments": {"id": "e3"}}')
    async with client_for(engine_for(vllm)) as client:
        body = {**validated(tool_choice={"type": "auto"}), "stream": True}
        answer = await client.post("/v1/messages", json=body)
    events = sse_events(answer.text)
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [b["type"] for b in blocks] == ["tool_use"]
    pieces = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert json.loads("".join(pieces)) == {"id": "e3"}
    asked, again = [b for b in vllm.bodies("/v1/chat/completions") if b.get("stream")]
    assert asked["tool_choice"] == "auto"
    assert again["structured_outputs"]["json"]["properties"]["name"]["enum"] == ["click"]
