"""The conversation store: sessions, messages, tool calls and usage in one SQLite file."""

from deskloop.store._database import (
    INTERRUPTED_TOOL_MESSAGE,
    Store,
    StoreError,
    UnknownSession,
    searchable_text,
)
from deskloop.store._migrations import MIGRATIONS, apply_migrations
from deskloop.store._records import (
    ContentBlock,
    MessageRecord,
    ResumedConversation,
    Role,
    SearchHit,
    SessionRecord,
    ToolCallRecord,
    TurnUsage,
)

__all__ = [
    "INTERRUPTED_TOOL_MESSAGE",
    "MIGRATIONS",
    "ContentBlock",
    "MessageRecord",
    "ResumedConversation",
    "Role",
    "SearchHit",
    "SessionRecord",
    "Store",
    "StoreError",
    "ToolCallRecord",
    "TurnUsage",
    "UnknownSession",
    "apply_migrations",
    "searchable_text",
]
