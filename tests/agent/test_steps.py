"""One step-to-JSON function: every kind of step becomes a JSON object with its own event name."""

import json

from deskloop.agent.steps import (
    ApprovalNeeded,
    FollowupAsked,
    Notice,
    RunEnded,
    SessionStarted,
    Step,
    StepChannel,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
    UserMessage,
    step_to_json,
)
from deskloop.store import TurnUsage
from deskloop.tools import PermissionRequest, ToolCall, ToolOutcome

CALL = ToolCall("tu_1", "delete_file", {"path": "/tmp/a"})
ONE_OF_EACH: list[Step] = [
    SessionStarted(3, "http://127.0.0.1:8888", "claude-x"),
    UserMessage("tidy up"),
    TurnStarted(1),
    TextDelta("Deleting."),
    ToolCallStarted(CALL),
    ApprovalNeeded(CALL, PermissionRequest("delete_file", "destructive", CALL.input, "Delete.")),
    ToolCallFinished(ToolOutcome(CALL, "denied", [{"type": "text", "text": "declined"}], 0.01)),
    FollowupAsked("Which folder?", ["Downloads"]),
    TurnEnded(TurnUsage(1, 100, 10, 50, 0.25, "tool_use")),
    Notice("mcp_report", "MCP server 'time' crashed and was restarted", "time"),
    RunEnded("ask_followup", "Which folder?"),
]


def test_every_step_kind_has_its_own_event_and_survives_json() -> None:
    records = [step_to_json(step) for step in ONE_OF_EACH]
    assert [r["event"] for r in records] == [
        "session_start",
        "user_message",
        "turn_start",
        "text_delta",
        "tool_start",
        "approval_needed",
        "tool_end",
        "question",
        "usage",
        "notice",
        "run_end",
    ]
    assert json.loads(json.dumps(records)) == records
    assert records[6] == {
        "event": "tool_end",
        "id": "tu_1",
        "name": "delete_file",
        "status": "denied",
        "seconds": 0.01,
        "error": "declined",
    }


def test_waiting_steps_reach_the_consumers_once_in_order() -> None:
    seen: list[Step] = []
    channel = StepChannel([seen.append])
    channel.emit(ONE_OF_EACH[0])
    channel.emit(ONE_OF_EACH[9])
    assert channel.take_waiting() == [ONE_OF_EACH[0], ONE_OF_EACH[9]]
    assert channel.take_waiting() == []
    assert seen == [ONE_OF_EACH[0], ONE_OF_EACH[9]]
