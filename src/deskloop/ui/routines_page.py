"""Routines: list, create, edit, run now, remove, and each routine's runs with output and status.

Everything goes through `deskloop.routines`, the same API as `deskloop routines` and the
routines tools, so its checks and words apply here unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.routines import (
    RoutineChanges,
    create_routine,
    list_routines,
    remove_routine,
    routine_runs,
    routine_to_json,
    run_now,
    run_to_json,
    scheduler_running,
    update_routine,
)
from deskloop.store import Store
from deskloop.tools.tool_names import tool_list_check
from deskloop.ui.http import BadRequest, json_body, text_field

RUNS_SHOWN = 20


def routines_view(store: Store) -> dict[str, Any]:
    return {
        "routines": [routine_to_json(routine) for routine in list_routines(store)],
        "scheduler_pid": scheduler_running(),
    }


def _tools(body: dict[str, Any]) -> tuple[str, ...] | None:
    """Comma-separated tool names; blank means read-class tools only."""
    names = tuple(name.strip() for name in text_field(body, "tools").split(",") if name.strip())
    return names or None


def _timeout(body: dict[str, Any]) -> float | None:
    raw = body.get("timeout_s", "")
    if raw in ("", None):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"the timeout is a number of seconds, not {raw!r}") from None


def _enabled(body: dict[str, Any]) -> bool:
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("enabled must be true or false")
    return enabled


async def show(request: Request) -> Response:
    with Store.open() as store:
        return JSONResponse(routines_view(store))


async def create(request: Request) -> Response:
    body = await json_body(request)
    with Store.open() as store:
        create_routine(
            store,
            text_field(body, "name", required=True),
            prompt=text_field(body, "prompt"),
            schedule=text_field(body, "schedule", required=True),
            tools=_tools(body),
            timezone=text_field(body, "timezone") or None,
            endpoint=text_field(body, "endpoint"),
            model=text_field(body, "model"),
            timeout_s=_timeout(body),
            enabled=_enabled(body),
            check_tools=tool_list_check(store),
        )
        return JSONResponse(routines_view(store), status_code=201)


async def edit(request: Request) -> Response:
    """Every field of the form: a blank tools field means read-class tools only."""
    body = await json_body(request)
    tools = _tools(body)
    changes = RoutineChanges(
        prompt=text_field(body, "prompt"),
        schedule=text_field(body, "schedule", required=True),
        tools=tools,
        read_only_tools=tools is None,
        timezone=text_field(body, "timezone") or None,
        endpoint=text_field(body, "endpoint"),
        model=text_field(body, "model"),
        timeout_s=_timeout(body),
        enabled=_enabled(body),
        new_name=text_field(body, "name") or None,
    )
    with Store.open() as store:
        name = request.path_params["name"]
        update_routine(store, name, changes, check_tools=tool_list_check(store))
        return JSONResponse(routines_view(store))


async def run(request: Request) -> Response:
    with Store.open() as store:
        said = run_now(store, request.path_params["name"])
    return JSONResponse({"said": said})


async def remove(request: Request) -> Response:
    with Store.open() as store:
        remove_routine(store, request.path_params["name"])
        return JSONResponse(routines_view(store))


async def runs(request: Request) -> Response:
    with Store.open() as store:
        found = routine_runs(store, request.path_params["name"], RUNS_SHOWN)
    return JSONResponse({"runs": [run_to_json(one) for one in found]})


def routines_routes() -> list[BaseRoute]:
    one = "/api/routines/{name}"
    return [
        Route("/api/routines", show, methods=["GET"]),
        Route("/api/routines", create, methods=["POST"]),
        Route(one, edit, methods=["POST"]),
        Route(f"{one}/run", run, methods=["POST"]),
        Route(f"{one}/remove", remove, methods=["POST"]),
        Route(f"{one}/runs", runs, methods=["GET"]),
    ]
