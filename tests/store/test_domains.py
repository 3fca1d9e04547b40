"""The store's accessors are split by domain: each module reads and writes its own tables."""

import re
import sqlite3
from pathlib import Path

import deskloop.store
from deskloop.store import MIGRATIONS, Store

STORE_DIR = Path(deskloop.store.__file__).parent
OWNED = {
    "_sessions.py": {"sessions"},
    "_messages.py": {"messages", "messages_fts"},
    "_tool_calls.py": {"tool_calls"},
    "_usage.py": {"turn_usage"},
}


def tables_named_in(source: str, tables: set[str]) -> set[str]:
    """Tables after an upper-case SQL keyword: the statements' own spelling."""
    return {t for t in tables if re.search(rf"\b(FROM|INTO|UPDATE|JOIN)\s+{t}\b", source)}


def test_each_domain_module_touches_only_its_own_tables() -> None:
    db = sqlite3.connect(":memory:")
    for _, migrate in MIGRATIONS:
        migrate(db)
    every_table = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert set().union(*OWNED.values()) <= every_table
    for module, owned in OWNED.items():
        touched = tables_named_in((STORE_DIR / module).read_text(), every_table)
        assert touched == owned, f"{module} touches {touched - owned or owned - touched}"


def test_the_facade_offers_every_domains_accessors(tmp_path: Path) -> None:
    with Store.open(tmp_path / "d.db") as store:
        session = store.create_session(title="split")
        store.add_message(session.id, "user", "find the invoice")
        store.start_tool_call(session.id, "tu_1", "observe", {})
        assert [hit.session_id for hit in store.search("invoice")] == [session.id]
        assert store.tool_calls(session.id)[0].status == "running"
        assert store.resume(session.id).session.id == session.id
        assert store.tool_calls(session.id)[0].status == "interrupted"
