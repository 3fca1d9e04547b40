"""HTTP plumbing shared by the upstream engines: URLs, timeouts, SSE, error mapping."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from deskloop.engines.base import UpstreamError

# Long prompts on a CPU upstream can take minutes before the first byte; connecting must not.
DEFAULT_READ_TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 10.0

API_KEY_HINT = (
    "set the upstream's key with `deskloop config set server.upstream_api_key KEY` "
    "or DESKLOOP_SERVER_UPSTREAM_API_KEY"
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

STATUSES = {error_type: status for status, error_type in ERROR_TYPES.items()}


def api_root(upstream: str) -> str:
    """The upstream's base URL without a trailing `/v1`: both spellings are common."""
    root = upstream.strip().rstrip("/")
    if not root:
        raise UpstreamError(
            "no upstream URL: pass --upstream URL (for example http://127.0.0.1:8000/v1)",
            status=500,
        )
    if not root.startswith(("http://", "https://")):
        raise UpstreamError(
            f"upstream URL {upstream!r} must start with http:// or https://", status=500
        )
    return root.removesuffix("/v1")


def new_client(
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    timeout = httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S)
    return httpx.AsyncClient(timeout=timeout, transport=transport)


def unreachable(url: str, error: httpx.TransportError) -> UpstreamError:
    """A connection failure, with what to check."""
    if isinstance(error, httpx.ConnectError):
        return UpstreamError(
            f"nothing answers at {url} ({error}); check that the upstream server is running "
            "and that --upstream names its address and port",
            status=502,
        )
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(
            f"the upstream at {url} did not answer in time ({type(error).__name__}); "
            "it may be overloaded or still loading its model",
            status=529,
            error_type="overloaded_error",
        )
    return UpstreamError(
        f"the connection to the upstream at {url} failed: {type(error).__name__}: {error}",
        status=502,
    )


@dataclass(frozen=True)
class UpstreamFailure:
    """An upstream's error answer, read whatever its shape."""

    status: int
    message: str
    error_type: str
    body: dict[str, Any]


def read_failure(status: int, text: str) -> UpstreamFailure:
    """Read the error shapes seen in the wild: OpenAI, Anthropic, FastAPI, vLLM, plain text."""
    try:
        body = json.loads(text) if text else {}
    except json.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message") or json.dumps(error)
        error_type = error.get("type")
    elif isinstance(error, str):
        message, error_type = error, None
    elif "message" in body:  # vLLM: {"object": "error", "message": ..., "type": ...}
        message, error_type = body["message"], body.get("type")
    elif "detail" in body:  # FastAPI
        detail = body["detail"]
        message, error_type = detail if isinstance(detail, str) else json.dumps(detail), None
    else:
        message, error_type = text.strip()[:500] or f"HTTP {status}", None
    return UpstreamFailure(status, str(message), str(error_type or ""), body)


def status_error(failure: UpstreamFailure, url: str) -> UpstreamError:
    """The error the server should answer with for an upstream's error status."""
    status = failure.status
    if status == 401:
        return UpstreamError(
            f"the upstream at {url} refused the API key: {failure.message}; {API_KEY_HINT}",
            status=401,
            error_type="authentication_error",
        )
    if status == 422:  # FastAPI's validation status: still a bad request
        status = 400
    if status in (502, 503, 504, 529):
        return UpstreamError(
            f"the upstream at {url} is overloaded or unavailable (HTTP {failure.status}): "
            f"{failure.message}",
            status=529,
            error_type="overloaded_error",
        )
    if status >= 500 or status not in ERROR_TYPES:
        return UpstreamError(
            f"the upstream at {url} failed (HTTP {failure.status}): {failure.message}",
            status=502,
        )
    return UpstreamError(
        f"upstream: {failure.message}", status=status, error_type=ERROR_TYPES[status]
    )


def first_served_model(root: str, headers: dict[str, str]) -> str:
    """The first model the upstream's `/v1/models` lists (for `--model` left empty)."""
    url = f"{root}/v1/models"
    try:
        response = httpx.get(url, headers=headers, timeout=CONNECT_TIMEOUT_S)
    except httpx.TransportError as exc:
        raise unreachable(url, exc) from exc
    if response.status_code >= 400:
        raise status_error(read_failure(response.status_code, response.text), url)
    try:
        models = response.json().get("data") or []
    except (json.JSONDecodeError, AttributeError):
        models = []
    if not models:
        raise UpstreamError(
            f"{url} lists no models; pass --model NAME",
            status=404,
            error_type="not_found_error",
        )
    return str(models[0]["id"])


async def read_failure_of(response: httpx.Response) -> UpstreamFailure:
    body = await response.aread()
    return read_failure(response.status_code, body.decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str


async def server_sent_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """Parse an SSE body: `event:` and `data:` lines, dispatched at each blank line."""
    event = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield ServerSentEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment, used as keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield ServerSentEvent(event or "message", "\n".join(data))
