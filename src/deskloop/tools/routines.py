"""The routines family: the model schedules its own future work.

Creating, changing or removing a routine is destructive (the default policy asks), and
the approval names the tools the routine will run unattended.
"""

from __future__ import annotations

import json
from typing import Any

from deskloop.routines.routines import (
    RoutineChanges,
    RoutineError,
    create_routine,
    list_routines,
    remove_routine,
    routine_runs,
    routine_to_json,
    run_to_json,
    tools_words,
    update_routine,
)
from deskloop.tools.contract import (
    BadToolArguments,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFamily,
    ToolInput,
    ToolOutput,
)
from deskloop.tools.tool_names import SessionToolNames

_NAME = {"type": "string", "description": "The routine's name: letters, digits, . _ -"}
_FIELDS: dict[str, Any] = {
    "prompt": {"type": "string", "description": "What the agent does when it fires."},
    "schedule": {
        "type": "string",
        "description": "cron:<5 fields> (cron:0 9 * * 1-5), every:<seconds> counted from "
        "the end of the last run, or at:<ISO time> (once).",
    },
    "tools": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Tool names it may use unattended; left out: read-class tools only.",
    },
    "timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Paris."},
    "endpoint": {"type": "string", "description": "Model endpoint URL for its sessions."},
    "model": {"type": "string", "description": "Model name to ask that endpoint for."},
    "timeout_s": {"type": "number", "description": "Seconds before a run is stopped."},
}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _tools_of(tool_input: ToolInput) -> tuple[str, ...] | None:
    tools = tool_input.get("tools")
    return None if tools is None else tuple(str(t) for t in tools)


def approval_text(tool_input: ToolInput) -> str:
    """What the person approves: the routine and the tools it will run unattended."""
    name = tool_input.get("name", "?")
    schedule = tool_input.get("schedule")
    when = f" on {schedule}" if schedule else ""
    if "tools" in tool_input or "schedule" in tool_input or "prompt" in tool_input:
        words = tools_words(_tools_of(tool_input))
        return f"routine {name!r}{when}, running unattended with tools: {words}"
    return f"routine {name!r}"


async def _create(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    try:
        routine = create_routine(
            context.store,
            str(tool_input["name"]),
            prompt=str(tool_input["prompt"]),
            schedule=str(tool_input["schedule"]),
            tools=_tools_of(tool_input),
            timezone=tool_input.get("timezone"),
            endpoint=str(tool_input.get("endpoint", "")),
            model=str(tool_input.get("model", "")),
            timeout_s=tool_input.get("timeout_s", context.settings.scheduler.routine_timeout_s),
            check_tools=SessionToolNames.for_context(context).check,
        )
    except RoutineError as exc:
        raise BadToolArguments(str(exc)) from exc
    return f"created: {json.dumps(routine_to_json(routine), ensure_ascii=False)}"


async def _update(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    changes = RoutineChanges(
        prompt=tool_input.get("prompt"),
        schedule=tool_input.get("schedule"),
        tools=_tools_of(tool_input),
        timezone=tool_input.get("timezone"),
        endpoint=tool_input.get("endpoint"),
        model=tool_input.get("model"),
        timeout_s=tool_input.get("timeout_s"),
        enabled=tool_input.get("enabled"),
    )
    try:
        routine = update_routine(
            context.store,
            str(tool_input["name"]),
            changes,
            check_tools=SessionToolNames.for_context(context).check,
        )
    except RoutineError as exc:
        raise BadToolArguments(str(exc)) from exc
    return f"updated: {json.dumps(routine_to_json(routine), ensure_ascii=False)}"


async def _remove(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    try:
        remove_routine(context.store, str(tool_input["name"]))
    except RoutineError as exc:
        raise BadToolArguments(str(exc)) from exc
    return f"removed routine {tool_input['name']!r} and its runs"


async def _replay(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    # Imported here: the screen and the recordings load only when a replay is asked for.
    from deskloop.recordings.commands import recording_files
    from deskloop.recordings.recording import RecordingError
    from deskloop.recordings.replay import DEFAULT_STEP_TIMEOUT_S, Replayer
    from deskloop.recordings.replay_runs import finish_replay_run, start_replay_run
    from deskloop.recordings.step_log import SessionStepLog
    from deskloop.store import RunResult
    from deskloop.tools.screen import screen_session

    files = recording_files()
    try:
        recording = files.load(str(tool_input["name"]))
    except RecordingError as exc:
        raise BadToolArguments(str(exc)) from exc
    dry_run = bool(tool_input.get("dry_run", False))
    log = None
    if context.session_id is not None and not dry_run:
        log = SessionStepLog(context.store, context.session_id)
    replayer = Replayer(
        await screen_session(context),
        files=files,
        step_timeout_s=float(tool_input.get("step_timeout_s", DEFAULT_STEP_TIMEOUT_S)),
        log=log,
    )
    if dry_run:
        return (await replayer.replay(recording, dry_run=True)).text()
    # A replay is a run, as a routine's is: `recordings runs NAME` lists it.
    run = start_replay_run(context.store, recording.name, context.session_id)
    try:
        report = await replayer.replay(recording)
    except BaseException:
        reached = replayer.report
        if reached is None:
            context.store.finish_run(run.id, RunResult("error", "the replay did not finish"))
        else:
            finish_replay_run(context.store, run.id, reached, RunResult("error", reached.text()))
        raise
    finish_replay_run(context.store, run.id, report)
    return report.text()


async def _list(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    routines = [routine_to_json(r) for r in list_routines(context.store)]
    return json.dumps(routines, ensure_ascii=False) if routines else "no routines yet"


async def _runs(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    try:
        runs = routine_runs(context.store, str(tool_input["name"]), int(tool_input.get("limit", 5)))
    except RoutineError as exc:
        raise BadToolArguments(str(exc)) from exc
    return json.dumps([run_to_json(r) for r in runs], ensure_ascii=False) if runs else "no runs yet"


def routines_tools(context: ToolContext) -> list[Tool]:
    update_fields = {
        **_FIELDS,
        "enabled": {"type": "boolean", "description": "false pauses it, true resumes it."},
    }
    return [
        Tool(
            name="routines_create",
            description="Schedule a task the agent will run by itself later, unattended, "
            "with only the tools listed.",
            input_schema=_schema({"name": _NAME, **_FIELDS}, ["name", "prompt", "schedule"]),
            risk="destructive",
            timeout_tier=TimeoutTier.INTERNAL,
            run=_create,
            explain=approval_text,
        ),
        Tool(
            name="routines_list",
            description="Every routine with its schedule, tools and next fire.",
            input_schema=_schema({}, []),
            risk="read",
            timeout_tier=TimeoutTier.INTERNAL,
            run=_list,
        ),
        Tool(
            name="routines_update",
            description="Change a routine; give only the fields to change.",
            input_schema=_schema({"name": _NAME, **update_fields}, ["name"]),
            risk="destructive",
            timeout_tier=TimeoutTier.INTERNAL,
            run=_update,
            explain=approval_text,
        ),
        Tool(
            name="routines_remove",
            description="Delete a routine and its run history.",
            input_schema=_schema({"name": _NAME}, ["name"]),
            risk="destructive",
            timeout_tier=TimeoutTier.INTERNAL,
            run=_remove,
            explain=approval_text,
        ),
        Tool(
            name="routines_runs",
            description="A routine's recent runs, newest first: status, output, tokens.",
            input_schema=_schema(
                {"name": _NAME, "limit": {"type": "integer", "minimum": 1, "maximum": 50}},
                ["name"],
            ),
            risk="read",
            timeout_tier=TimeoutTier.INTERNAL,
            run=_runs,
        ),
        Tool(
            name="replay_recording",
            description="Do a recorded demonstration again on the screen, step by step, "
            "without choosing each click; says which step failed and why.",
            input_schema=_schema(
                {
                    "name": {"type": "string", "description": "The recording's name."},
                    "dry_run": {
                        "type": "boolean",
                        "description": "Only check which steps would fail; do nothing.",
                    },
                    "step_timeout_s": {"type": "number", "minimum": 0.1, "maximum": 120},
                },
                ["name"],
            ),
            risk="act",
            timeout_tier=TimeoutTier.OTHER,
            run=_replay,
        ),
    ]


ROUTINES_FAMILY = ToolFamily(
    name="routines",
    routing="Work for later or on a schedule (every morning, in an hour): the routines_* tools.",
    build=routines_tools,
)
