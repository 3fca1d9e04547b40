"""The openai engine against a real OpenAI-compatible server (llama-cpp-python's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    UpstreamError,
    Usage,
)
from deskloop.engines.openai import OpenAIEngine, load_openai_engine
from deskloop.server.protocol import MessagesRequest

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def validated(**fields: Any) -> dict[str, Any]:
    fields.setdefault("model", "smollm2")
    fields.setdefault("max_tokens", 12)
    fields.setdefault("temperature", 0)
    return MessagesRequest.model_validate(fields).model_dump(exclude_none=True)


@pytest.fixture
async def engine(llama_cpp_server: str) -> AsyncIterator[OpenAIEngine]:
    created = create_engine("openai", "smollm2", upstream=llama_cpp_server)
    assert isinstance(created, OpenAIEngine)
    yield created
    await created.aclose()


async def collect(engine: OpenAIEngine, request: dict[str, Any]) -> list[OutputEvent]:
    return [event async for event in engine.stream(request)]


def text_of(events: list[OutputEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


async def test_streams_text_then_usage_and_stop_reason(engine: OpenAIEngine) -> None:
    request = validated(messages=[{"role": "user", "content": "Count from 1 to 50."}], max_tokens=6)
    events = await collect(engine, request)
    assert events[0] == Usage(input_tokens=0)
    assert text_of(events).strip()
    final_usage, finish = events[-2:]
    assert isinstance(final_usage, Usage) and final_usage.output_tokens > 0
    assert finish == Finish("max_tokens")


async def test_temperature_zero_is_greedy(engine: OpenAIEngine) -> None:
    request = validated(messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=8)
    first = text_of(await collect(engine, request))
    second = text_of(await collect(engine, request))
    assert first == second


async def test_forced_tool_call_streams_a_tool_block(engine: OpenAIEngine) -> None:
    request = validated(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        max_tokens=40,
    )
    events = await collect(engine, request)
    starts = [event for event in events if isinstance(event, ToolCallStart)]
    ends = [event for event in events if isinstance(event, ToolCallEnd)]
    assert [start.name for start in starts] == ["get_weather"]
    assert len(ends) == 1 and isinstance(ends[0].input.get("city"), str)
    streamed = "".join(e.partial_json for e in events if isinstance(e, ToolInputDelta))
    assert '"city"' in streamed
    assert events[-1] == Finish("tool_use")


async def test_tool_history_is_accepted_upstream(engine: OpenAIEngine) -> None:
    request = validated(
        system="Answer in one short sentence.",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny, 21 C"},
                    {"type": "text", "text": "And so?"},
                ],
            },
        ],
    )
    events = await collect(engine, request)
    assert text_of(events)
    assert isinstance(events[-1], Finish)


async def test_stop_sequence_ends_the_text(engine: OpenAIEngine) -> None:
    request = validated(
        messages=[{"role": "user", "content": "Write the numbers 1, 2, 3, 4, 5 with commas."}],
        stop_sequences=[","],
        max_tokens=20,
    )
    events = await collect(engine, request)
    assert "," not in text_of(events)
    finish = events[-1]
    # llama-cpp-python does not say which stop ended the text (vLLM does): best effort.
    assert isinstance(finish, Finish) and finish.stop_reason in ("end_turn", "stop_sequence")


async def test_stopping_early_frees_the_upstream(engine: OpenAIEngine) -> None:
    long_request = validated(
        messages=[{"role": "user", "content": "Tell a story."}], max_tokens=200
    )
    stream = engine.stream(long_request)
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # what the server does when its client disconnects
    short = validated(messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
    events = await collect(engine, short)
    assert events[-1] == Finish("max_tokens")


async def test_prompt_over_the_context_window_is_a_clear_error(engine: OpenAIEngine) -> None:
    request = validated(messages=[{"role": "user", "content": "word " * 2500}])
    with pytest.raises(UpstreamError) as caught:
        await collect(engine, request)
    assert caught.value.status == 502
    assert "context window" in str(caught.value)


async def test_count_tokens_without_a_tokenize_endpoint_says_so(engine: OpenAIEngine) -> None:
    with pytest.raises(UpstreamError) as caught:
        await engine.count_tokens(validated(messages=[{"role": "user", "content": "Hi"}]))
    assert caught.value.status == 404
    assert "/tokenize" in str(caught.value)


async def test_empty_model_takes_the_first_served_model(llama_cpp_server: str) -> None:
    engine = load_openai_engine("", upstream=llama_cpp_server)
    try:
        assert engine.model_id.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    finally:
        await engine.aclose()


async def test_sampling_extras_and_a_prefilled_answer_are_accepted(engine: OpenAIEngine) -> None:
    request = validated(
        messages=[
            {"role": "user", "content": "List three fruits."},
            {"role": "assistant", "content": "1. Apple\n2."},
        ],
        top_k=1,
        top_p=0.9,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        max_tokens=6,
    )
    events = await collect(engine, request)
    assert isinstance(events[-1], Finish)
