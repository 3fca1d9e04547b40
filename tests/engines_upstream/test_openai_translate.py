"""Messages <-> chat completions translation, with recorded chunk sequences."""

from __future__ import annotations

import json
from typing import Any

from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    Usage,
)
from deskloop.engines.openai_translate import (
    ChunkTranslator,
    chat_completion_body,
    parse_tool_arguments,
)
from deskloop.server.protocol import MessagesRequest

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def validated(**fields: Any) -> dict[str, Any]:
    """The request as the server hands it to an engine."""
    fields.setdefault("model", "upstream-model")
    fields.setdefault("max_tokens", 100)
    return MessagesRequest.model_validate(fields).model_dump(exclude_none=True)


def run_chunks(chunks: list[dict[str, Any]], stop_sequences: list[str] | None = None) -> list[Any]:
    translator = ChunkTranslator(stop_sequences=stop_sequences or [])
    events: list[OutputEvent] = []
    for chunk in chunks:
        events.extend(translator.feed(chunk))
    return [*events, *translator.finish()]


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": fields, "finish_reason": finish}]}


def test_system_string_blocks_and_system_messages_become_system_messages() -> None:
    request = validated(
        system=[
            {"type": "text", "text": "x-anthropic-billing-header: cch=123;"},
            {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
        ],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "system", "content": [{"type": "text", "text": "Reminder."}]},
        ],
    )
    body = chat_completion_body(request, "fallback")
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "a\n\nb"},
        {"role": "system", "content": "Reminder."},
    ]


def test_sampling_is_passed_exactly_and_zero_stays_zero() -> None:
    request = validated(
        messages=[{"role": "user", "content": "hi"}],
        temperature=0,
        top_p=0.5,
        top_k=0,
        stop_sequences=["END"],
        max_tokens=7,
    )
    body = chat_completion_body(request, "fallback")
    assert body["model"] == "upstream-model"
    assert body["temperature"] == 0
    assert body["top_p"] == 0.5
    assert body["top_k"] == 0
    assert body["stop"] == ["END"]
    assert body["max_tokens"] == 7
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "tools" not in body and "tool_choice" not in body


def test_tool_history_becomes_tool_calls_and_tool_messages() -> None:
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    request = validated(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Two calls.", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "service down"},
                            {"type": "image", "source": image},
                        ],
                    },
                    {"type": "text", "text": "Summarise."},
                ],
            },
        ],
    )
    messages = chat_completion_body(request, "m")["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "toolu_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            },
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert messages[3]["role"] == "tool" and messages[3]["tool_call_id"] == "toolu_2"
    assert messages[3]["content"].startswith("Error: service down")
    # The tool result's image and the user's text follow the tool messages as one user turn.
    assert messages[4] == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "Summarise."},
        ],
    }
    assert len(messages) == 5


def test_tools_and_each_tool_choice() -> None:
    base = {"tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": "hi"}]}
    body = chat_completion_body(validated(**base), "m")
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    expected = {
        "auto": "auto",
        "any": "required",
        "none": "none",
        "tool": {"type": "function", "function": {"name": "get_weather"}},
    }
    for kind, wanted in expected.items():
        choice: dict[str, Any] = {"type": kind}
        if kind == "tool":
            choice["name"] = "get_weather"
        body = chat_completion_body(validated(**base, tool_choice=choice), "m")
        assert body["tool_choice"] == wanted
        assert "parallel_tool_calls" not in body
    body = chat_completion_body(
        validated(**base, tool_choice={"type": "auto", "disable_parallel_tool_use": True}), "m"
    )
    assert body["parallel_tool_calls"] is False


def test_text_stream_with_usage_only_in_the_last_chunk() -> None:
    events = run_chunks(
        [
            delta(role="assistant", content=""),
            delta(content="Hel"),
            delta(content="lo"),
            delta(finish="stop"),
            {
                "choices": [],
                "usage": {
                    "prompt_tokens": 40,
                    "completion_tokens": 2,
                    "prompt_tokens_details": {"cached_tokens": 32},
                },
            },
        ]
    )
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        Usage(input_tokens=8, output_tokens=2, cache_read_input_tokens=32),
        Finish("end_turn"),
    ]


def test_reasoning_content_becomes_thinking_before_text() -> None:
    events = run_chunks(
        [
            delta(reasoning_content="Think"),
            delta(reasoning="ing."),  # newer vLLM and Ollama name the field `reasoning`
            delta(content="Answer"),
            delta(finish="length"),
        ]
    )
    assert events[:3] == [ThinkingDelta("Think"), ThinkingDelta("ing."), TextDelta("Answer")]
    assert events[-1] == Finish("max_tokens")
    # No usage upstream: one chunk counted per token.
    assert events[-2] == Usage(input_tokens=0, output_tokens=3)


def tool_piece(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
) -> dict[str, Any]:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    piece: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        piece["id"] = id
        piece["type"] = "function"
    return piece


def test_tool_call_deltas_split_oddly_become_two_tool_blocks() -> None:
    events = run_chunks(
        [
            delta(content="Let me check."),
            delta(tool_calls=[tool_piece(0, id="call_a", name="get_weather", arguments="")]),
            delta(tool_calls=[tool_piece(0, arguments='{"ci')]),
            delta(tool_calls=[tool_piece(0, arguments='ty": "Par')]),
            delta(tool_calls=[tool_piece(0, arguments='is"}')]),
            # The second call's arguments arrive before its name (seen from some servers).
            delta(tool_calls=[tool_piece(1, arguments='{"city"')]),
            delta(tool_calls=[tool_piece(1, id="call_b", name="get_weather")]),
            delta(tool_calls=[tool_piece(1, arguments=': "Rome"}')]),
            delta(finish="tool_calls"),
        ]
    )
    assert events == [
        TextDelta("Let me check."),
        ToolCallStart("call_a", "get_weather"),
        ToolInputDelta('{"ci'),
        ToolInputDelta('ty": "Par'),
        ToolInputDelta('is"}'),
        ToolCallEnd({"city": "Paris"}),
        ToolCallStart("call_b", "get_weather"),
        ToolInputDelta('{"city"'),
        ToolInputDelta(': "Rome"}'),
        ToolCallEnd({"city": "Rome"}),
        Usage(input_tokens=0, output_tokens=8),
        Finish("tool_use"),
    ]


def test_name_repeated_in_every_piece_and_missing_id() -> None:
    # llama-cpp-python repeats name and id in every piece; some servers send no id at all.
    events = run_chunks(
        [
            delta(tool_calls=[tool_piece(0, name="get_weather", arguments="{")]),
            delta(tool_calls=[tool_piece(0, name="get_weather", arguments='"city": "Oslo"}')]),
            delta(finish="stop"),  # Ollama finishes tool calls with "stop"
        ]
    )
    start = events[0]
    assert isinstance(start, ToolCallStart)
    assert start.name == "get_weather" and start.id.startswith("toolu_")
    assert events[1:4] == [
        ToolInputDelta("{"),
        ToolInputDelta('"city": "Oslo"}'),
        ToolCallEnd({"city": "Oslo"}),
    ]
    assert events[-1] == Finish("tool_use")


def test_unparseable_arguments_keep_the_raw_text_in_the_deltas() -> None:
    events = run_chunks(
        [
            delta(tool_calls=[tool_piece(0, id="c", name="click", arguments="1}</tool_call>")]),
            delta(finish="tool_calls"),
        ]
    )
    assert events[1] == ToolInputDelta("1}</tool_call>")
    assert events[2] == ToolCallEnd({})


def test_cut_off_arguments_are_closed() -> None:
    assert parse_tool_arguments('{"city": "Par') == {"city": "Par"}
    assert parse_tool_arguments('{"ids": [1, 2,') == {"ids": [1, 2]}
    assert parse_tool_arguments('{"a": {"b": "x\\"y') == {"a": {"b": 'x"y'}}
    assert parse_tool_arguments("[1, 2]") == {}
    assert parse_tool_arguments("") == {}


def test_stop_sequence_named_by_vllm() -> None:
    chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "END"}]}
    events = run_chunks([delta(content="a"), chunk], stop_sequences=["END"])
    assert events[-1] == Finish("stop_sequence", "END")
    # A stop token id (an int) is an ordinary end of turn.
    chunk["choices"][0]["stop_reason"] = 128009
    assert run_chunks([chunk], stop_sequences=["END"])[-1] == Finish("end_turn")


def test_ollama_arguments_as_an_object() -> None:
    piece = {
        "index": 0,
        "id": "c",
        "function": {"name": "get_weather", "arguments": {"city": "Lima"}},
    }
    events = run_chunks([delta(tool_calls=[piece]), delta(finish="tool_calls")])
    assert json.loads(events[1].partial_json) == {"city": "Lima"}
    assert events[2] == ToolCallEnd({"city": "Lima"})


def test_a_prefilled_answer_is_continued() -> None:
    request = validated(
        messages=[
            {"role": "user", "content": "List three fruits."},
            {"role": "assistant", "content": "1. Apple\n2."},
        ]
    )
    body = chat_completion_body(request, "m")
    assert body["messages"][-1] == {"role": "assistant", "content": "1. Apple\n2."}
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False
    plain = chat_completion_body(validated(messages=[{"role": "user", "content": "hi"}]), "m")
    assert "continue_final_message" not in plain


def test_tool_choice_without_tools_is_left_out() -> None:
    request = validated(messages=[{"role": "user", "content": "hi"}], tool_choice={"type": "none"})
    assert "tool_choice" not in chat_completion_body(request, "m")


def test_two_whole_calls_in_one_chunk_without_indexes() -> None:
    # Older Ollama: complete calls, no `index`, several in one delta.
    pieces = [
        {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "c2", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]
    events = run_chunks([delta(tool_calls=pieces), delta(finish="stop")])
    assert events[:6] == [
        ToolCallStart("c1", "get_weather"),
        ToolInputDelta('{"city": "Oslo"}'),
        ToolCallEnd({"city": "Oslo"}),
        ToolCallStart("c2", "get_weather"),
        ToolInputDelta('{"city": "Rome"}'),
        ToolCallEnd({"city": "Rome"}),
    ]
    assert events[-1] == Finish("tool_use")
