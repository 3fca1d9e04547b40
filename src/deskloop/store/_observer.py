"""Observer cards: what the background observer noticed, waiting for the user to see or act on."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Literal

from deskloop.store._connection import Connected

CardKind = Literal["insight", "pattern", "skill_created", "kg_update"]
CardStatus = Literal["pending", "shown", "acted", "dismissed"]
CARD_KINDS: tuple[CardKind, ...] = ("insight", "pattern", "skill_created", "kg_update")
CARD_STATUSES: tuple[CardStatus, ...] = ("pending", "shown", "acted", "dismissed")


@dataclass(frozen=True)
class ObserverCard:
    id: int
    kind: CardKind
    title: str
    body: str
    status: CardStatus
    session_id: int | None
    created_at: float
    updated_at: float


_COLUMNS = "id, kind, title, body, status, session_id, created_at, updated_at"


def _add_card(
    db: sqlite3.Connection, kind: CardKind, title: str, body: str, session_id: int | None
) -> ObserverCard:
    now = time.time()
    cursor = db.execute(
        "INSERT INTO observer_cards (kind, title, body, session_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (kind, title, body, session_id, now, now),
    )
    card = _card_by_id(db, int(cursor.lastrowid or 0))
    assert card is not None
    return card


def _set_card_status(
    db: sqlite3.Connection, card_id: int, status: CardStatus
) -> ObserverCard | None:
    """The card after the change, or None when there is no card `card_id`."""
    db.execute(
        "UPDATE observer_cards SET status = ?, updated_at = ? WHERE id = ?",
        (status, time.time(), card_id),
    )
    return _card_by_id(db, card_id)


def _card_by_id(db: sqlite3.Connection, card_id: int) -> ObserverCard | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM observer_cards WHERE id = ?", (card_id,)).fetchone()
    return None if row is None else ObserverCard(*row)


def _cards(
    db: sqlite3.Connection, status: CardStatus | None = None, limit: int = 50
) -> list[ObserverCard]:
    """Newest first, optionally only those with `status`."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM observer_cards WHERE (? IS NULL OR status = ?)"
        " ORDER BY id DESC LIMIT ?",
        (status, status, limit),
    ).fetchall()
    return [ObserverCard(*row) for row in rows]


class ObserverAccess(Connected):
    def add_observer_card(
        self, kind: CardKind, title: str, body: str, session_id: int | None
    ) -> ObserverCard:
        """A new card, pending until the user's side shows it."""
        with self.transaction() as db:
            return _add_card(db, kind, title, body, session_id)

    def set_card_status(self, card_id: int, status: CardStatus) -> ObserverCard | None:
        """The card after the change, or None when there is no card `card_id`."""
        with self.transaction() as db:
            return _set_card_status(db, card_id, status)

    def observer_cards(
        self, status: CardStatus | None = None, limit: int = 50
    ) -> list[ObserverCard]:
        """Newest first, optionally only those with `status`."""
        return _cards(self._db, status, limit)
