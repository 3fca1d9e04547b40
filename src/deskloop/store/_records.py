"""The typed rows the store hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ContentBlock = dict[str, Any]
Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    title: str
    endpoint: str
    model: str
    system_prompt: str
    started_at: float
    ended_at: float | None
    end_reason: str | None
    # What the last run's end said (which limit, why it failed); the process holding it open.
    end_detail: str = ""
    owner_pid: int | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    session_id: int
    position: int
    role: Role
    content: list[ContentBlock]
    created_at: float

    def as_api_message(self) -> dict[str, Any]:
        """The message as the Anthropic Messages API takes it."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    session_id: int
    tool_use_id: str
    name: str
    input: Any
    status: str
    result: list[ContentBlock] | None
    is_error: bool
    started_at: float
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class TurnUsage:
    turn: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    model_seconds: float = 0.0
    stop_reason: str = ""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One session that matched: its best message and how many of its messages match."""

    session_id: int
    message_id: int
    role: Role
    snippet: str
    created_at: float
    hits: int = 1


@dataclass(frozen=True, slots=True)
class ResumedConversation:
    """A stored session ready to continue: its messages form a valid API conversation."""

    session: SessionRecord
    messages: list[dict[str, Any]]
    repaired_tool_use_ids: list[str]
