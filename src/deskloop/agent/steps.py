"""The typed steps an agent session yields, and the one function that turns a step into JSON.

The terminal view, the JSONL session log and the web UI's server-sent events all consume
the same stream; `step_to_json` is the only place a step becomes a dict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from deskloop.agent.ending import state_of
from deskloop.store import TurnUsage
from deskloop.tools import PermissionRequest, ToolCall, ToolOutcome, UntrustedSource

EndReason = Literal[
    "end_turn",
    "stop_sequence",
    "max_tokens",
    "max_turns",
    "max_session_tokens",
    "max_session_seconds",
    "repeated_failure",
    "repeated_call",
    "ask_followup",
    "endpoint_error",
    "refusal",
]
# What a notice is about: an MCP server's report or stderr line, the starting screen, a stop.
NoticeKind = Literal[
    "mcp_report",
    "mcp_stderr",
    "observe_first",
    "observe_first_skipped",
    "interrupted",
    "no_desktop",
    # How the session suits its model: its size, the tools offered, the task's steps.
    "model_size",
    "tool_routing",
    "task_steps",
    "task_step",
]
# Notices a person sees in the transcript as they happen.
SHOWN_NOTICES = frozenset({"model_size", "tool_routing", "task_steps", "task_step"})


@dataclass(frozen=True)
class SessionStarted:
    session_id: int
    endpoint: str
    model: str


@dataclass(frozen=True)
class UserMessage:
    text: str


@dataclass(frozen=True)
class TurnStarted:
    turn: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    call: ToolCall


@dataclass(frozen=True)
class ApprovalNeeded:
    """The policy is asking the person about this call; the tool waits for the answer."""

    call: ToolCall
    request: PermissionRequest


@dataclass(frozen=True)
class ToolCallFinished:
    outcome: ToolOutcome


@dataclass(frozen=True)
class FollowupAsked:
    question: str
    options: list[str]


@dataclass(frozen=True)
class TurnEnded:
    usage: TurnUsage


@dataclass(frozen=True)
class Notice:
    """Something that happened beside the turn: an MCP server crashed, a screen was read."""

    kind: NoticeKind
    message: str
    server: str = ""


@dataclass(frozen=True)
class RunEnded:
    """The last step of `send`: why the agent stopped, in words for the user."""

    reason: EndReason
    message: str


Step = (
    SessionStarted
    | UserMessage
    | TurnStarted
    | TextDelta
    | ToolCallStarted
    | ApprovalNeeded
    | ToolCallFinished
    | FollowupAsked
    | TurnEnded
    | Notice
    | RunEnded
)
StepConsumer = Callable[[Step], None]


def _maybe_dict(source: UntrustedSource | None) -> dict[str, Any] | None:
    return None if source is None else asdict(source)


def _said(outcome: ToolOutcome) -> str:
    return " ".join(str(block.get("text", "")) for block in outcome.content)


def step_to_json(step: Step) -> dict[str, Any]:
    """The step as one JSON object with an `event` name; the same for every consumer."""
    match step:
        case SessionStarted(session_id, endpoint, model):
            return {
                "event": "session_start",
                "session": session_id,
                "endpoint": endpoint,
                "model": model,
            }
        case UserMessage(text):
            return {"event": "user_message", "text": text}
        case TurnStarted(turn):
            return {"event": "turn_start", "turn": turn}
        case TextDelta(text):
            return {"event": "text_delta", "text": text}
        case ToolCallStarted(call):
            return {"event": "tool_start", "id": call.id, "name": call.name, "input": call.input}
        case ApprovalNeeded(call, request):
            return {
                "event": "approval_needed",
                "id": call.id,
                "name": call.name,
                "risk": request.risk,
                "input": request.input,
                "untrusted_source": _maybe_dict(request.untrusted_source),
            }
        case ToolCallFinished(outcome):
            record: dict[str, Any] = {
                "event": "tool_end",
                "id": outcome.call.id,
                "name": outcome.call.name,
                "status": outcome.status,
                "seconds": round(outcome.duration_s, 3),
            }
            if outcome.is_error:
                record["error"] = _said(outcome)
            return record
        case FollowupAsked(question, options):
            return {"event": "question", "question": question, "options": list(options)}
        case TurnEnded(usage):
            return {
                "event": "usage",
                "turn": usage.turn,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "model_seconds": round(usage.model_seconds, 3),
                "stop_reason": usage.stop_reason,
            }
        case Notice(kind, message, server):
            notice = {"event": "notice", "kind": kind, "message": message}
            return {**notice, "server": server} if server else notice
        case RunEnded(reason, message):
            state = state_of(reason, message)
            return {
                "event": "run_end",
                "reason": reason,
                "message": message,
                "state": state.state,
                "words": state.words,
            }


@dataclass
class StepChannel:
    """Where steps that happen beside the loop wait to join the stream, and its consumers.

    An MCP server can crash while the model is still writing; its notice waits here and
    is yielded with the next step. Every step the stream yields goes to `consumers` (the
    session log) in order; what is still waiting when a stream ends goes to them too.
    """

    consumers: list[StepConsumer] = field(default_factory=list)
    waiting: asyncio.Queue[Step] = field(default_factory=asyncio.Queue)

    def emit(self, step: Step) -> None:
        self.waiting.put_nowait(step)

    def deliver(self, step: Step) -> None:
        for consume in self.consumers:
            consume(step)

    def take_waiting(self) -> list[Step]:
        """Every waiting step, now delivered to the consumers, for the caller to show."""
        taken: list[Step] = []
        while not self.waiting.empty():
            step = self.waiting.get_nowait()
            self.deliver(step)
            taken.append(step)
        return taken
