"""The database schema as an ordered list of small migrations, each recorded once applied."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[tuple[str, Migration]] = []


def migration(function: Migration) -> Migration:
    """Append `function` to the schema history; its name is what the table records."""
    MIGRATIONS.append((function.__name__, function))
    return function


@migration
def m001_sessions_messages_tool_calls(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            endpoint TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            system_prompt TEXT NOT NULL DEFAULT '',
            started_at REAL NOT NULL,
            ended_at REAL,
            end_reason TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content_json TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            UNIQUE (session_id, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE tool_calls (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            tool_use_id TEXT NOT NULL,
            name TEXT NOT NULL,
            input_json TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'running',
            result_json TEXT,
            is_error INTEGER NOT NULL DEFAULT 0,
            started_at REAL NOT NULL,
            duration_s REAL,
            UNIQUE (session_id, tool_use_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE turn_usage (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            turn INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            model_seconds REAL NOT NULL DEFAULT 0,
            stop_reason TEXT NOT NULL DEFAULT '',
            UNIQUE (session_id, turn)
        )
        """
    )
    db.execute("CREATE INDEX tool_calls_by_session ON tool_calls(session_id)")


@migration
def m002_message_search(db: sqlite3.Connection) -> None:
    # External-content FTS5 table over messages.text, kept in step by triggers.
    db.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5("
        "text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute(
        """
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END
        """
    )


@migration
def m003_routines_and_runs(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE routines (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            prompt TEXT NOT NULL,
            schedule TEXT NOT NULL,
            timezone TEXT NOT NULL,
            endpoint TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            enabled INTEGER NOT NULL DEFAULT 1,
            session_mode TEXT NOT NULL DEFAULT 'new' CHECK (session_mode IN ('new', 'resume')),
            timeout_s REAL NOT NULL,
            tools_json TEXT,
            next_fire_at REAL,
            run_requested_at REAL,
            last_session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE routine_runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('routine', 'observer')),
            routine_id INTEGER REFERENCES routines(id) ON DELETE CASCADE,
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'ok', 'error', 'timeout', 'empty')),
            slot REAL,
            catch_up INTEGER NOT NULL DEFAULT 0,
            started_at REAL NOT NULL,
            finished_at REAL,
            output TEXT NOT NULL DEFAULT '',
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            refused_tools_json TEXT NOT NULL DEFAULT '[]',
            owner_pid INTEGER,
            watched_session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
            watched_upto INTEGER,
            CONSTRAINT one_run_per_slot UNIQUE (routine_id, slot)
        )
        """
    )
    # The promises "never two runs of one routine at once" and "one observer at a time".
    db.execute(
        "CREATE UNIQUE INDEX routine_runs_one_live ON routine_runs(routine_id)"
        " WHERE status = 'running' AND kind = 'routine'"
    )
    db.execute(
        "CREATE UNIQUE INDEX observer_runs_one_live ON routine_runs(kind)"
        " WHERE status = 'running' AND kind = 'observer'"
    )
    db.execute("CREATE INDEX routine_runs_by_routine ON routine_runs(routine_id, id)")



@migration
def m004_knowledge_graph(db: sqlite3.Connection) -> None:
    # A node is found by its lowercase label or any lowercase alias (`kg_names`).
    db.execute(
        """
        CREATE TABLE kg_nodes (
            id INTEGER PRIMARY KEY,
            label TEXT NOT NULL,
            type TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE kg_names (
            name_key TEXT PRIMARY KEY,
            node_id INTEGER NOT NULL REFERENCES kg_nodes(id) ON DELETE CASCADE,
            name TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE kg_edges (
            id INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES kg_nodes(id) ON DELETE CASCADE,
            target_id INTEGER NOT NULL REFERENCES kg_nodes(id) ON DELETE CASCADE,
            relation TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (source_id, target_id, relation),
            CHECK (source_id != target_id)
        )
        """
    )
    db.execute("CREATE INDEX kg_names_by_node ON kg_names(node_id)")


@migration
def m005_observer_cards(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE observer_cards (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL
                CHECK (kind IN ('insight', 'pattern', 'skill_created', 'kg_update')),
            title TEXT NOT NULL,
            body TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'shown', 'acted', 'dismissed')),
            session_id INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX observer_cards_by_status ON observer_cards(status)")


@migration
def m006_indexed_files(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE indexed_files (
            path TEXT PRIMARY KEY,
            root TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            size INTEGER NOT NULL,
            modified_at REAL NOT NULL,
            indexed_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX indexed_files_by_name ON indexed_files(name COLLATE NOCASE)")
    db.execute("CREATE INDEX indexed_files_by_modified ON indexed_files(modified_at)")


@migration
def m007_browser_profile(db: sqlite3.Connection) -> None:
    # deskloop's own copy of what the user's browsers know; `edited` rows survive re-extraction.
    db.execute(
        """
        CREATE TABLE browser_items (
            id INTEGER PRIMARY KEY,
            browser TEXT NOT NULL,
            profile TEXT NOT NULL,
            kind TEXT NOT NULL
                CHECK (kind IN ('bookmark', 'top_site', 'address', 'form_entry')),
            title TEXT NOT NULL DEFAULT '',
            value TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '',
            edited INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL,
            UNIQUE (browser, profile, kind, value)
        )
        """
    )


@migration
def m008_session_state(db: sqlite3.Connection) -> None:
    # How a session's last run ended in words (failed: why, stopped at which limit), and
    # the process holding it open, so a session whose process died is not "running".
    db.execute("ALTER TABLE sessions ADD COLUMN end_detail TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE sessions ADD COLUMN owner_pid INTEGER")


@migration
def m009_routine_recording(db: sqlite3.Connection) -> None:
    # A routine whose body is a recording (recordings/): its runs replay it, no model.
    db.execute("ALTER TABLE routines ADD COLUMN recording TEXT NOT NULL DEFAULT ''")


@migration
def m010_replay_runs(db: sqlite3.Connection) -> None:
    # A bare `deskloop replay NAME` is a run too (no routine: routine_id NULL, the recording
    # named), and a replay's run says how many steps were done and which one failed.
    db.execute("ALTER TABLE routine_runs ADD COLUMN recording TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE routine_runs ADD COLUMN steps_done INTEGER")
    db.execute("ALTER TABLE routine_runs ADD COLUMN failed_step INTEGER")
    db.execute("CREATE INDEX routine_runs_by_recording ON routine_runs(recording, id)")


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; returns their names."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    applied = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
    newly_applied = []
    for name, function in MIGRATIONS:
        if name in applied:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while this one waited for the lock.
            done = db.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone()
            if done is None:
                function(db)
                db.execute(
                    "INSERT INTO schema_migrations VALUES (?, strftime('%s','now'))", (name,)
                )
                newly_applied.append(name)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return newly_applied
