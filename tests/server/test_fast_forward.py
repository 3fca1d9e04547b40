"""Fast-forward through the server on the scripted engine (issue 21): for every format
family's grammar, the same answer whole and streamed with it on and off, and a forced call
costs fewer passes by the share of it the grammar forces."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from deskloop.engines.scripted import ScriptedEngine
from deskloop.server.constraints import build_guide, count_forced
from deskloop.server.tool_formats import TOOL_FORMATS, tool_format
from tests.tool_formats.helpers import TOOLS

from .helpers import client_for, parse_sse, request_body, scripted_app

FAMILIES = sorted(TOOL_FORMATS)
TOOL_SPECS = [tool.model_dump(mode="json") for tool in TOOLS]
CALL = ("type_text", {"text": "hello, {world}", "submit": True})


def answers(family: str) -> list[str]:
    """What the scripted model writes: a call alone, text then a call, text alone."""
    call = tool_format(family).write_call(*CALL)
    return [call, f"Typing it now. {call}", "Nothing to do here."]


def content_of(message: dict[str, Any]) -> list[Any]:
    """The answer without its random tool_use ids."""
    return [
        [block["type"], block.get("text"), block.get("name"), block.get("input")]
        for block in message["content"]
    ]


def content_of_stream(body: str) -> tuple[list[Any], str | None]:
    blocks: list[list[Any]] = []
    stop_reason = None
    for event, data in parse_sse(body):
        if event == "content_block_start":
            block = data["content_block"]
            blocks.append(
                [block["type"], "" if block["type"] == "text" else None, block.get("name"), ""]
            )
        elif event == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                blocks[-1][1] += delta["text"]
            else:
                blocks[-1][3] += delta["partial_json"]
        elif event == "message_delta":
            stop_reason = data["delta"]["stop_reason"]
    for block in blocks:
        if block[0] != "tool_use":
            block[3] = None
        elif block[3]:
            # A call the model broke keeps its streamed text, as it came.
            with contextlib.suppress(json.JSONDecodeError):
                block[3] = json.loads(block[3])
    return blocks, stop_reason


async def ask(family: str, script: str, fast: bool, choice: str, *, stream: bool) -> Any:
    engine = ScriptedEngine([script], guided=True)
    engine.fast_forward = fast
    app, _ = scripted_app(engine, tool_format=family)
    body = request_body("Type it.", tools=TOOL_SPECS, tool_choice={"type": choice}, max_tokens=300)
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json={**body, "stream": stream})
    assert response.status_code == 200, response.text
    answer = (
        content_of_stream(response.text)
        if stream
        else (content_of(response.json()), response.json()["stop_reason"])
    )
    return answer, engine.last_decode


@pytest.mark.parametrize("family", FAMILIES)
async def test_the_same_answer_with_fast_forward_on_and_off(family: str) -> None:
    for script, choice in zip(answers(family), ["any", "auto", "auto"], strict=True):
        seen = []
        for fast in (False, True):
            for stream in (False, True):
                (content, stop_reason), _ = await ask(family, script, fast, choice, stream=stream)
                seen.append((content, stop_reason))
        assert all(answer == seen[0] for answer in seen), (script, seen)
        # Llama 3 reads a call only at the start of an answer (its text may hold JSON).
        if script != "Nothing to do here." and (family != "llama3" or choice == "any"):
            kinds = [block[0] for block in seen[0][0]]
            assert kinds[-1] == "tool_use" and seen[0][1] == "tool_use", seen[0]
            assert seen[0][0][-1][2:] == [CALL[0], CALL[1]]


@pytest.mark.parametrize("family", FAMILIES)
async def test_a_forced_call_costs_fewer_passes_by_its_forced_share(family: str) -> None:
    script = tool_format(family).write_call(*CALL)
    _, off = await ask(family, script, False, "any", stream=False)
    _, on = await ask(family, script, True, "any", stream=False)
    assert off is not None and on is not None
    assert on.tokens == off.tokens
    assert off.forced == 0 and on.forced > 0
    # Off, every token out is evaluated; on, only those the model chose.
    assert off.passes >= off.tokens - 1
    assert on.passes <= on.tokens * (1 - on.forced / on.tokens)
    # The share is what the grammar forces of this call, walked token by token.
    engine = ScriptedEngine([], guided=True)
    tokenizer = engine.guidance_tokenizer()
    fmt = tool_format(family)
    guide = build_guide(tokenizer, fmt, TOOLS, "any", stop_tokens=engine.stop_token_ids)
    assert guide is not None
    assert count_forced(guide, engine.tokenize(script)) == on.forced
    assert on.forced / on.tokens > 0.5, (family, on)
