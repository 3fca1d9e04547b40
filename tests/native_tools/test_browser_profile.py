"""Browser profiles: a real Chromium profile and Firefox-schema databases, read into deskloop's
copy without passwords, cookies or cards; locked and corrupt files are reported, not fatal."""

from __future__ import annotations

import http.server
import json
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deskloop.store import Store
from deskloop.tools import BadToolArguments, Tool, ToolContext
from deskloop.tools.browser_profile import build_browser_profile_tools

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CARD_NUMBER = "4111111111111111"
PASSWORD = "hunter2-very-secret"
PAGE = b"<html><head><title>Lyon Train Times</title></head><body>trains</body></html>"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def chromium_profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A user-data-dir written by a real headless Chromium that visited a local page."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is installed by scripts/debian-packages.txt")
    data_dir = tmp_path_factory.mktemp("chromium") / "user-data"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/trains"
        for _ in range(2):  # two visits, so the page is a top site
            subprocess.run(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    f"--user-data-dir={data_dir}",
                    "--dump-dom",
                    url,
                ],
                capture_output=True,
                timeout=90,
                check=True,
            )
    finally:
        server.shutdown()
        server.server_close()
    profile = data_dir / "Default"
    assert (profile / "History").is_file() and (profile / "Web Data").is_file()
    yield data_dir


def _fill_chromium_profile(profile: Path) -> None:
    """Rows in the tables Chromium created, as its autofill would write them."""
    db = sqlite3.connect(profile / "Web Data")
    db.execute(
        "INSERT INTO addresses (guid, use_count, use_date, date_modified) VALUES ('a1', 3, 0, 0)"
    )
    db.executemany(
        "INSERT INTO address_type_tokens (guid, type, value) VALUES ('a1', ?, ?)",
        [
            (7, "Ada Lovelace"),
            (77, "12 Rue de la Paix"),
            (33, "Lyon"),
            (35, "69001"),
            (36, "FR"),
            (9, "ada@example.org"),
        ],
    )
    db.executemany(
        "INSERT INTO autofill (name, value, value_lower, count) VALUES (?, ?, ?, ?)",
        [
            ("city", "Lyon", "lyon", 4),
            ("cardnumber", CARD_NUMBER, CARD_NUMBER, 9),
            ("note", "4111 1111 1111 1111", "x", 2),
            ("q", "train times", "train times", 1),
        ],
    )
    db.execute(
        "INSERT INTO credit_cards (guid, name_on_card, expiration_month, expiration_year,"
        " card_number_encrypted) VALUES ('c1', 'Ada', 1, 2030, ?)",
        (CARD_NUMBER.encode(),),
    )
    db.commit()
    db.close()
    logins = sqlite3.connect(profile / "Login Data")
    columns = [row[1] for row in logins.execute("PRAGMA table_info(logins)")]
    assert "password_value" in columns
    logins.execute(
        "INSERT INTO logins (origin_url, username_value, password_value, signon_realm, date_created,"
        " blacklisted_by_user, scheme) VALUES ('https://bank.example', 'ada', ?, 'https://bank.example', 0, 0, 0)",
        (PASSWORD.encode(),),
    )
    logins.commit()
    logins.close()
    bookmarks = {
        "roots": {
            "bookmark_bar": {
                "type": "folder",
                "name": "Bookmarks bar",
                "children": [
                    {
                        "type": "folder",
                        "name": "Travel",
                        "children": [
                            {
                                "type": "url",
                                "name": "SNCF Connect",
                                "url": "https://www.sncf-connect.com/",
                            },
                        ],
                    },
                    {"type": "url", "name": "Python docs", "url": "https://docs.python.org/3/"},
                ],
            },
            "other": {"type": "folder", "name": "Other bookmarks", "children": []},
        },
        "version": 1,
    }
    (profile / "Bookmarks").write_text(json.dumps(bookmarks))


FIREFOX_PLACES = """
CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url LONGVARCHAR, title LONGVARCHAR,
  rev_host LONGVARCHAR, visit_count INTEGER DEFAULT 0, hidden INTEGER DEFAULT 0 NOT NULL,
  typed INTEGER DEFAULT 0 NOT NULL, frecency INTEGER DEFAULT -1 NOT NULL, last_visit_date INTEGER,
  guid TEXT, foreign_count INTEGER DEFAULT 0 NOT NULL, url_hash INTEGER DEFAULT 0 NOT NULL,
  description TEXT, preview_image_url TEXT, site_name TEXT, origin_id INTEGER,
  recalc_frecency INTEGER NOT NULL DEFAULT 0, alt_frecency INTEGER,
  recalc_alt_frecency INTEGER NOT NULL DEFAULT 0);
CREATE TABLE moz_bookmarks (id INTEGER PRIMARY KEY, type INTEGER, fk INTEGER DEFAULT NULL,
  parent INTEGER, position INTEGER, title LONGVARCHAR, keyword_id INTEGER, folder_type TEXT,
  dateAdded INTEGER, lastModified INTEGER, guid TEXT, syncStatus INTEGER NOT NULL DEFAULT 0,
  syncChangeCounter INTEGER NOT NULL DEFAULT 1);
"""
FIREFOX_FORMS = """
CREATE TABLE moz_formhistory (id INTEGER PRIMARY KEY, fieldname TEXT NOT NULL, value TEXT NOT NULL,
  timesUsed INTEGER, firstUsed INTEGER, lastUsed INTEGER, guid TEXT);
"""


def _firefox_profile(home: Path) -> tuple[Path, sqlite3.Connection]:
    """A Firefox profile (its schema) whose places.sqlite stays open with an exclusive lock,
    as a running Firefox holds it; the last writes are still in the WAL."""
    profile = home / ".mozilla" / "firefox" / "abcd1234.default-release"
    profile.mkdir(parents=True)
    places = sqlite3.connect(profile / "places.sqlite", isolation_level=None)
    places.execute("PRAGMA journal_mode=WAL")
    places.execute("PRAGMA wal_autocheckpoint=0")
    places.execute("PRAGMA locking_mode=EXCLUSIVE")
    places.executescript(FIREFOX_PLACES)
    places.executescript(
        """
        INSERT INTO moz_places (id, url, title, visit_count, frecency) VALUES
          (1, 'https://news.example/', 'Morning News', 30, 900),
          (2, 'https://recipes.example/tarte', 'Tarte Tatin', 2, 50),
          (3, 'place:sort=8', NULL, 0, 0);
        INSERT INTO moz_bookmarks (id, type, fk, parent, title) VALUES
          (1, 2, NULL, 0, 'root'), (2, 2, NULL, 1, 'Cooking'), (3, 1, 2, 2, 'Tarte Tatin recipe'),
          (4, 1, 3, 1, 'Recent Tags');
        """
    )
    forms = sqlite3.connect(profile / "formhistory.sqlite")
    forms.executescript(FIREFOX_FORMS)
    forms.executemany(
        "INSERT INTO moz_formhistory (fieldname, value, timesUsed) VALUES (?, ?, ?)",
        [("searchbar-history", "tarte tatin", 5), ("password", PASSWORD, 3)],
    )
    forms.commit()
    forms.close()
    (profile / "autofill-profiles.json").write_text(
        json.dumps(
            {
                "version": 1,
                "addresses": [
                    {
                        "given-name": "Ada",
                        "family-name": "Lovelace",
                        "street-address": "1 Main St",
                        "address-level2": "London",
                        "postal-code": "N1",
                        "country": "GB",
                    }
                ],
                "creditCards": [{"cc-number-encrypted": "xyz", "cc-name": "Ada"}],
            }
        )
    )
    return profile, places


@pytest.fixture
def browser_home(
    chromium_profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path / "user"
    chromium = home / ".config" / "chromium"
    shutil.copytree(chromium_profile, chromium, ignore=shutil.ignore_patterns("Singleton*"))
    _fill_chromium_profile(chromium / "Default")
    # A second Chromium profile whose History is corrupt.
    broken = chromium / "Profile 1"
    broken.mkdir()
    (broken / "History").write_bytes(b"this is not an SQLite database" * 100)
    (broken / "Bookmarks").write_text(
        json.dumps(
            {
                "roots": {
                    "bookmark_bar": {
                        "type": "folder",
                        "name": "Bar",
                        "children": [
                            {"type": "url", "name": "Still here", "url": "https://still.example/"}
                        ],
                    }
                }
            }
        )
    )
    _, places = _firefox_profile(home)
    monkeypatch.setenv("HOME", str(home))
    yield home
    places.close()


def _tools(context: ToolContext) -> dict[str, Tool]:
    return {tool.name: tool for tool in build_browser_profile_tools(context)}


@pytest.mark.slow
async def test_extract_reads_every_profile_without_secrets_and_reports_the_broken_file(
    browser_home: Path, context: ToolContext, store: Store
) -> None:
    tools = _tools(context)
    said = str(await tools["extract_browser_profile"].run({}, context))
    lines = said.splitlines()
    assert "chromium Default: 2 bookmarks, 1 top sites, 1 addresses, 2 form entries" in lines
    assert "chromium Profile 1: 1 bookmarks" in lines
    assert (
        "firefox abcd1234.default-release: 1 bookmarks, 2 top sites, 1 addresses, 1 form entries"
        in lines
    )
    assert lines[-1].startswith(
        "could not read: chromium Profile 1 History (file is not a database)"
    )

    query = tools["query_browser_profile"]
    top = str(await query.run({"kind": "top_site", "text": "lyon"}, context))
    assert "| top_site | Lyon Train Times | http://127.0.0.1:" in top
    assert "2 visits" in top
    address = str(await query.run({"kind": "address", "text": "paix"}, context))
    assert (
        "Ada Lovelace | Ada Lovelace, 12 Rue de la Paix, 69001, Lyon, FR | ada@example.org"
        in address
    )
    travel = str(await query.run({"tag": "Travel"}, context))
    assert "SNCF Connect | https://www.sncf-connect.com/" in travel
    assert "Tarte Tatin recipe" in str(await query.run({"tag": "cooking"}, context))

    dump = "\n".join(sqlite3.connect(store.path).iterdump())
    for secret in (CARD_NUMBER, "4111 1111 1111 1111", PASSWORD, "cc-number"):
        assert secret not in dump


@pytest.mark.slow
async def test_edits_change_only_deskloops_copy_and_survive_a_new_extraction(
    browser_home: Path, context: ToolContext
) -> None:
    tools = _tools(context)
    await tools["extract_browser_profile"].run({"browser": "chromium"}, context)
    query, edit = tools["query_browser_profile"], tools["edit_browser_profile"]
    (line,) = str(await query.run({"text": "Python docs"}, context)).splitlines()
    item_id = int(line.split(" | ")[0])
    said = await edit.run(
        {"id": item_id, "title": "Python reference", "tags": "work, docs"}, context
    )
    assert said == f"item {item_id} now: Python reference | tags: work,docs"
    (sncf,) = str(await query.run({"text": "sncf"}, context)).splitlines()
    await edit.run({"id": int(sncf.split(" | ")[0]), "remove": True}, context)
    bookmarks_file = browser_home / ".config" / "chromium" / "Default" / "Bookmarks"
    before = bookmarks_file.read_text()
    await tools["extract_browser_profile"].run({"browser": "chromium"}, context)
    assert bookmarks_file.read_text() == before
    assert "Python reference" in str(await query.run({"tag": "docs"}, context))
    assert await query.run({"text": "sncf"}, context) == "nothing matches"
    with pytest.raises(BadToolArguments, match="no item 9999"):
        await edit.run({"id": 9999, "title": "x"}, context)


async def test_querying_before_any_extraction_says_what_to_do(context: ToolContext) -> None:
    said = await _tools(context)["query_browser_profile"].run({"text": "x"}, context)
    assert said == "deskloop has no copy of the browser profiles yet; run extract_browser_profile"
