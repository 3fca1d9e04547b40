"""`deskloop observe` and `deskloop doctor`: thin wrappers the CLI routes to."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json

from deskloop.screen.actions import ScreenSession
from deskloop.screen.errors import ScreenError
from deskloop.screen.observation import DEFAULT_BUDGET, FOR_CLI
from deskloop.screen.platforms import default_backend

# The screen's errors are written for the model, in its tools' names (observations have
# their own `FOR_CLI` wording); a person at the command line gets the same advice in words.
_FOR_PEOPLE = (
    ("Use open_app to start it, or pick one of these", "Start it first, or pick one of these"),
    ("Use open_app to start it", "Start it first"),
    ("Observe again, or open_app to start it", "Run `deskloop observe` again, or start it"),
)


async def _observe(app: str | None, pid: int | None, budget: int, as_json: bool) -> str:
    backend = await default_backend()
    try:
        session = ScreenSession(backend, budget, FOR_CLI)
        result = await session.observe(app=app, pid=pid)
        if as_json and result.snapshot is not None:
            return json.dumps(result.snapshot.to_json(), indent=1, ensure_ascii=False)
        return result.text
    finally:
        await backend.close()


def for_people(message: str) -> str:
    """A screen error with the model's tool names replaced by what a person does."""
    for said, meant in _FOR_PEOPLE:
        message = message.replace(said, meant)
    return message


def observe_command(args: argparse.Namespace) -> int:
    """Print the observation of a window (`--app`, `--pid`, or the focused one)."""
    budget = args.budget if args.budget is not None else DEFAULT_BUDGET
    if budget < 50:
        raise ScreenError(f"--budget {budget} is too small to show anything: use 50 or more")
    try:
        text = asyncio.run(_observe(args.app, args.pid, budget, args.json))
    except ScreenError as exc:
        raise ScreenError(for_people(str(exc))) from exc
    print(text)
    return 0


# `--endpoint URL`: what the model server there enforces, by `module:function` (as the
# doctor's extra checks are), so the screen package imports no engine.
ENDPOINT_SECTION = "deskloop.engines.openai_probe:endpoint_section"


def doctor_command(args: argparse.Namespace) -> int:
    """Check that deskloop can see and act on this desktop; exit 0 only if it can."""
    from deskloop.screen.doctor import add_extra_checks, run_doctor

    report = asyncio.run(run_doctor())
    add_extra_checks(report)
    endpoint = getattr(args, "endpoint", None)
    section: tuple[dict[str, object], list[str]] | None = None
    if endpoint:
        module_name, _, function_name = ENDPOINT_SECTION.partition(":")
        section = getattr(importlib.import_module(module_name), function_name)(endpoint)
    if args.json:
        data = report.to_json()
        if section is not None:
            data["endpoint"] = section[0]
        print(json.dumps(data, indent=1))
    else:
        print(report.render())
        if section is not None:
            print("\nmodel endpoint:")
            print("\n".join(f"  {line}" for line in section[1]))
    return report.exit_code
