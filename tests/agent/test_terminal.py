"""What a user sees: streamed text, each call with its arguments and result, a spinner on a tty."""

import asyncio
import io

from deskloop.agent.steps import (
    FollowupAsked,
    Notice,
    RunEnded,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
)
from deskloop.agent.terminal import TerminalView
from deskloop.store import TurnUsage
from deskloop.tools import ToolCall, ToolOutcome

CALL = ToolCall("tu_1", "type_text", {"id": "e4", "text": "hello"})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_turn_reads_as_text_then_calls_then_results() -> None:
    out = io.StringIO()
    view = TerminalView(out)
    view.show(TextDelta("Typing your "))
    view.show(TextDelta("greeting."))
    view.show(ToolCallStarted(CALL))
    view.show(ToolCallFinished(ToolOutcome(CALL, "ok", [{"type": "text", "text": "typed"}], 0.24)))
    view.show(TurnEnded(TurnUsage(1, 1200, 30, 1000, 0.8, "tool_use")))
    view.show(FollowupAsked("Send it?", ["yes", "no"]))
    view.show(RunEnded("max_turns", "stopped: reached 1 turns (agent.max_turns)"))
    view.finish()
    assert out.getvalue().splitlines() == [
        "Typing your greeting.",
        '→ type_text {"id": "e4", "text": "hello"}',
        "  ✓ type_text 0.2 s: typed",
        "? Send it?",
        "  1. yes",
        "  2. no",
        "[stopped: reached 1 turns (agent.max_turns)]",
    ]
    assert view.summary() == "1 turn, 1200 tokens in (1000 cached), 30 out, 0.8 s in the model"


async def test_a_spinner_runs_on_a_terminal_while_a_tool_does() -> None:
    out = Terminal()
    view = TerminalView(out)
    view.show(ToolCallStarted(CALL))
    for _ in range(100):  # until the first frame is drawn (every 0.1 s)
        await asyncio.sleep(0.05)
        if "⠋" in out.getvalue():
            break
    spinning = out.getvalue()
    view.show(ToolCallFinished(ToolOutcome(CALL, "timeout", [{"type": "text", "text": "t"}], 9.0)))
    view.finish()
    assert "\r\x1b[K⠋ running type_text for 0 s" in spinning
    assert out.getvalue().endswith("\r\x1b[K  ✗ type_text 9.0 s: t\n")


def test_a_report_about_an_mcp_server_goes_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = TerminalView(out, err)
    view.show_all(
        [
            Notice("mcp_report", "MCP server 'time' crashed and was restarted", "time"),
            Notice("mcp_stderr", "time server starting", "time"),
        ]
    )
    assert err.getvalue() == "deskloop: MCP server 'time' crashed and was restarted\n"
    assert out.getvalue() == ""
