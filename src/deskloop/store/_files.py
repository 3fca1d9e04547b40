"""The file index: what `scan_files` found under the user's roots, searchable by name, kind, time."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from deskloop.store._connection import Connected


@dataclass(frozen=True)
class IndexedFile:
    path: str
    root: str
    name: str
    kind: str
    size: int
    modified_at: float


@dataclass(frozen=True)
class FileSearch:
    """Every given field must match; `name` and `path` are case-insensitive substrings."""

    name: str = ""
    path: str = ""
    kind: str = ""
    modified_after: float | None = None
    modified_before: float | None = None
    limit: int = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _indexed_mtimes(db: sqlite3.Connection, under: str) -> dict[str, tuple[float, int]]:
    """Path -> (modified_at, size) of the files indexed under the folder `under`."""
    prefix = under.rstrip("/") + "/"
    rows = db.execute(
        "SELECT path, modified_at, size FROM indexed_files WHERE substr(path, 1, ?) = ?",
        (len(prefix), prefix),
    )
    return {path: (modified, size) for path, modified, size in rows}


def _upsert_files(db: sqlite3.Connection, files: Iterable[IndexedFile]) -> None:
    now = time.time()
    db.executemany(
        "INSERT INTO indexed_files (path, root, name, kind, size, modified_at, indexed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET root = excluded.root,"
        " kind = excluded.kind, size = excluded.size, modified_at = excluded.modified_at,"
        " indexed_at = excluded.indexed_at",
        [(f.path, f.root, f.name, f.kind, f.size, f.modified_at, now) for f in files],
    )


def _forget_files(db: sqlite3.Connection, paths: Iterable[str]) -> None:
    db.executemany("DELETE FROM indexed_files WHERE path = ?", [(path,) for path in paths])


def _search_files(db: sqlite3.Connection, search: FileSearch) -> list[IndexedFile]:
    """Matching files, most recently modified first."""
    rows = db.execute(
        "SELECT path, root, name, kind, size, modified_at FROM indexed_files"
        " WHERE name LIKE ? ESCAPE '\\' AND path LIKE ? ESCAPE '\\'"
        " AND (? = '' OR kind = ?) AND (? IS NULL OR modified_at >= ?)"
        " AND (? IS NULL OR modified_at < ?) ORDER BY modified_at DESC LIMIT ?",
        (
            _like(search.name),
            _like(search.path),
            search.kind,
            search.kind,
            search.modified_after,
            search.modified_after,
            search.modified_before,
            search.modified_before,
            search.limit,
        ),
    ).fetchall()
    return [IndexedFile(*row) for row in rows]


class FileIndexAccess(Connected):
    def indexed_mtimes(self, under: str) -> dict[str, tuple[float, int]]:
        """Path -> (modified_at, size) of the files indexed under the folder `under`."""
        return _indexed_mtimes(self._db, under)

    def index_files(self, changed: Iterable[IndexedFile], gone: Iterable[str] = ()) -> None:
        """Write new or changed files and forget those gone, in one transaction."""
        with self.transaction() as db:
            _upsert_files(db, changed)
            _forget_files(db, gone)

    def search_files(self, search: FileSearch) -> list[IndexedFile]:
        """Matching files, most recently modified first."""
        return _search_files(self._db, search)

    def indexed_file_count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM indexed_files").fetchone()
        return int(count)
