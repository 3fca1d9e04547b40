"""Doctor: the screen's permission and environment checks, each failure with its fix."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.screen.doctor import add_extra_checks, run_doctor


async def doctor_report(request: Request) -> Response:
    report = await run_doctor()
    add_extra_checks(report)  # the browser's attach route, as `deskloop doctor` shows it
    return JSONResponse(report.to_json())


def doctor_routes() -> list[BaseRoute]:
    return [Route("/api/doctor", doctor_report, methods=["GET"])]
