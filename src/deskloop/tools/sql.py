"""`execute_sql`: one SQL statement on deskloop's own database, read-only unless the user allows.

Three locks, each enough alone for the read path: the statement is checked as text (one
statement, no EXPLAIN), compiled under an SQLite authorizer that refuses DDL, PRAGMA,
ATTACH, `load_extension` and any write it was not asked to allow, and reads run on a
connection opened `mode=ro`. Writes (setting `sql.allow_writes`) reach only the user's
tables, and an UPDATE or DELETE needs a WHERE.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from deskloop.tools.contract import (
    BadToolArguments,
    RiskClass,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFailed,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROW_LIMIT = 200
CELL_WIDTH = 80

# The tables a write may reach; everything else (sessions, messages, tool calls, routines,
# the schema) is deskloop's record of what happened and stays read-only.
USER_TABLES = frozenset(
    {"kg_nodes", "kg_names", "kg_edges", "observer_cards", "indexed_files", "browser_items"}
)

# What the model is told about the database, in the system prompt; a test checks that
# every table and column named here exists.
SCHEMA_SUMMARY = (
    "kg_nodes(id,label,type) kg_names(name_key,node_id,name) "
    "kg_edges(source_id,target_id,relation) "
    "observer_cards(id,kind,title,body,status,created_at) "
    "indexed_files(path,root,name,kind,size,modified_at) "
    "browser_items(id,browser,profile,kind,title,value,detail,tags) "
    "sessions(id,title,started_at) messages(id,session_id,role,text,created_at) "
    "tool_calls(session_id,name,status,is_error,started_at)"
)
ROUTING = "deskloop's own database (execute_sql, SQLite, times in Unix seconds): " + SCHEMA_SUMMARY

# Functions that reach outside the database: never callable from a query.
_REFUSED_FUNCTIONS = frozenset(
    {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"}
)
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE}
_WRITE_ACTIONS = {
    sqlite3.SQLITE_INSERT: "INSERT",
    sqlite3.SQLITE_UPDATE: "UPDATE",
    sqlite3.SQLITE_DELETE: "DELETE",
}
_REFUSED_ACTIONS = {
    sqlite3.SQLITE_PRAGMA: "PRAGMA",
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_TRANSACTION: "transaction control",
    sqlite3.SQLITE_SAVEPOINT: "SAVEPOINT",
    sqlite3.SQLITE_ANALYZE: "ANALYZE",
    sqlite3.SQLITE_REINDEX: "REINDEX",
}
_VERBS = ("select", "values", "insert", "replace", "update", "delete")

Mode = Literal["check", "read", "write"]


class SqlRefused(BadToolArguments):
    """A statement deskloop will not run; the message says what would be allowed."""


@dataclass(frozen=True)
class Token:
    kind: Literal["word", "quoted", "string", "symbol"]
    text: str
    depth: int
    end: int


_TOKEN = re.compile(
    r"""(?P<space>\s+)|(?P<line>--[^\n]*)|(?P<block>/\*.*?(?:\*/|\Z))"""
    r"""|(?P<string>'(?:[^']|'')*(?:'|\Z))|(?P<quoted>"(?:[^"]|"")*(?:"|\Z)|`[^`]*(?:`|\Z)|\[[^\]]*(?:\]|\Z))"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<symbol>.)""",
    re.DOTALL,
)


def tokens(sql: str) -> Iterator[Token]:
    """The statement's tokens without comments and blanks, each with its bracket depth."""
    depth = 0
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        text = match.group()
        if kind in ("space", "line", "block"):
            continue
        if text == ")":
            depth = max(depth - 1, 0)
        yield Token(kind, text, depth, match.end())  # type: ignore[arg-type]
        if text == "(":
            depth += 1


@dataclass(frozen=True)
class Statement:
    """A statement as text: its main verb, whether it has a top-level WHERE and LIMIT."""

    text: str
    verb: str
    has_where: bool
    has_limit: bool


def parse_statement(sql: str) -> Statement:
    """Check the text is exactly one statement and find its shape; refuse otherwise."""
    found = list(tokens(sql))
    while found and found[-1].text == ";":
        found.pop()
    if not found:
        raise SqlRefused("the query is empty; send one SQL statement, like SELECT * FROM kg_nodes")
    if any(token.text == ";" for token in found):
        raise SqlRefused("send one statement per call; split the query at its ';'")
    top = [token.text.lower() for token in found if token.kind == "word" and token.depth == 0]
    if top[:1] == ["explain"]:
        raise SqlRefused("send the statement itself, without EXPLAIN")
    # VACUUM INTO, for one, writes a file and passes no authorizer check: refused as text.
    if top[:1] not in (["with"], *([verb] for verb in _VERBS)):
        raise SqlRefused(
            "only SELECT (or WITH ... SELECT) statements, and INSERT/UPDATE/DELETE where the "
            "user allows writes; schema changes, PRAGMA, ATTACH and VACUUM are never allowed"
        )
    verb = next((word for word in top if word in _VERBS), "")
    after = top[top.index(verb) + 1 :] if verb in top else []
    return Statement(sql[: found[-1].end], verb, "where" in after, "limit" in after)


@dataclass
class Authorizer:
    """The SQLite authorizer of one statement: refuses what `mode` does not allow, records writes."""

    mode: Mode
    writes: list[tuple[str, str]] = field(default_factory=list)
    refused: str | None = None

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
    ) -> int:
        reason = self._reason(action, arg1, arg2, db)
        if reason is None:
            return sqlite3.SQLITE_OK
        if self.refused is None:
            where = (
                f" (inside trigger {source})" if source and not source.startswith("sqlite_") else ""
            )
            self.refused = reason + where
        return sqlite3.SQLITE_DENY

    def _reason(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None
    ) -> str | None:
        if action in _READ_ACTIONS:
            return None
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            return f"the function {name}() is not available" if name in _REFUSED_FUNCTIONS else None
        if action in _WRITE_ACTIONS:
            table = arg1 or ""
            self.writes.append((_WRITE_ACTIONS[action], table))
            if self.mode == "read":
                return f"{_WRITE_ACTIONS[action]} on {table}: the database is read-only here"
            if db != "main" or table not in USER_TABLES:
                return f"{_WRITE_ACTIONS[action]} on {table}: writes may only change " + ", ".join(
                    sorted(USER_TABLES)
                )
            return None
        if action in _REFUSED_ACTIONS:
            return f"{_REFUSED_ACTIONS[action]} is never allowed"
        return "schema changes (CREATE, DROP, ALTER) are never allowed"


@dataclass(frozen=True)
class Analysis:
    statement: Statement
    writes: tuple[tuple[str, str], ...]


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        # mode=ro: SQLite itself refuses to write through this connection.
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _raise_refused(authorizer: Authorizer, exc: sqlite3.Error) -> NoReturn:
    if authorizer.refused is not None:
        raise SqlRefused(f"refused: {authorizer.refused}") from exc
    raise BadToolArguments(f"SQLite: {exc}") from exc


def analyse(path: Path, sql: str) -> Analysis:
    """Compile the statement (EXPLAIN runs nothing) to learn what it would write."""
    statement = parse_statement(sql)
    authorizer = Authorizer("check")
    db = _connect(path, read_only=True)
    try:
        db.set_authorizer(authorizer)
        db.execute("EXPLAIN " + statement.text).fetchall()
    except sqlite3.Error as exc:
        _raise_refused(authorizer, exc)
    finally:
        db.close()
    if authorizer.refused is not None:
        raise SqlRefused(f"refused: {authorizer.refused}")
    return Analysis(statement, tuple(authorizer.writes))


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def format_table(columns: list[str], rows: list[tuple[Any, ...]], more: bool) -> str:
    """Rows as `a | b | c` lines under a header, with a count line."""
    if not columns:
        return "done"
    lines = [" | ".join(columns), *(" | ".join(map(_cell, row)) for row in rows)]
    count = f"({len(rows)} row{'s' if len(rows) != 1 else ''}"
    lines.append(count + (f"; stopped at {ROW_LIMIT}, add LIMIT/OFFSET for more)" if more else ")"))
    return "\n".join(lines)


def run_statement(path: Path, sql: str, *, allow_writes: bool) -> str:
    """Analyse, then run the statement: reads on a read-only connection, writes checked twice."""
    analysis = analyse(path, sql)
    statement = analysis.statement
    if not analysis.writes:
        text = statement.text
        if statement.verb in ("select", "values") and not statement.has_limit:
            # One row past the limit, to say whether there were more.
            text += f" LIMIT {ROW_LIMIT + 1}"
        authorizer = Authorizer("read")
        db = _connect(path, read_only=True)
        try:
            db.set_authorizer(authorizer)
            cursor = db.execute(text)
            rows = cursor.fetchmany(ROW_LIMIT + 1)
            columns = [column[0] for column in cursor.description or ()]
        except sqlite3.Error as exc:
            _raise_refused(authorizer, exc)
        finally:
            db.close()
        return format_table(columns, rows[:ROW_LIMIT], len(rows) > ROW_LIMIT)
    if not allow_writes:
        verb, table = analysis.writes[0]
        raise SqlRefused(
            f"refused: {verb} on {table}: the database is read-only for the agent; "
            "the user can allow writes to their own tables with "
            "`deskloop config set sql.allow_writes true`"
        )
    if statement.verb in ("update", "delete") and not statement.has_where:
        raise SqlRefused(f"refused: {statement.verb.upper()} needs a WHERE clause naming the rows")
    return _write(path, statement.text, analysis)


def _write(path: Path, sql: str, analysis: Analysis) -> str:
    authorizer = Authorizer("write")
    db = _connect(path, read_only=False)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.set_authorizer(authorizer)
            cursor = db.execute(sql)
            returned = cursor.fetchmany(ROW_LIMIT + 1)
            columns = [column[0] for column in cursor.description or ()]
            changed = db.total_changes
            db.set_authorizer(None)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.set_authorizer(None)
            if db.in_transaction:
                db.execute("ROLLBACK")
            _raise_refused(authorizer, exc)
    finally:
        db.close()
    tables = ", ".join(sorted({table for _, table in analysis.writes}))
    said = f"{changed} row{'s' if changed != 1 else ''} changed in {tables}"
    if columns:
        return said + "\n" + format_table(columns, returned[:ROW_LIMIT], len(returned) > ROW_LIMIT)
    return said


def build_sql_tools(context: ToolContext) -> list[Tool]:
    path = context.store.path
    allow_writes = context.settings.sql.allow_writes

    def classify(tool_input: ToolInput) -> RiskClass:
        # With writes off a writing statement is refused before it runs: nothing to approve.
        if not allow_writes:
            return "read"
        try:
            return (
                "destructive" if analyse(path, str(tool_input.get("query", ""))).writes else "read"
            )
        except (BadToolArguments, sqlite3.Error):
            return "read"  # refused at run time, before anything is written

    async def execute_sql(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
        try:
            return await asyncio.to_thread(
                run_statement, path, str(tool_input["query"]), allow_writes=allow_writes
            )
        except sqlite3.OperationalError as exc:
            raise ToolFailed(f"the database is busy or unreadable ({exc}); try again") from exc

    return [
        Tool(
            "execute_sql",
            "Run one SQLite statement on deskloop's database (tables: see system prompt).",
            {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
                "additionalProperties": False,
            },
            "read",
            TimeoutTier.INTERNAL,
            execute_sql,
            untrusted=True,
            classify=classify,
        )
    ]


SQL_FAMILY = ToolFamily("sql", ROUTING, build_sql_tools)
