"""Dispatch turns every model mistake into an is_error result and lets deskloop's bugs through."""

import asyncio
from typing import Any

import pytest
from tool_fakes import fake_tool, memory_context

from deskloop.settings import load_settings
from deskloop.tools import (
    BadToolArguments,
    Dispatcher,
    PermissionPolicy,
    TimeoutTier,
    Tool,
    ToolCall,
    ToolContext,
    ToolEvent,
    ToolFailed,
    ToolFinished,
    ToolOutput,
    ToolRegistry,
    ToolStarted,
    timeouts_from_settings,
)

ALL_AUTO = PermissionPolicy(
    {"read": "auto", "act": "auto", "destructive": "auto", "external": "auto"}
)
SHORT_TIMEOUTS = {TimeoutTier.INTERNAL: 0.2, TimeoutTier.MCP: 0.2, TimeoutTier.OTHER: 0.2}


def dispatcher(*tools: Tool, **kwargs: Any) -> Dispatcher:
    kwargs.setdefault("context", memory_context())
    return Dispatcher(ToolRegistry(tools), ALL_AUTO, SHORT_TIMEOUTS, **kwargs)


async def test_a_good_call_returns_the_tools_blocks() -> None:
    (outcome,) = await dispatcher(fake_tool("echo")).run([ToolCall("tu_1", "echo", {"text": "hi"})])
    assert outcome.status == "ok"
    assert outcome.result_block() == {
        "type": "tool_result",
        "tool_use_id": "tu_1",
        "content": [{"type": "text", "text": "echo: hi"}],
        "is_error": False,
    }


async def test_an_unknown_tool_names_the_close_ones() -> None:
    run = dispatcher(fake_tool("observe_window"), fake_tool("click"))
    (outcome,) = await run.run([ToolCall("tu_1", "observe_windows", {})])
    assert outcome.is_error and outcome.status == "unknown_tool"
    text = outcome.content[0]["text"]
    assert "Did you mean observe_window?" in text
    assert "Available tools: observe_window, click" in text


async def test_input_failing_the_schema_is_explained_and_the_tool_never_runs() -> None:
    ran = []

    async def record(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        ran.append(tool_input)
        return "ran"

    run = dispatcher(fake_tool("type_text", record))
    missing, wrong_type, not_object = await run.run(
        [
            ToolCall("a", "type_text", {}),
            ToolCall("b", "type_text", {"text": 5}),
            ToolCall("c", "type_text", '{"text": "hi"}'),
        ]
    )
    assert missing.status == "bad_input"
    assert "'text' is a required property" in missing.content[0]["text"]
    assert "at 'text': 5 is not of type 'string'" in wrong_type.content[0]["text"]
    assert "must be a JSON object, got str" in not_object.content[0]["text"]
    assert ran == []


async def test_a_tools_own_errors_become_results_by_kind() -> None:
    async def bad_arguments(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        raise BadToolArguments("no element e99 in the last observation; observe again")

    async def failed(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        raise ToolFailed("the window closed")

    run = dispatcher(fake_tool("click", bad_arguments), fake_tool("save", failed))
    click, save = await run.run(
        [ToolCall("a", "click", {"text": "x"}), ToolCall("b", "save", {"text": "x"})]
    )
    assert click.status == "bad_input"
    assert click.content[0]["text"] == (
        "invalid input for click: no element e99 in the last observation; observe again"
    )
    assert save.status == "error" and save.content[0]["text"] == "save failed: the window closed"


async def test_a_bug_in_deskloop_propagates_and_cancels_the_other_calls() -> None:
    cancelled = asyncio.Event()

    async def buggy(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        await asyncio.sleep(0)
        return {}["missing"]  # type: ignore[no-any-return]

    async def slow(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "done"

    run = dispatcher(fake_tool("buggy", buggy), fake_tool("slow", slow))
    with pytest.raises(KeyError, match="missing"):
        await run.run([ToolCall("a", "slow", {"text": ""}), ToolCall("b", "buggy", {"text": ""})])
    assert cancelled.is_set()


async def test_a_hung_tool_times_out_while_the_others_finish() -> None:
    hung_was_cancelled = asyncio.Event()

    async def hang(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        try:
            await asyncio.Event().wait()
        finally:
            hung_was_cancelled.set()
        return "never"

    run = dispatcher(fake_tool("hang", hang, tier=TimeoutTier.MCP), fake_tool("echo"))
    hung, echo = await run.run(
        [ToolCall("a", "hang", {"text": ""}), ToolCall("b", "echo", {"text": "still here"})]
    )
    assert hung.status == "timeout" and hung.is_error
    assert hung.content[0]["text"].startswith("hang timed out after 0.2 s and was cancelled")
    assert hung_was_cancelled.is_set()
    assert echo.status == "ok" and echo.content[0]["text"] == "echo: still here"


async def test_calls_of_one_turn_run_concurrently() -> None:
    all_arrived = asyncio.Barrier(3)

    async def meet(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        await all_arrived.wait()  # only returns once all three calls are running at once
        return "met"

    run = dispatcher(fake_tool("meet", meet))
    outcomes = await run.run([ToolCall(str(i), "meet", {"text": ""}) for i in range(3)])
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert [o.call.id for o in outcomes] == ["0", "1", "2"]


async def test_the_same_failing_call_three_times_marks_the_session_stuck() -> None:
    run = dispatcher(fake_tool("type_text"))
    await run.run([ToolCall("1", "type_text", {"text": 1})])
    await run.run([ToolCall("2", "type_text", {"text": 2})])
    await run.run([ToolCall("3", "type_text", {"text": 1})])
    assert run.stuck_reason is None
    await run.run([ToolCall("4", "type_text", {"text": 1})])
    assert run.stuck_reason is not None
    assert 'same failing call 3 times (type_text with {"text": 1})' in run.stuck_reason
    assert "is not of type 'string'" in run.stuck_reason


async def test_every_call_is_reported_when_it_starts_and_ends() -> None:
    events: list[ToolEvent] = []
    run = dispatcher(fake_tool("echo"), on_event=events.append)
    await run.run([ToolCall("a", "echo", {"text": "x"}), ToolCall("b", "nope", {})])
    started = [e.call.id for e in events if isinstance(e, ToolStarted)]
    finished = {e.outcome.call.id: e.outcome.status for e in events if isinstance(e, ToolFinished)}
    assert sorted(started) == ["a", "b"]
    assert finished == {"a": "ok", "b": "unknown_tool"}


async def test_the_tool_sees_the_sessions_context() -> None:
    async def which_session(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        return f"session {context.session_id}"

    run = dispatcher(fake_tool("whoami", which_session), context=memory_context(session_id=7))
    (outcome,) = await run.run([ToolCall("a", "whoami", {"text": ""})])
    assert outcome.content[0]["text"] == "session 7"


def test_timeout_tiers_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_TIMEOUT_MCP_S", "7")
    tiers = timeouts_from_settings(load_settings().agent)
    assert tiers == {TimeoutTier.INTERNAL: 10.0, TimeoutTier.MCP: 7.0, TimeoutTier.OTHER: 300.0}
