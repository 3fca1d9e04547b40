"""Each way the wire to the model server can fail gets its own true message, on real sockets.

The SDK's 1.x line runs on httpx and its 2.x line on httpx2; both transports are driven
here against the same misbehaving servers (test fakes on loopback), so the messages stay
true whichever SDK a machine has. The sessions at the end go through the installed SDK.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

from deskloop.agent.endpoint import EndpointError
from deskloop.agent.session import SessionOptions, open_session
from deskloop.agent.steps import RunEnded
from deskloop.agent.transport_failure import TransportFailure, classify
from deskloop.store import Store

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TRANSPORTS: list[Any] = [httpx, httpx2]

_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 0},
    },
}
_EVENT = f"event: message_start\ndata: {json.dumps(_START)}\n\n".encode()


async def _read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A stuck model server (test fake): reads the request, then says nothing."""
    await _read_request(reader)
    await asyncio.sleep(30)


async def starts_then_cuts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A model server (test fake) that starts a streamed answer and drops the connection."""
    await _read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + f"{len(_EVENT):x}\r\n".encode() + _EVENT + b"\r\n"
    )
    await writer.drain()
    writer.close()


async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A model server (test fake) that crashes on the request: closed before any answer."""
    await _read_request(reader)
    writer.close()


async def speaks_plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Plain HTTP where the client expects TLS (an https:// URL to an http server)."""
    await reader.read(1024)
    writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
    await writer.drain()
    writer.close()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def failure_of(transport: Any, url: str, *, stream: bool = False) -> BaseException:
    async with transport.AsyncClient(timeout=transport.Timeout(0.5)) as client:
        try:
            if stream:
                async with client.stream("POST", url, content=b"{}") as response:
                    async for _ in response.aiter_bytes():
                        pass
            else:
                await client.post(url, content=b"{}")
        except Exception as exc:
            return exc
    raise AssertionError(f"{url} did not fail")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.__name__)
async def test_each_failure_is_told_apart_on_both_transports(transport: Any) -> None:
    refused = await failure_of(transport, f"http://127.0.0.1:{closed_port()}/v1/messages")
    assert classify(refused, answer_started=False) is TransportFailure.REFUSED

    async with serving(never_answers) as port:
        stuck = await failure_of(transport, f"http://127.0.0.1:{port}/v1/messages")
    assert classify(stuck, answer_started=False) is TransportFailure.TIMED_OUT

    async with serving(speaks_plain_http) as port:
        not_tls = await failure_of(transport, f"https://127.0.0.1:{port}/v1/messages")
    assert classify(not_tls, answer_started=False) is TransportFailure.TLS

    async with serving(starts_then_cuts) as port:
        cut = await failure_of(transport, f"http://127.0.0.1:{port}/v1/messages", stream=True)
    assert classify(cut, answer_started=True) is TransportFailure.BROKE_OFF

    async with serving(hangs_up) as port:
        dropped = await failure_of(transport, f"http://127.0.0.1:{port}/v1/messages")
    assert classify(dropped, answer_started=False) is TransportFailure.DROPPED


async def test_an_unresolvable_host_is_not_called_refused() -> None:
    # .invalid never resolves (RFC 2606); the resolver answers without the network.
    failure = await failure_of(httpx2, "http://deskloop-test.invalid/v1/messages")
    assert classify(failure, answer_started=False) is TransportFailure.UNRESOLVED


async def _session_start_error(url: str) -> str:
    with pytest.raises(EndpointError) as raised:
        async with open_session(SessionOptions(endpoint=url, mcp_off=["all"])):
            pass
    return str(raised.value)


async def test_a_session_names_what_went_wrong_before_it_starts(tmp_path: Path) -> None:
    refused_url = f"http://127.0.0.1:{closed_port()}"
    said = await _session_start_error(refused_url)
    assert said.startswith(f"nothing is answering at {refused_url} (--endpoint): start the model")

    async with serving(speaks_plain_http) as port:
        said = await _session_start_error(f"https://127.0.0.1:{port}")
    assert said.startswith(f"the secure connection to https://127.0.0.1:{port} (--endpoint) failed")
    assert "http:// versus https://" in said
    with Store.open() as store:
        assert store.sessions() == []


async def test_cuts_and_hang_ups_mid_session_are_told_apart_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    async with serving(starts_then_cuts) as port:
        url = f"http://127.0.0.1:{port}"
        async with open_session(SessionOptions(endpoint=url, mcp_off=["all"])) as session:
            first = [step async for step in session.send("hello")]
            second = [step async for step in session.send("hello again")]
    for steps in (first, second):
        last = steps[-1]
        assert isinstance(last, RunEnded) and last.reason == "endpoint_error"
        assert last.message.startswith(f"the model server at {url} broke off its answer")
        assert "nothing is answering" not in last.message

    async with serving(hangs_up) as port:
        url = f"http://127.0.0.1:{port}"
        # The check before the session reads no model list from it: a crash, not a refusal.
        async with open_session(SessionOptions(endpoint=url, mcp_off=["all"])) as session:
            steps = [step async for step in session.send("hello")]
    last = steps[-1]
    assert isinstance(last, RunEnded) and last.reason == "endpoint_error"
    assert "closed the connection without answering" in last.message
    with Store.open() as store:
        assert [m.role for m in store.messages(session.session_id)] == ["user"]
