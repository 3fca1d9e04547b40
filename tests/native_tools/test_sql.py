"""`execute_sql` against its injection suite: whatever is tried, the database stays unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from deskloop.settings import load_settings
from deskloop.store import Store
from deskloop.tools import BadToolArguments, Tool, ToolContext
from deskloop.tools.sql import SCHEMA_SUMMARY, build_sql_tools


def _sql_tool(context: ToolContext, *, allow_writes: bool) -> Tool:
    context.settings.sql.allow_writes = allow_writes
    (tool,) = build_sql_tools(context)
    return tool


def _dump(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


@pytest.fixture
def filled(store: Store) -> Store:
    session = store.create_session(title="plan the trip")
    store.add_message(session.id, "user", "book the train to Lyon")
    with store.transaction() as db:
        db.execute(
            "INSERT INTO kg_nodes (label, type, created_at, updated_at) VALUES ('Lyon', 'place', 0, 0)"
        )
    return store


ATTACKS = [
    "SELECT 1; DROP TABLE sessions",
    "SELECT 1 --\n; DELETE FROM sessions",
    "SELECT '; ' FROM sessions; DELETE FROM messages WHERE 1",
    "SELECT 1 /* ; */; UPDATE sessions SET title = 'x' WHERE 1",
    "/* only a comment */ DELETE FROM sessions WHERE id = 1",
    "DROP TABLE kg_nodes",
    "CREATE TABLE stolen (a)",
    "ALTER TABLE kg_nodes ADD COLUMN x",
    "PRAGMA writable_schema = 1",
    "pragma journal_mode = delete",
    "ATTACH DATABASE 'elsewhere.db' AS other",
    "DETACH DATABASE main",
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT fts3_tokenizer('simple')",
    "WITH doomed AS (SELECT id FROM sessions) DELETE FROM sessions WHERE id IN doomed",
    "WITH x AS (SELECT 1) INSERT INTO messages (session_id, position, role, content_json, created_at)"
    " SELECT 1, 9, 'user', '[]', 0 FROM x",
    "WITH x AS (SELECT 1) UPDATE tool_calls SET status = 'ok' WHERE 1",
    "CREATE TRIGGER sneaky AFTER INSERT ON kg_nodes BEGIN DELETE FROM sessions; END",
    "REPLACE INTO sessions (id, title, started_at) VALUES (1, 'rewritten', 0)",
    "UPDATE sessions SET title = 'rewritten' WHERE id = 1",
    "DELETE FROM kg_nodes",
    "UPDATE kg_nodes SET label = 'x'",
    "VACUUM",
    "VACUUM INTO 'copy.db'",
    "BEGIN IMMEDIATE",
    "EXPLAIN DELETE FROM sessions WHERE 1",
    "SAVEPOINT a",
    "REINDEX",
    "ANALYZE",
    "INSERT INTO schema_migrations VALUES ('m999', 0)",
    "SELECT 1;;SELECT 2",
    "",
]


@pytest.mark.parametrize("allow_writes", [False, True], ids=["read-only", "writes-allowed"])
async def test_every_attack_is_refused_and_the_database_is_unchanged(
    filled: Store,
    context: ToolContext,
    allow_writes: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    tool = _sql_tool(context, allow_writes=allow_writes)
    before = _dump(filled.path)
    for attack in ATTACKS:
        with pytest.raises(BadToolArguments) as refused:
            await tool.run({"query": attack}, context)
        assert str(refused.value), attack
    assert _dump(filled.path) == before
    assert not (tmp_path / "copy.db").exists()
    assert not (tmp_path / "elsewhere.db").exists()


async def test_a_write_hidden_in_an_existing_trigger_is_refused(
    filled: Store, context: ToolContext
) -> None:
    # A trigger on a user table that reaches into the session record.
    with filled.transaction() as db:
        db.execute("CREATE TRIGGER wipe AFTER INSERT ON kg_nodes BEGIN DELETE FROM sessions; END")
    tool = _sql_tool(context, allow_writes=True)
    before = _dump(filled.path)
    with pytest.raises(BadToolArguments, match=r"DELETE on sessions.*inside trigger wipe"):
        await tool.run(
            {"query": "INSERT INTO kg_nodes (label, created_at, updated_at) VALUES ('x', 0, 0)"},
            context,
        )
    assert _dump(filled.path) == before


async def test_a_select_answers_as_a_compact_table_limited_to_200_rows(
    store: Store, context: ToolContext
) -> None:
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO kg_nodes (label, type, created_at, updated_at) VALUES (?, 'thing', 0, 0)",
            [(f"node {n}",) for n in range(250)],
        )
    tool = _sql_tool(context, allow_writes=False)
    answer = str(await tool.run({"query": "SELECT id, label FROM kg_nodes ORDER BY id"}, context))
    lines = answer.splitlines()
    assert lines[0] == "id | label"
    assert lines[1] == "1 | node 0"
    assert len(lines) == 1 + 200 + 1
    assert "stopped at 200" in lines[-1]
    small = str(await tool.run({"query": "select count(*) AS n from kg_nodes;"}, context))
    assert small.splitlines() == ["n", "250", "(1 row)"]
    own = str(await tool.run({"query": "SELECT label FROM kg_nodes LIMIT 3 -- three"}, context))
    assert own.splitlines()[-1] == "(3 rows)"


async def test_a_read_only_refusal_says_how_to_allow_writes(
    filled: Store, context: ToolContext
) -> None:
    tool = _sql_tool(context, allow_writes=False)
    query = {"query": "UPDATE kg_nodes SET type = 'city' WHERE label = 'Lyon'"}
    assert tool.risk_for(query) == "read"  # refused before it runs: nothing to approve
    with pytest.raises(BadToolArguments, match=r"sql\.allow_writes true"):
        await tool.run(query, context)


async def test_with_writes_allowed_a_write_is_destructive_and_reaches_only_user_tables(
    filled: Store, context: ToolContext
) -> None:
    tool = _sql_tool(context, allow_writes=True)
    update = {"query": "UPDATE kg_nodes SET type = 'city' WHERE label = 'Lyon'"}
    assert tool.risk_for(update) == "destructive"
    assert tool.risk_for({"query": "SELECT * FROM kg_nodes"}) == "read"
    assert await tool.run(update, context) == "1 row changed in kg_nodes"
    answer = await tool.run({"query": "SELECT type FROM kg_nodes WHERE label = 'Lyon'"}, context)
    assert str(answer).splitlines()[1] == "city"
    inserted = await tool.run(
        {
            "query": "INSERT INTO observer_cards (kind, title, created_at, updated_at)"
            " VALUES ('insight', 'trains are cheaper on Tuesdays', 0, 0) RETURNING id, title"
        },
        context,
    )
    assert str(inserted).splitlines()[:3] == [
        "1 row changed in observer_cards",
        "id | title",
        "1 | trains are cheaper on Tuesdays",
    ]
    # A refused write leaves a usable tool behind: the next read works.
    with pytest.raises(BadToolArguments, match="writes may only change"):
        await tool.run({"query": "DELETE FROM messages WHERE id = 1"}, context)
    assert "plan the trip" in str(await tool.run({"query": "SELECT title FROM sessions"}, context))


def test_the_schema_in_the_prompt_names_real_tables_and_columns(store: Store) -> None:
    db = sqlite3.connect(store.path)
    try:
        for entry in SCHEMA_SUMMARY.split():
            table, _, columns = entry.partition("(")
            real = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            assert real, f"no table {table}"
            assert set(columns.rstrip(")").split(",")) <= real, table
    finally:
        db.close()


def test_settings_default_to_read_only() -> None:
    assert load_settings().sql.allow_writes is False
