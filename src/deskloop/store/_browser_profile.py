"""deskloop's own copy of what the user's browsers know: bookmarks, top sites, addresses, form
entries. Edits change only this copy; an edited or removed item survives re-extraction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from deskloop.store._connection import Connected

BrowserItemKind = Literal["bookmark", "top_site", "address", "form_entry"]
BROWSER_ITEM_KINDS: tuple[BrowserItemKind, ...] = ("bookmark", "top_site", "address", "form_entry")

# `edited`: 0 as extracted, 1 changed by the user or agent, 2 removed (kept so it stays gone).
AS_EXTRACTED, EDITED, REMOVED = 0, 1, 2


@dataclass(frozen=True)
class BrowserItem:
    id: int
    browser: str
    profile: str
    kind: BrowserItemKind
    title: str
    value: str
    detail: str
    tags: str


@dataclass(frozen=True)
class ExtractedItem:
    kind: BrowserItemKind
    title: str
    value: str
    detail: str = ""
    tags: str = ""


def _save_extracted(
    db: sqlite3.Connection, browser: str, profile: str, items: Iterable[ExtractedItem]
) -> int:
    """Insert or refresh `items`; rows edited or removed by the user are left as they are."""
    now = time.time()
    cursor = db.executemany(
        "INSERT INTO browser_items (browser, profile, kind, title, value, detail, tags, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(browser, profile, kind, value) DO UPDATE"
        " SET title = excluded.title, detail = excluded.detail, updated_at = excluded.updated_at"
        f" WHERE edited = {AS_EXTRACTED}",
        [
            (browser, profile, item.kind, item.title, item.value, item.detail, item.tags, now)
            for item in items
        ],
    )
    return cursor.rowcount


_COLUMNS = "id, browser, profile, kind, title, value, detail, tags"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _query_items(
    db: sqlite3.Connection, text: str = "", kind: str = "", tag: str = "", limit: int = 30
) -> list[BrowserItem]:
    """Items whose title, value or detail holds `text`, of `kind`, tagged with `tag`."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM browser_items WHERE edited != {REMOVED}"
        " AND (title LIKE ?1 ESCAPE '\\' OR value LIKE ?1 ESCAPE '\\' OR detail LIKE ?1 ESCAPE '\\')"
        " AND (?2 = '' OR kind = ?2) AND (?3 = '' OR (',' || tags || ',') LIKE ?4 ESCAPE '\\')"
        " ORDER BY kind, id LIMIT ?5",
        (_like(text), kind, tag, _like("," + tag.strip() + ","), limit),
    ).fetchall()
    return [BrowserItem(*row) for row in rows]


def _edit_item(
    db: sqlite3.Connection,
    item_id: int,
    *,
    title: str | None = None,
    tags: str | None = None,
    remove: bool = False,
) -> BrowserItem | None:
    """Change deskloop's copy of one item; None when there is no such item."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM browser_items WHERE id = ? AND edited != {REMOVED}", (item_id,)
    ).fetchone()
    if row is None:
        return None
    item = BrowserItem(*row)
    new_title = item.title if title is None else title
    new_tags = (
        item.tags if tags is None else ",".join(t.strip() for t in tags.split(",") if t.strip())
    )
    db.execute(
        "UPDATE browser_items SET title = ?, tags = ?, edited = ?, updated_at = ? WHERE id = ?",
        (new_title, new_tags, REMOVED if remove else EDITED, time.time(), item_id),
    )
    return BrowserItem(
        item.id, item.browser, item.profile, item.kind, new_title, item.value, item.detail, new_tags
    )


class BrowserProfileAccess(Connected):
    def save_browser_items(self, browser: str, profile: str, items: Iterable[ExtractedItem]) -> int:
        """Insert or refresh one profile's items; rows the user edited or removed stay."""
        with self.transaction() as db:
            return _save_extracted(db, browser, profile, items)

    def query_browser_items(
        self, text: str = "", kind: str = "", tag: str = "", limit: int = 30
    ) -> list[BrowserItem]:
        """Items whose title, value or detail holds `text`, of `kind`, tagged with `tag`."""
        return _query_items(self._db, text, kind, tag, limit)

    def edit_browser_item(
        self,
        item_id: int,
        *,
        title: str | None = None,
        tags: str | None = None,
        remove: bool = False,
    ) -> BrowserItem | None:
        """Change deskloop's copy of one item; None when there is no such item."""
        with self.transaction() as db:
            return _edit_item(db, item_id, title=title, tags=tags, remove=remove)

    def browser_item_count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM browser_items").fetchone()
        return int(count)
