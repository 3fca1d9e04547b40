"""The conversation store: sessions, messages, tool calls and usage in one SQLite file.

One module per domain (`_sessions`, `_messages`, `_tool_calls`, `_usage`, and the user's
own tables: `_graph`, `_observer`, `_files`, `_browser_profile`), each an accessor class
over the one connection in `_connection`; `Store` gathers them. New tables
come as migrations appended to the one ordered list in `_migrations`.
"""

from deskloop.store._browser_profile import (
    BROWSER_ITEM_KINDS,
    BrowserItem,
    BrowserItemKind,
    ExtractedItem,
)
from deskloop.store._connection import StoreError, UnknownSession
from deskloop.store._database import INTERRUPTED_TOOL_MESSAGE, Store
from deskloop.store._files import (
    FileSearch,
    IndexedFile,
)
from deskloop.store._graph import (
    EdgeInput,
    GraphEdge,
    GraphNode,
    GraphSaveReport,
    NodeInput,
)
from deskloop.store._messages import searchable_text
from deskloop.store._migrations import MIGRATIONS, apply_migrations
from deskloop.store._observer import (
    CARD_KINDS,
    CARD_STATUSES,
    CardKind,
    CardStatus,
    ObserverCard,
)
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
from deskloop.store._routines import (
    RUN_STATUSES,
    RoutineBusy,
    RoutineFields,
    RoutineRecord,
    RunKind,
    RunRecord,
    RunResult,
    RunStatus,
    SessionMode,
    SlotTaken,
)

__all__ = [
    "BROWSER_ITEM_KINDS",
    "CARD_KINDS",
    "CARD_STATUSES",
    "INTERRUPTED_TOOL_MESSAGE",
    "MIGRATIONS",
    "RUN_STATUSES",
    "BrowserItem",
    "BrowserItemKind",
    "CardKind",
    "CardStatus",
    "ContentBlock",
    "EdgeInput",
    "ExtractedItem",
    "FileSearch",
    "GraphEdge",
    "GraphNode",
    "GraphSaveReport",
    "IndexedFile",
    "MessageRecord",
    "NodeInput",
    "ObserverCard",
    "ResumedConversation",
    "Role",
    "RoutineBusy",
    "RoutineFields",
    "RoutineRecord",
    "RunKind",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "SearchHit",
    "SessionMode",
    "SessionRecord",
    "SlotTaken",
    "Store",
    "StoreError",
    "ToolCallRecord",
    "TurnUsage",
    "UnknownSession",
    "apply_migrations",
    "searchable_text",
]
