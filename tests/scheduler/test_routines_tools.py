"""The routines_* tools: the model manages routines; changing one asks, showing its tools."""

from __future__ import annotations

import asyncio
import json

from deskloop.settings import AgentSettings
from deskloop.tools import (
    Answer,
    Dispatcher,
    PermissionPolicy,
    PermissionRequest,
    ToolCall,
    ToolContext,
    ToolRegistry,
    timeouts_from_settings,
)
from deskloop.tools.routines import routines_tools


class RecordingAsker:
    def __init__(self) -> None:
        self.asked: list[PermissionRequest] = []

    async def __call__(self, request: PermissionRequest) -> Answer:
        self.asked.append(request)
        return Answer.ALLOW_ONCE


def dispatcher(context: ToolContext, asker: RecordingAsker) -> Dispatcher:
    policy = PermissionPolicy.from_settings(AgentSettings(), asker)
    registry = ToolRegistry(routines_tools(context))
    return Dispatcher(registry, policy, timeouts_from_settings(AgentSettings()), context=context)


def call(tools: Dispatcher, tool: str, /, **arguments: object) -> tuple[str, str]:
    (outcome,) = asyncio.run(tools.run([ToolCall(f"tu_{tool}", tool, arguments)]))
    return outcome.status, " ".join(str(b.get("text", "")) for b in outcome.content)


def test_create_asks_first_and_the_question_names_the_tools(tool_context: ToolContext) -> None:
    asker = RecordingAsker()
    tools = dispatcher(tool_context, asker)
    status, said = call(
        tools, "routines_create", name="inbox", prompt="check mail",
        schedule="cron:0 9 * * *", timezone="Europe/Paris", tools=["observe", "click"],
    )  # fmt: skip
    assert status == "ok" and '"next_fire_at"' in said
    (question,) = asker.asked
    assert question.risk == "destructive"
    assert question.summary == (
        "routine 'inbox' on cron:0 9 * * *, running unattended with tools: observe, click"
    )
    call(tools, "routines_create", name="quiet", prompt="p", schedule="every:3600")
    assert asker.asked[-1].summary.endswith("tools: read-class tools only")
    status, listed = call(tools, "routines_list")
    assert status == "ok" and [r["name"] for r in json.loads(listed)] == ["inbox", "quiet"]
    assert len(asker.asked) == 2  # listing is read-class: nobody is asked


def test_bad_input_comes_back_as_an_error_the_model_can_correct(tool_context: ToolContext) -> None:
    tools = dispatcher(tool_context, RecordingAsker())
    status, said = call(tools, "routines_create", name="r", prompt="p", schedule="cron:0 9 * *")
    assert status == "bad_input" and "a cron schedule has 5" in said
    status, said = call(
        tools, "routines_create", name="r", prompt="p", schedule="every:60", timezone="Moon/Base"
    )
    assert status == "bad_input" and "unknown time zone 'Moon/Base'" in said
    status, said = call(
        tools, "routines_create", name="r", prompt="p", schedule="at:2001-01-01T00:00"
    )
    assert status == "bad_input" and "in the past" in said
    status, said = call(tools, "routines_runs", name="nope")
    assert status == "bad_input" and "no routine named 'nope'" in said
    # After the mistakes, real work: the corrected call goes through.
    status, _ = call(tools, "routines_create", name="r", prompt="p", schedule="every:60")
    assert status == "ok"
    status, said = call(tools, "routines_update", name="r", enabled=False)
    assert status == "ok" and '"enabled": false' in said
    status, said = call(tools, "routines_runs", name="r")
    assert status == "ok" and said == "no runs yet"
    status, said = call(tools, "routines_remove", name="r")
    assert status == "ok" and tool_context.store.routine("r") is None
