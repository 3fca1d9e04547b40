"""A read repeated with the same input and the same result is no progress."""

from typing import Any

from tool_fakes import fake_tool, memory_context

from deskloop.tools import (
    Dispatcher,
    PermissionPolicy,
    TimeoutTier,
    ToolCall,
    ToolContext,
    ToolOutput,
    ToolRegistry,
)

ALL_AUTO = PermissionPolicy(
    {"read": "auto", "act": "auto", "destructive": "auto", "external": "auto"}
)
TIMEOUTS = {TimeoutTier.INTERNAL: 5.0, TimeoutTier.MCP: 5.0, TimeoutTier.OTHER: 5.0}
ANY_INPUT: dict[str, Any] = {"type": "object"}
runs: list[dict[str, Any]] = []


async def empty_index(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    runs.append(tool_input)
    return "the file index is empty"


async def counter(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    runs.append(tool_input)
    return f"{len(runs)} files"


async def test_the_second_repeat_of_a_read_is_refused_and_left_out_of_the_next_offer() -> None:
    runs.clear()
    search = fake_tool("search_files", empty_index, risk="read", schema=ANY_INPUT)
    dispatcher = Dispatcher(ToolRegistry([search]), ALL_AUTO, TIMEOUTS, context=memory_context())
    same = {"query": "invoice"}
    first = await dispatcher.run([ToolCall("1", "search_files", same)])
    second = await dispatcher.run([ToolCall("2", "search_files", same)])
    assert [o.status for o in first + second] == ["ok", "ok"]
    assert dispatcher.withheld == set()
    (third,) = await dispatcher.run([ToolCall("3", "search_files", same)])
    assert third.status == "no_progress"
    assert "already gave the same result twice" in third.content[0]["text"]
    assert len(runs) == 2  # the third was not run
    assert dispatcher.withheld == {"search_files"}
    assert dispatcher.repeat_reason is None
    (other,) = await dispatcher.run([ToolCall("4", "search_files", {"query": "receipt"})])
    assert other.status == "ok"  # other input: real work goes on
    (fourth,) = await dispatcher.run([ToolCall("5", "search_files", same)])
    assert fourth.status == "no_progress"
    assert dispatcher.repeat_reason == (
        "the model kept repeating search_files with the same input, which gave the same "
        "result each time"
    )


async def test_a_read_whose_result_changes_is_never_refused() -> None:
    runs.clear()
    count = fake_tool("count_files", counter, risk="read", schema=ANY_INPUT)
    dispatcher = Dispatcher(ToolRegistry([count]), ALL_AUTO, TIMEOUTS, context=memory_context())
    outcomes = [await dispatcher.run([ToolCall(str(n), "count_files", {})]) for n in range(5)]
    assert [o.status for (o,) in outcomes] == ["ok"] * 5
