"""The store's public surface is exactly what its package names, and all of it imports."""

import deskloop.store


def test_the_public_names_are_the_intended_ones() -> None:
    assert sorted(deskloop.store.__all__) == [
        "ContentBlock",
        "INTERRUPTED_TOOL_MESSAGE",
        "MIGRATIONS",
        "MessageRecord",
        "RUN_STATUSES",
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
    assert all(hasattr(deskloop.store, name) for name in deskloop.store.__all__)
