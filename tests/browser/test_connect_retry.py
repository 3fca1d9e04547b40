"""A browser deskloop started that takes the WebSocket and never answers is tried once more."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from playwright.async_api import async_playwright

from deskloop.tools.browser.connection import _connect_over_cdp

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def silent_websocket_server(connections: list[int]) -> asyncio.Server:
    """Accepts WebSocket upgrades, then says nothing (as the hung Chromium did)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID.encode()).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await writer.drain()
        connections.append(1)
        await reader.read()  # until the client gives up and closes
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_a_silent_browser_is_tried_again_then_the_timeout_is_told() -> None:
    connections: list[int] = []
    server = await silent_websocket_server(connections)
    port = server.sockets[0].getsockname()[1]
    playwright = await async_playwright().start()
    try:
        with pytest.raises(PlaywrightTimeoutError):
            await _connect_over_cdp(
                playwright, f"ws://127.0.0.1:{port}/devtools/browser/x", [1.0, 1.0]
            )
        assert len(connections) == 2
    finally:
        await playwright.stop()
        server.close()
