"""An action that changes nothing visible, repeated, stops the run as three failures do."""

from typing import Any

from tool_fakes import fake_tool, memory_context

from deskloop.screen.diff import SnapshotDiff
from deskloop.tools import (
    Dispatcher,
    PermissionPolicy,
    TimeoutTier,
    ToolCall,
    ToolContext,
    ToolOutput,
    ToolRegistry,
)
from deskloop.tools.dispatch import NO_VISIBLE_CHANGE

ALL_AUTO = PermissionPolicy(
    {"read": "auto", "act": "auto", "destructive": "auto", "external": "auto"}
)
TIMEOUTS = {TimeoutTier.INTERNAL: 5.0, TimeoutTier.MCP: 5.0, TimeoutTier.OTHER: 5.0}
CLICK_SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
UNCHANGED = SnapshotDiff(before=2, after=3, added=(), removed=(), changed=())


async def typed_into_nothing(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    return f"typed {len(tool_input['text'])} characters into e5\n{UNCHANGED.render()}"


def test_the_screen_diff_says_it_in_the_words_the_dispatcher_counts() -> None:
    assert NO_VISIBLE_CHANGE in UNCHANGED.render()


async def test_the_same_action_with_no_visible_change_three_times_is_stuck() -> None:
    acting = fake_tool("type_text", typed_into_nothing, risk="act")
    looking = fake_tool("wait_for", typed_into_nothing, risk="read")
    run = Dispatcher(ToolRegistry([acting, looking]), ALL_AUTO, TIMEOUTS, context=memory_context())
    for number in range(3):
        waited = {"text": f"hello {number}"}  # the same read thrice is refused (test_repeats)
        (seen,) = await run.run([ToolCall(f"w{number}", "wait_for", waited)])
        assert seen.status == "ok"
    assert run.stuck_reason is None  # reading and seeing no change is not acting in vain
    await run.run([ToolCall("1", "type_text", {"text": "hello"})])
    await run.run([ToolCall("2", "type_text", {"text": "other"})])
    (second,) = await run.run([ToolCall("3", "type_text", {"text": "hello"})])
    assert second.status == "ok" and NO_VISIBLE_CHANGE in second.content[0]["text"]
    assert run.stuck_reason is None
    await run.run([ToolCall("4", "type_text", {"text": "hello"})])
    assert run.stuck_reason == (
        "the model made the same call 3 times and nothing visible changed (type_text with "
        '{"text": "hello"})'
    )


async def test_an_action_asked_for_again_right_after_it_worked_is_not_run_twice() -> None:
    """A second click on a check box would untick it: refused once, then the run ends."""
    clicks: list[str] = []

    async def click(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        clicks.append(tool_input["id"])
        return f'clicked {tool_input["id"]}\n~ {tool_input["id"]} check "Wi-Fi" checked'

    run = Dispatcher(
        ToolRegistry([fake_tool("click", click, risk="act", schema=CLICK_SCHEMA)]),
        ALL_AUTO,
        TIMEOUTS,
        context=memory_context(),
        refuse_repeats=True,  # as in a session where every turn is a call (small models)
    )
    (first,) = await run.run([ToolCall("1", "click", {"id": "e52"})])
    (again,) = await run.run([ToolCall("2", "click", {"id": "e52"})])
    assert first.status == "ok" and again.status == "repeated" and clicks == ["e52"]
    assert "call finish" in again.content[0]["text"]
    assert run.repeat_reason is None and run.stuck_reason is None
    (other,) = await run.run([ToolCall("3", "click", {"id": "e53"})])  # real work goes on
    (back,) = await run.run([ToolCall("4", "click", {"id": "e52"})])
    assert other.status == back.status == "ok" and clicks == ["e52", "e53", "e52"]
    await run.run([ToolCall("5", "click", {"id": "e52"})])
    await run.run([ToolCall("6", "click", {"id": "e52"})])
    assert clicks == ["e52", "e53", "e52"]
    assert run.repeat_reason is not None and "instead of finishing" in run.repeat_reason
