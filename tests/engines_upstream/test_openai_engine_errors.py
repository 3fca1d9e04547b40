"""The openai engine's error mapping and token counting, against fake OpenAI-shaped servers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import Finish, OutputEvent, TextDelta, UpstreamError
from deskloop.engines.openai import OpenAIEngine
from deskloop.server.protocol import MessagesRequest

UPSTREAM = "http://vllm.example:8000/v1"

TEXT_STREAM = (
    'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}\n\n'
    'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
    "data: [DONE]\n\n"
)


class FakeOpenAIServer:
    """A fake OpenAI-compatible server: canned answers by path, one after another; records requests."""

    def __init__(self, answers: dict[str, list[httpx.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.answers.get(request.url.path)
        if not queue:
            return httpx.Response(404, json={"detail": "Not Found"})
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]


def streamed(text: str = TEXT_STREAM) -> httpx.Response:
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


def failure(status: int, message: str, **error: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, **error}})


def engine_for(server: FakeOpenAIServer, api_key: str = "") -> OpenAIEngine:
    engine = create_engine(
        "openai",
        "Qwen/Qwen3-8B",
        upstream=UPSTREAM,
        upstream_api_key=api_key,
        transport=httpx.MockTransport(server),
    )
    assert isinstance(engine, OpenAIEngine)
    return engine


def validated(**fields: Any) -> dict[str, Any]:
    fields.setdefault("model", "Qwen/Qwen3-8B")
    fields.setdefault("max_tokens", 128000)
    fields.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return MessagesRequest.model_validate(fields).model_dump(exclude_none=True)


async def collect(engine: OpenAIEngine, request: dict[str, Any]) -> list[OutputEvent]:
    return [event async for event in engine.stream(request)]


async def raised_by(server: FakeOpenAIServer) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await collect(engine_for(server), validated())
    return caught.value


async def test_key_goes_as_bearer_and_the_path_is_chat_completions() -> None:
    server = FakeOpenAIServer({"/v1/chat/completions": [streamed()]})
    events = await collect(engine_for(server, api_key="sk-local"), validated(max_tokens=5))
    assert events[1] == TextDelta("Hi") and events[-1] == Finish("end_turn")
    assert server.requests[0].headers["authorization"] == "Bearer sk-local"
    assert str(server.requests[0].url) == "http://vllm.example:8000/v1/chat/completions"


async def test_max_tokens_over_what_the_context_leaves_is_clamped_and_retried() -> None:
    # vLLM refuses what the cloud clamps; Claude Code asks for max_tokens 128000.
    vllm_refusal = failure(
        400,
        "This model's maximum context length is 32768 tokens. However, you requested 129200 "
        "tokens (1200 in the messages, 128000 in the completion). Please reduce the length "
        "of the messages or completion.",
        type="BadRequestError",
    )
    server = FakeOpenAIServer({"/v1/chat/completions": [vllm_refusal, streamed()]})
    events = await collect(engine_for(server), validated())
    assert events[-1] == Finish("end_turn")
    assert [body["max_tokens"] for body in server.bodies("/v1/chat/completions")] == [
        128000,
        32768 - 1200,
    ]


async def test_prompt_over_the_window_uses_the_text_clients_compact_on() -> None:
    vllm_refusal = failure(
        400,
        "This model's maximum context length is 4096 tokens. However, your request has "
        "5000 input tokens. Please reduce the length of the input messages.",
    )
    error = await raised_by(FakeOpenAIServer({"/v1/chat/completions": [vllm_refusal]}))
    assert (error.status, error.error_type) == (400, "invalid_request_error")
    assert str(error) == "prompt is too long: 5000 tokens > 4096 maximum"


async def test_llama_cpp_server_context_error_fields() -> None:
    refusal = failure(
        400,
        "request (9000 tokens) exceeds the available context size (8192 tokens), try increasing it",
        type="exceed_context_size_error",
        n_prompt_tokens=9000,
        n_ctx=8192,
    )
    error = await raised_by(FakeOpenAIServer({"/v1/chat/completions": [refusal]}))
    assert str(error) == "prompt is too long: 9000 tokens > 8192 maximum"


@pytest.mark.parametrize(
    ("answer", "status", "error_type", "words"),
    [
        (failure(401, "Invalid API key"), 401, "authentication_error", "server.upstream_api_key"),
        (failure(403, "forbidden"), 403, "permission_error", "forbidden"),
        (
            failure(404, "The model `gpt-x` does not exist."),
            404,
            "not_found_error",
            "/v1/models",
        ),
        (
            httpx.Response(404, json={"detail": "Not Found"}),
            404,
            "not_found_error",
            "OpenAI-compatible",
        ),
        (failure(422, "messages: field required"), 400, "invalid_request_error", "messages"),
        (failure(429, "slow down"), 429, "rate_limit_error", "slow down"),
        (httpx.Response(503, text="Service Unavailable"), 529, "overloaded_error", "overloaded"),
        (failure(500, "CUDA out of memory"), 502, "api_error", "CUDA out of memory"),
    ],
)
async def test_upstream_statuses_map_to_anthropic_errors(
    answer: httpx.Response, status: int, error_type: str, words: str
) -> None:
    error = await raised_by(FakeOpenAIServer({"/v1/chat/completions": [answer]}))
    assert (error.status, error.error_type) == (status, error_type)
    assert words in str(error)


async def test_error_chunk_inside_the_stream() -> None:
    text = (
        'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}\n\n'
        'data: {"error": {"message": "engine crashed", "code": 500}}\n\n'
    )
    error = await raised_by(FakeOpenAIServer({"/v1/chat/completions": [streamed(text)]}))
    assert error.status == 502
    assert "engine crashed" in str(error)


async def test_nothing_listening_names_the_url() -> None:
    engine = create_engine("openai", "m", upstream="http://127.0.0.1:9/v1")
    assert isinstance(engine, OpenAIEngine)
    with pytest.raises(UpstreamError) as caught:
        await collect(engine, validated())
    assert caught.value.status == 502
    assert "http://127.0.0.1:9/v1/chat/completions" in str(caught.value)


async def test_count_tokens_with_vllm_tokenize() -> None:
    server = FakeOpenAIServer(
        {"/tokenize": [httpx.Response(200, json={"count": 31, "max_model_len": 32768})]}
    )
    request = validated(
        system="Be brief.",
        tools=[{"name": "t", "input_schema": {"type": "object"}}],
    )
    assert await engine_for(server).count_tokens(request) == 31
    (body,) = server.bodies("/tokenize")
    assert body["model"] == "Qwen/Qwen3-8B"
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["tools"][0]["function"]["name"] == "t"


async def test_count_tokens_with_llama_cpp_template_and_tokenize() -> None:
    server = FakeOpenAIServer(
        {
            # llama.cpp's /tokenize refuses a messages body, then counts the rendered prompt.
            "/tokenize": [
                httpx.Response(500, json={"error": {"message": "content missing"}}),
                httpx.Response(200, json={"tokens": [1, 2, 3, 4]}),
            ],
            "/apply-template": [httpx.Response(200, json={"prompt": "<|im_start|>user\nHi"})],
        }
    )
    assert await engine_for(server).count_tokens(validated()) == 4
    assert server.bodies("/tokenize")[1] == {"content": "<|im_start|>user\nHi"}


async def test_template_refusing_late_system_messages_gets_them_folded() -> None:
    # vLLM answers 400 with the chat template's exception text.
    refusal = failure(400, "Conversation roles must alternate user/assistant/user/assistant/...")
    server = FakeOpenAIServer({"/v1/chat/completions": [refusal, streamed()]})
    request = validated(
        system="Be brief.",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "The user is in Paris."},
            {"role": "user", "content": "Weather?"},
        ],
    )
    events = await collect(engine_for(server), request)
    assert events[-1] == Finish("end_turn")
    first, second = server.bodies("/v1/chat/completions")
    assert [m["role"] for m in first["messages"]] == ["system", "user", "system", "user"]
    assert second["messages"] == [
        {"role": "system", "content": "Be brief.\n\nThe user is in Paris."},
        {"role": "user", "content": "Hi\n\nWeather?"},
    ]


async def test_a_refusal_nothing_can_fix_is_not_retried() -> None:
    refusal = failure(400, "System message must be at the beginning.")
    server = FakeOpenAIServer({"/v1/chat/completions": [refusal]})
    with pytest.raises(UpstreamError) as caught:
        await collect(engine_for(server), validated(system="Be brief."))
    assert caught.value.status == 400
    assert "System message must be at the beginning." in str(caught.value)
    assert len(server.requests) == 1
