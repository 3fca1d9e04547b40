"""The HTTP side: routes, auth, limits, errors in the Anthropic envelope, SSE with pings."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from deskloop.engines.base import OutputEvent, Usage
from deskloop.server.admission import EngineQueue
from deskloop.server.errors import (
    APIError,
    AuthenticationFailed,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    new_request_id,
)
from deskloop.server.protocol import (
    CountTokensRequest,
    MessagesRequest,
    RequestInvalid,
    check_conversation,
    describe_validation_error,
)
from deskloop.server.responses import SSEWriter, TokenCount, collect_message
from deskloop.server.tool_schema import ToolSchemaInvalid, check_tool_schemas
from deskloop.settings import ServerSettings

log = logging.getLogger("deskloop.server")

STARTED_AT = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ModelService(Protocol):
    model_id: str
    queue: EngineQueue
    # Weights in the served model (0: unknown, e.g. behind an upstream) and its family.
    parameters: int
    family: str

    async def count_tokens(self, request: MessagesRequest) -> TokenCount: ...

    def run(self, request: MessagesRequest) -> AsyncIterator[OutputEvent]: ...


def error_response(error: APIError, request_id: str) -> JSONResponse:
    return JSONResponse(
        error.envelope(request_id), status_code=error.status, headers={"request-id": request_id}
    )


class MessagesAPI:
    """The routes, bound to one model service and the server settings."""

    def __init__(self, service: ModelService, settings: ServerSettings, engine_name: str):
        self.service = service
        self.settings = settings
        self.engine_name = engine_name
        self.aliases = {alias.lower() for alias in settings.aliases}

    # -- request plumbing ----------------------------------------------------------

    def _check_key(self, request: Request) -> None:
        expected = self.settings.api_key
        if not expected:
            return
        given = request.headers.get("x-api-key", "")
        authorization = request.headers.get("authorization", "")
        if not given and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if not given:
            raise AuthenticationFailed("x-api-key header is required")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationFailed("invalid x-api-key")

    async def _read_json(self, request: Request) -> Any:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"request body is {declared} bytes; the limit is {limit}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RequestTooLarge(f"request body is over the limit of {limit} bytes")
        if not body:
            raise InvalidRequest("request body is empty; send a JSON object")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc

    def _check_model(self, name: str) -> None:
        lowered = name.lower()
        if lowered == self.service.model_id.lower() or lowered in self.aliases:
            return
        if lowered.startswith("claude"):
            return  # clients built for the cloud ask for claude-*; they get the served model
        raise NotFound(
            f"model: {name} (this server serves {self.service.model_id!r}; "
            "claude-* names and configured aliases map to it)"
        )

    def _parse(self, data: Any, model: type[MessagesRequest]) -> MessagesRequest:
        if not isinstance(data, dict):
            raise InvalidRequest("request body must be a JSON object")
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            raise InvalidRequest(describe_validation_error(exc)) from exc
        try:
            check_conversation(parsed)
            check_tool_schemas(parsed.tools or [])
        except (RequestInvalid, ToolSchemaInvalid) as exc:
            raise InvalidRequest(str(exc)) from exc
        self._check_model(parsed.model)
        return parsed

    # -- routes --------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        self._check_key(request)
        parsed = self._parse(await self._read_json(request), MessagesRequest)
        events = aiter(self.service.run(parsed))
        # The first event comes before any waiting: errors found while preparing
        # (prompt too long, queue full, upstream refused) still get a proper status.
        try:
            first = await anext(events)
        except StopAsyncIteration as exc:
            raise InternalError("the model produced no answer") from exc
        if not isinstance(first, Usage):
            raise InternalError("the model service must report usage first")
        model = parsed.model
        if parsed.stream:
            body = self._stream(first, events, model, request.state.request_id)
            return StreamingResponse(
                body,
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "request-id": request.state.request_id},
            )
        return await self._whole(first, events, model, request)

    async def _whole(
        self, first: Usage, events: AsyncIterator[OutputEvent], model: str, request: Request
    ) -> Response:
        collecting = asyncio.ensure_future(collect_message(first, events, model=model))
        watching = asyncio.ensure_future(_wait_for_disconnect(request))
        try:
            done, _ = await asyncio.wait(
                {collecting, watching}, return_when=asyncio.FIRST_COMPLETED
            )
            if collecting not in done:
                collecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collecting
                log.info("client went away; generation stopped")
                return Response(status_code=499)
            return JSONResponse(
                collecting.result(), headers={"request-id": request.state.request_id}
            )
        finally:
            watching.cancel()
            await _close(events)

    async def _stream(
        self, first: Usage, events: AsyncIterator[OutputEvent], model: str, request_id: str
    ) -> AsyncIterator[bytes]:
        writer = SSEWriter(model)
        for chunk in writer.start(first):
            yield chunk
        interval = self.settings.ping_interval_s
        pending: asyncio.Future[OutputEvent] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(anext(events))
                while True:
                    done, _ = await asyncio.wait({pending}, timeout=interval)
                    if done:
                        break
                    yield writer.ping()
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    pending = None
                    break
                pending = None
                for chunk in writer.event(event):
                    yield chunk
            for chunk in writer.end():
                yield chunk
        except APIError as exc:
            for chunk in writer.error(exc.envelope(request_id)):
                yield chunk
        except Exception:
            log.exception("stream %s failed", request_id)
            failure = InternalError("the model failed while answering; see the server log")
            for chunk in writer.error(failure.envelope(request_id)):
                yield chunk
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await _close(events)

    async def count_tokens(self, request: Request) -> Response:
        self._check_key(request)
        parsed = self._parse(await self._read_json(request), CountTokensRequest)
        return JSONResponse((await self.service.count_tokens(parsed)).to_json())

    def _model_card(self) -> dict[str, Any]:
        return {
            "type": "model",
            "id": self.service.model_id,
            "display_name": f"{self.service.model_id} ({self.engine_name})",
            "created_at": STARTED_AT,
            **self._model_traits(),
        }

    def _model_traits(self) -> dict[str, Any]:
        """What a client needs to judge the model's size (the agent treats < ~4B as small)."""
        traits: dict[str, Any] = {"family": self.service.family}
        if self.service.parameters:
            traits["parameters"] = self.service.parameters
        return traits

    async def list_models(self, request: Request) -> Response:
        self._check_key(request)
        card = self._model_card()
        return JSONResponse(
            {"data": [card], "has_more": False, "first_id": card["id"], "last_id": card["id"]}
        )

    async def get_model(self, request: Request) -> Response:
        self._check_key(request)
        self._check_model(request.path_params["model_id"])
        return JSONResponse(self._model_card())

    async def health(self, request: Request) -> Response:
        queue = self.service.queue
        payload: dict[str, Any] = {
            "status": "ok",
            "model": self.service.model_id,
            "engine": self.engine_name,
            **self._model_traits(),
            "busy": queue.busy,
            "waiting": queue.waiting,
        }
        # Behind an upstream: what it enforces (server/upstream_service.py, probed once).
        upstream_report = getattr(self.service, "upstream_report", None)
        if upstream_report is not None:
            payload["upstream"] = await upstream_report()
        return JSONResponse(payload)


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _close(events: AsyncIterator[OutputEvent]) -> None:
    closer = getattr(events, "aclose", None)
    if closer is not None:
        with contextlib.suppress(RuntimeError):
            await closer()


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Every answer carries a request id; every failure is an envelope, never a traceback."""

    async def run(request: Request) -> Response:
        request.state.request_id = new_request_id()
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except APIError as exc:
            response = error_response(exc, request.state.request_id)
        except Exception:
            log.exception("request %s failed", request.state.request_id)
            failure = InternalError("internal server error; see the deskloop server log")
            response = error_response(failure, request.state.request_id)
        log.info(
            "%s %s -> %d (%.0f ms) %s",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            request.state.request_id,
        )
        return response

    return run


async def _http_error(request: Request, exc: Exception) -> Response:
    """Requests no route answers (unknown path, wrong method) get the envelope and a log line."""
    request_id = new_request_id()
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers: dict[str, str] = {}
    if status == 404:
        error: APIError = NotFound(f"no route for {request.method} {request.url.path}")
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "") if isinstance(exc, HTTPException) else ""
        error = MethodNotAllowed(
            f"{request.method} is not supported on {request.url.path}"
            + (f"; use {allowed}" if allowed else "")
        )
        if allowed:
            headers["allow"] = allowed
    else:
        log.error("request %s failed", request_id, exc_info=exc)
        error = InternalError("internal server error")
    response = error_response(error, request_id)
    response.headers.update(headers)
    log.info("%s %s -> %d %s", request.method, request.url.path, response.status_code, request_id)
    return response


def create_app(service: ModelService, settings: ServerSettings, engine_name: str) -> Starlette:
    api = MessagesAPI(service, settings, engine_name)
    routes = [
        Route("/v1/messages", _guarded(api.messages), methods=["POST"]),
        Route("/v1/messages/count_tokens", _guarded(api.count_tokens), methods=["POST"]),
        Route("/v1/models", _guarded(api.list_models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", _guarded(api.get_model), methods=["GET"]),
        Route("/health", _guarded(api.health), methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
    )
