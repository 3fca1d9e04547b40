"""Both upstream engines with a real `deskloop serve` process on either side.

- the anthropic engine forwarding to `deskloop serve --engine scripted`;
- `deskloop serve --engine openai` in front of llama-cpp-python's server, judged by the
  official `anthropic` SDK's streaming helper.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from deskloop.engines.anthropic import AnthropicEngine, load_anthropic_engine
from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    UpstreamError,
    Usage,
)
from deskloop.server.protocol import MessagesRequest

pytestmark = pytest.mark.slow

SERVE_START_TIMEOUT_S = 60.0
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

StartServe = Callable[..., str]


@pytest.fixture
def deskloop_serve(tmp_path: Path) -> Iterator[StartServe]:
    """Starts `deskloop serve ARGS --port 0` and returns its base URL; stops it afterwards."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        log_path = tmp_path / f"serve-{len(processes)}.log"
        command = [sys.executable, "-m", "deskloop", "serve", *args, "--port", "0"]
        with log_path.open("w") as log:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        processes.append(process)
        return wait_for_url(process, log_path)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def wait_for_url(process: subprocess.Popen[str], log_path: Path) -> str:
    """The URL from the one line `deskloop serve` prints on stdout when ready."""
    assert process.stdout is not None
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise RuntimeError(f"deskloop serve exited:\n{log_path.read_text()[-3000:]}")
        found = re.search(r"at (http://\S+)", line)
        if found:
            return found.group(1)
    raise RuntimeError(f"deskloop serve did not start:\n{log_path.read_text()[-3000:]}")


def script(tmp_path: Path, *outputs: str) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(list(outputs)))
    return str(path)


def validated(**fields: Any) -> dict[str, Any]:
    fields.setdefault("model", "scripted")
    fields.setdefault("max_tokens", 100)
    fields.setdefault("messages", [{"role": "user", "content": "Weather in Paris?"}])
    return MessagesRequest.model_validate(fields).model_dump(exclude_none=True)


async def collect(engine: AnthropicEngine, request: dict[str, Any]) -> list[OutputEvent]:
    return [event async for event in engine.stream(request)]


async def test_anthropic_engine_reads_deskloop_text_and_usage(
    deskloop_serve: StartServe, tmp_path: Path
) -> None:
    url = deskloop_serve("--engine", "scripted", "--script", script(tmp_path, "Hello there."))
    engine = load_anthropic_engine("", upstream=url)  # the model its /v1/models lists
    try:
        assert engine.model_id == "scripted"
        events = await collect(engine, validated())
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there."
        first, final = events[0], events[-2]
        assert isinstance(first, Usage) and first.input_tokens > 0
        assert isinstance(final, Usage) and final.output_tokens > 0
        assert events[-1] == Finish("end_turn")
        counted = await engine.count_tokens(validated())
        assert counted == first.input_tokens + first.cache_read_input_tokens
    finally:
        await engine.aclose()


async def test_anthropic_engine_reads_deskloop_tool_calls(
    deskloop_serve: StartServe, tmp_path: Path
) -> None:
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    url = deskloop_serve("--engine", "scripted", "--script", script(tmp_path, call))
    engine = load_anthropic_engine("scripted", upstream=url)
    try:
        events = await collect(engine, validated(tools=[WEATHER_TOOL]))
    finally:
        await engine.aclose()
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [start.name for start in starts] == ["get_weather"]
    assert ToolCallEnd({"city": "Paris"}) in events
    assert events[-1] == Finish("tool_use")


async def test_anthropic_engine_keeps_deskloop_errors(
    deskloop_serve: StartServe, tmp_path: Path
) -> None:
    scripted = script(tmp_path, "unused")
    url = deskloop_serve("--engine", "scripted", "--script", scripted, "--api-key", "right")
    wrong_key = load_anthropic_engine("scripted", upstream=url, upstream_api_key="wrong")
    unknown_model = load_anthropic_engine("scripted", upstream=url, upstream_api_key="right")
    try:
        with pytest.raises(UpstreamError) as refused:
            await collect(wrong_key, validated())
        assert (refused.value.status, refused.value.error_type) == (401, "authentication_error")
        with pytest.raises(UpstreamError) as missing:
            await collect(unknown_model, validated(model="no-such-model"))
        assert (missing.value.status, missing.value.error_type) == (404, "not_found_error")
        assert "no-such-model" in str(missing.value)
    finally:
        await wrong_key.aclose()
        await unknown_model.aclose()


@pytest.mark.llamacpp
def test_sdk_streams_through_deskloop_and_the_openai_engine(
    deskloop_serve: StartServe, llama_cpp_server: str
) -> None:
    url = deskloop_serve("--engine", "openai", "--upstream", llama_cpp_server)
    client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
    try:
        with client.messages.stream(
            model="claude-opus-5-5",
            max_tokens=8,
            extra_body={"temperature": 0},  # this SDK version has no temperature argument
            messages=[{"role": "user", "content": "Count from 1 to 50."}],
        ) as stream:
            streamed_text = "".join(stream.text_stream)
            message = stream.get_final_message()
        assert streamed_text.strip()
        assert message.content[0].type == "text" and message.content[0].text == streamed_text
        assert message.stop_reason == "max_tokens"
        assert message.usage.output_tokens > 0

        forced = client.messages.create(
            model="claude-opus-5-5",
            max_tokens=40,
            extra_body={"temperature": 0},
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "get_weather"},
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        )
        tool_uses = [block for block in forced.content if block.type == "tool_use"]
        assert [block.name for block in tool_uses] == ["get_weather"]
        assert forced.stop_reason == "tool_use"
    finally:
        client.close()
