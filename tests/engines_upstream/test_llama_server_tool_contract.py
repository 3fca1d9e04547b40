"""The tool contract through a real llama-server behind `deskloop serve --engine openai`.

llama-server built from the llama.cpp of the installed llama-cpp-python's sdist (issue 19:
asked directly with `tool_choice: "required"`, it answered Qwen2.5-Coder-0.5B's call as
text). Served: the embedded SmolLM2-135M and Qwen2.5-Coder-0.5B. Forced (`tool`, `any`) and
act-now `auto` requests, whole and streamed, must each give one valid `tool_use`, with an
id from a grounded enum the model cannot escape.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from tests.engines_upstream.llama_server import qwen_gguf, serving

from deskloop.engines.models import embedded_model_path

pytestmark = [pytest.mark.slow, pytest.mark.llama_server]

SERVE_START_TIMEOUT_S = 300.0  # the probe runs before serving: a few short generations
IDS = ["e41", "e42", "e43"]
CLICK = {
    "name": "click",
    "description": "Click an element on screen.",
    "input_schema": {
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "enum": IDS,
                "x-grounded": True,
                "description": "The element's id, from the screen.",
            }
        },
        "required": ["id"],
    },
}
TYPE_TEXT = {
    "name": "type_text",
    "description": "Type text into a text field.",
    "input_schema": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "enum": ["e44"], "x-grounded": True},
            "text": {"type": "string"},
        },
        "required": ["id", "text"],
    },
}
SCREEN = (
    "On screen (gtk3-widget-factory):\n[e41] page tab 'Page 1' (selected)\n"
    "[e42] page tab 'Page 2'\n[e43] page tab 'Page 3'\n[e44] text 'Search'"
)
CHOICES = {
    "tool": {"type": "tool", "name": "click"},
    "any": {"type": "any"},
    "auto": {"type": "auto"},
}


@pytest.fixture(scope="module", params=["smollm2", "qwen"])
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def upstream(model: str) -> Iterator[str]:
    with serving(embedded_model_path() if model == "smollm2" else qwen_gguf()) as url:
        yield url


@pytest.fixture(scope="module")
def deskloop(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`deskloop serve --engine openai --upstream` llama-server, as a user starts it."""
    log_path: Path = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [sys.executable, "-m", "deskloop", "serve", "--engine", "openai",
               "--upstream", f"{upstream}/v1", "--port", "0"]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        url = ""
        while not url and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"deskloop serve exited:\n{log_path.read_text()[-3000:]}")
            found = re.search(r"at (http://\S+)", line)
            url = found.group(1) if found else ""
        if not url:
            raise RuntimeError(f"deskloop serve did not start:\n{log_path.read_text()[-3000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        process.stdout.close()


def request_body(choice: str, *, stream: bool) -> dict[str, Any]:
    ask = "Select Page 2." if choice != "auto" else "Click the Page 2 tab now."
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 64,
        "temperature": 0,
        "stream": stream,
        "system": "You operate a desktop through tools.",
        "messages": [{"role": "user", "content": f"{ask}\n\n{SCREEN}"}],
        "tools": [CLICK, TYPE_TEXT],
        "tool_choice": CHOICES[choice],
    }


def check_call(name: str, tool_input: dict[str, Any]) -> None:
    tools = {"click": CLICK, "type_text": TYPE_TEXT}
    assert name in tools
    jsonschema.validate(tool_input, tools[name]["input_schema"])


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_health_says_what_llama_server_enforces(deskloop: str, model: str) -> None:
    upstream = httpx.get(f"{deskloop}/health", timeout=30).json()["upstream"]
    assert upstream["server"] == "llama.cpp"
    assert {"json_schema", "response_format", "grammar"} <= set(upstream["enforces"])
    assert upstream["forced_calls_through"] == "json_schema"
    # Asked directly with tool_choice "required", it answers with text (issue 19).
    assert upstream["native_tool_calls"] is False
    # SmolLM2's template has no tools: llama-server leaves them out of the prompt.
    assert upstream["template_shows_tools"] is (model == "qwen")


def smollm2_auto_is_not_expected(request: pytest.FixtureRequest, model: str, choice: str) -> None:
    if model == "smollm2" and choice == "auto":
        # Measured here: SmolLM2-135M answers "Click the Page 2 tab now." with prose or
        # code, tools described or not; nothing but a forced choice makes it call, and
        # deskloop never makes a call up (the agent forces every turn of a small model).
        reason = "SmolLM2-135M does not choose to call in auto mode"
        request.applymarker(pytest.mark.xfail(reason=reason, strict=False))


@pytest.mark.parametrize("choice", ["tool", "any", "auto"])
def test_each_choice_gives_one_valid_call_whole(
    deskloop: str, model: str, choice: str, request: pytest.FixtureRequest
) -> None:
    smollm2_auto_is_not_expected(request, model, choice)
    answer = httpx.post(
        f"{deskloop}/v1/messages", json=request_body(choice, stream=False), timeout=600
    ).json()
    calls = [block for block in answer["content"] if block["type"] == "tool_use"]
    assert len(calls) == 1, answer
    check_call(calls[0]["name"], calls[0]["input"])
    if choice == "tool":
        assert calls[0]["name"] == "click"
    assert answer["stop_reason"] == "tool_use"


@pytest.mark.parametrize("choice", ["tool", "any", "auto"])
def test_each_choice_gives_one_valid_call_streamed(
    deskloop: str, model: str, choice: str, request: pytest.FixtureRequest
) -> None:
    smollm2_auto_is_not_expected(request, model, choice)
    answer = httpx.post(
        f"{deskloop}/v1/messages", json=request_body(choice, stream=True), timeout=600
    )
    events = sse_events(answer.text)
    starts = [
        e["content_block"]
        for e in events
        if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use"
    ]
    assert len(starts) == 1, answer.text
    pieces = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    check_call(starts[0]["name"], json.loads("".join(pieces)))
    if choice != "auto":
        assert len(pieces) > 1  # the input streamed as the upstream wrote it
    stop = next(e for e in events if e["type"] == "message_delta")
    assert stop["delta"]["stop_reason"] == "tool_use"
