"""A tool call cut off by max_tokens is neither run nor kept, and the session stays valid.

deskloop's own server always closes a forced call (server/constraints.py), so the cut
comes from a model server (test fake) that streams half a call and stops at max_tokens,
as other servers do.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from deskloop.agent.session import SessionOptions, open_session
from deskloop.agent.steps import RunEnded, ToolCallStarted
from deskloop.store import Store


def _event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


CUT_ANSWER = b"".join(
    [
        _event("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 0}}}),
        _event("content_block_start", {"type": "content_block_start", "index": 0,
               "content_block": {"type": "tool_use", "id": "toolu_1", "name": "click",
                                 "input": {}}}),
        _event("content_block_delta", {"type": "content_block_delta", "index": 0,
               "delta": {"type": "input_json_delta", "partial_json": '{"id": "e'}}),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("message_delta", {"type": "message_delta",
               "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
               "usage": {"output_tokens": 6}}),
        _event("message_stop", {"type": "message_stop"}),
    ]
)


async def cut_at_max_tokens(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request with half a click call, stopped by max_tokens (test fake)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length")),
        0,
    )
    await reader.readexactly(length)
    if head.startswith(b"GET"):
        writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
    else:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + f"content-length: {len(CUT_ANSWER)}\r\n\r\n".encode() + CUT_ANSWER
        )
    await writer.drain()
    writer.close()


async def test_a_call_cut_by_max_tokens_is_not_run_and_the_session_stays_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_MAX_TOKENS_PER_TURN", "6")
    server = await asyncio.start_server(cut_at_max_tokens, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, open_session(SessionOptions(endpoint=url, mcp_off=["all"])) as session:
        first = [step async for step in session.send("Click the OK button.")]
        second = [step async for step in session.send("Try again.")]
    for steps in (first, second):
        assert not any(isinstance(step, ToolCallStarted) for step in steps)
        last = steps[-1]
        assert isinstance(last, RunEnded) and last.reason == "max_tokens"
        assert "cut at" in last.message
    with Store.open() as store:
        messages = store.messages(session.session_id)
        calls = store.tool_calls(session.session_id)
    assert calls == []
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert all(block["type"] != "tool_use" for m in messages for block in m.content)
