"""A bounded storm of clients against a running server: the load the server must survive.

Several clients at once send a seeded mix of streamed and whole answers, tool calls
(forced and auto), streams closed at random points (during prefill, after the first
delta, inside a streamed tool call) and requests whose own client timeout fires. Every
answer that completes is checked for its shape. Used by tests/server/test_storm.py and
by `deskloop bench server` (which watches the server's memory across two storms).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from .serving import assert_well_formed_stream, sse_events

TOOLS: list[dict[str, Any]] = [
    {
        "name": "click",
        "description": "Click an element by id.",
        "input_schema": {
            "type": "object",
            "properties": {"element_id": {"type": "string", "pattern": "^e[0-9]{1,3}$"}},
            "required": ["element_id"],
            "additionalProperties": False,
        },
    },
    {
        "name": "type_text",
        "description": "Type text into the focused element.",
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 16}},
            "required": ["text"],
            "additionalProperties": False,
        },
    },
]
TASKS = [
    "Save the document.",
    "Write a very long story about a lighthouse.",
    "Click the OK button, its id is e12.",
    "Type a greeting into the message box.",
    "List three fruits.",
    "What is two plus two?",
]
SCENARIOS = [
    "whole",
    "stream",
    "tool forced whole",
    "tool forced stream",
    "tool auto stream",
    "close during prefill",
    "close after first delta",
    "close inside tool call",
    "client timeout",
]
STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use"}


@dataclass
class StormReport:
    scenarios: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    closed_early: int = 0
    timed_out: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.scenarios.values())


def _body(chooser: random.Random, scenario: str, max_tokens: int) -> dict[str, Any]:
    task = f"{chooser.randrange(1000)}. {chooser.choice(TASKS)}"
    messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
    if chooser.random() < 0.3:  # a follow-up turn, so prefixes are shared and reused
        messages = [
            {"role": "user", "content": "Open the editor."},
            {"role": "assistant", "content": "The editor is open."},
            *messages,
        ]
    body: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": max_tokens,
        "messages": messages,
        "stream": "stream" in scenario or scenario.startswith("close"),
    }
    if "tool" in scenario:
        body["tools"] = TOOLS
        body["max_tokens"] = max(max_tokens, 32)  # room for a whole call
        if "auto" not in scenario:
            body["tool_choice"] = {"type": "tool", "name": chooser.choice(TOOLS)["name"]}
    if scenario == "client timeout":
        body["stream"] = chooser.random() < 0.5
        body["max_tokens"] = max_tokens * 4
    return body


def check_message(message: dict[str, Any]) -> None:
    """A whole answer (or a stream added up) has the shape a client relies on."""
    assert message["type"] == "message" and message["role"] == "assistant", message
    assert message["stop_reason"] in STOP_REASONS, message
    usage = message["usage"]
    assert usage["input_tokens"] + usage.get("cache_read_input_tokens", 0) > 0, usage
    assert usage["output_tokens"] >= 0, usage
    names = {tool["name"] for tool in TOOLS}
    for block in message["content"]:
        if block["type"] == "text":
            assert isinstance(block["text"], str)
        else:
            assert block["type"] == "tool_use", block
            assert block["id"].startswith("toolu_") and block["name"] in names, block
            assert isinstance(block["input"], dict), block
            if block["name"] == "click":
                assert re.fullmatch(r"e[0-9]+", block["input"]["element_id"]), block
    if message["stop_reason"] == "tool_use":
        assert any(block["type"] == "tool_use" for block in message["content"]), message


async def _stream_until(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    close_on: str | None,
    timeout: httpx.Timeout | None = None,
) -> dict[str, Any] | None:
    """Read a stream to its end (the message), or close it when `close_on` appears (None)."""
    options: dict[str, Any] = {"timeout": timeout} if timeout else {}
    async with client.stream("POST", "/v1/messages", json=body, **options) as response:
        if response.status_code != 200:
            raise _Refused(response.status_code, (await response.aread()).decode())
        lines: list[str] = []
        async for line in response.aiter_lines():
            lines.append(line)
            if close_on == "message_start" and line.startswith("data: "):
                return None
            if close_on and f'"type": "{close_on}"' in line:
                return None
    return assert_well_formed_stream(sse_events(lines))


class _Refused(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}: {text[:300]}")
        self.status = status


async def _one(
    client: httpx.AsyncClient, chooser: random.Random, scenario: str, max_tokens: int
) -> str:
    """Run one scenario; returns how it ended: completed, closed or timed out."""
    body = _body(chooser, scenario, max_tokens)
    close_on = {
        "close during prefill": "message_start",
        "close after first delta": "content_block_delta",
        "close inside tool call": "input_json_delta",
    }.get(scenario)
    if scenario == "close inside tool call":
        body.update(tools=TOOLS, tool_choice={"type": "tool", "name": "click"}, max_tokens=32)
    if scenario == "client timeout":
        timeout = httpx.Timeout(30, read=chooser.uniform(0.05, 0.6))
        try:
            if body["stream"]:
                message = await _stream_until(client, body, None, timeout)
            else:
                response = await client.post("/v1/messages", json=body, timeout=timeout)
                message = _whole(response)
        except httpx.TimeoutException:
            return "timed out"
        assert message is not None
        check_message(message)
        return "completed"
    if body["stream"]:
        message = await _stream_until(client, body, close_on)
        if message is None:
            return "closed"
    else:
        message = _whole(await client.post("/v1/messages", json=body))
    check_message(message)
    if "forced" in scenario:
        assert message["stop_reason"] in {"tool_use", "max_tokens"}, message
        if message["stop_reason"] == "tool_use":
            called = [block["name"] for block in message["content"] if block["type"] == "tool_use"]
            assert called[0] == body["tool_choice"]["name"], message
    return "completed"


def _whole(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise _Refused(response.status_code, response.text)
    message: dict[str, Any] = response.json()
    return message


async def run_storm(
    url: str, *, clients: int = 8, requests: int = 200, seed: int = 8, max_tokens: int = 8
) -> StormReport:
    """`requests` requests from `clients` concurrent clients; stops by itself."""
    report = StormReport()
    chooser = random.Random(seed)
    plan = [chooser.choice(SCENARIOS) for _ in range(requests)]
    next_index = iter(range(requests))

    async def client_loop(number: int) -> None:
        own = random.Random(seed * 1000 + number)
        # Generous: on a loaded 2-core machine a whole call can wait minutes behind 7 others.
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600)) as client:
            for index in next_index:
                scenario = plan[index]
                report.scenarios[scenario] += 1
                try:
                    outcome = await _one(client, own, scenario, max_tokens)
                except _Refused as exc:
                    if exc.status == 429:
                        report.refused += 1
                    else:
                        report.failures.append(f"#{index} {scenario}: {exc}")
                    continue
                except (AssertionError, KeyError, json.JSONDecodeError) as exc:
                    report.failures.append(f"#{index} {scenario}: malformed answer: {exc!r}")
                    continue
                except httpx.HTTPError as exc:
                    report.failures.append(f"#{index} {scenario}: {exc!r}")
                    continue
                if outcome == "completed":
                    report.completed += 1
                elif outcome == "closed":
                    report.closed_early += 1
                else:
                    report.timed_out += 1

    await asyncio.gather(*(client_loop(number) for number in range(clients)))
    return report


def storm(url: str, **options: Any) -> StormReport:
    """`run_storm` from synchronous code."""
    return asyncio.run(run_storm(url, **options))


def summary(report: StormReport) -> str:
    kinds = ", ".join(f"{name} {count}" for name, count in sorted(report.scenarios.items()))
    return (
        f"{report.sent} requests ({kinds}): {report.completed} completed, "
        f"{report.closed_early} closed early, {report.timed_out} timed out, "
        f"{report.refused} refused, {len(report.failures)} failures"
    )
