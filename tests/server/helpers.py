"""Building a server around the scripted engine, and reading SSE, for the protocol tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from deskloop.engines.base import LocalEngine
from deskloop.engines.scripted import ScriptedEngine
from deskloop.server.app import create_app
from deskloop.server.local_service import LocalModelService
from deskloop.settings import ServerSettings


def scripted_app(
    engine: LocalEngine | list[str], **settings: Any
) -> tuple[Starlette, LocalModelService]:
    if isinstance(engine, list):
        engine = ScriptedEngine(engine)
    config = replace(ServerSettings(), **settings)
    service = LocalModelService(
        engine,
        context_window=config.context_window,
        queue_size=config.queue_size,
        tool_format=config.tool_format,
        tool_diet=config.tool_diet,
    )
    return create_app(service, config, engine.name), service


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://deskloop.test"
    )


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def request_body(text: str = "Hello", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "scripted",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
    }
    body.update(fields)
    return body


@contextmanager
def running_server(app: Starlette) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
