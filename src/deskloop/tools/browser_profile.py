"""`extract_browser_profile`, `query_browser_profile`, `edit_browser_profile`.

What the user's local Chrome, Chromium, Brave and Firefox profiles know (bookmarks, most
visited sites, autofill addresses, form entries) copied into deskloop's database. Passwords,
cookies and payment cards are never opened. A browser holds its files locked while it
runs, so each database is copied (with its journal or WAL) and the copy is read; a profile
that cannot be read is reported and the others go on.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskloop.store import BROWSER_ITEM_KINDS, ExtractedItem, Store
from deskloop.tools.contract import (
    BadToolArguments,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROUTING = (
    "The user's bookmarks, frequent sites, addresses: query_browser_profile "
    "(extract_browser_profile first if empty)."
)
TOP_SITES = 100
QUERY_LIMIT = 30
PLURALS = {
    "bookmark": "bookmarks",
    "top_site": "top sites",
    "address": "addresses",
    "form_entry": "form entries",
}
FORM_ENTRIES = 200

# Where each browser keeps its profiles, under the home folder.
CHROMIUM_FAMILY = {
    "linux": {
        "chrome": ".config/google-chrome",
        "chromium": ".config/chromium",
        "brave": ".config/BraveSoftware/Brave-Browser",
    },
    "darwin": {
        "chrome": "Library/Application Support/Google/Chrome",
        "chromium": "Library/Application Support/Chromium",
        "brave": "Library/Application Support/BraveSoftware/Brave-Browser",
    },
}
FIREFOX_DIRS = {
    "linux": (".mozilla/firefox", "snap/firefox/common/.mozilla/firefox"),
    "darwin": ("Library/Application Support/Firefox/Profiles",),
}
BROWSERS = ("chrome", "chromium", "brave", "firefox")

# Chromium's autofill FieldType numbers (components/autofill/core/browser/field_types.h).
ADDRESS_FIELDS = {
    7: "name",
    60: "company",
    77: "street",
    33: "city",
    34: "state",
    35: "zip",
    36: "country",
    9: "email",
    14: "phone",
}
# Firefox's autofill-profiles.json address fields, in the same order.
FIREFOX_ADDRESS_FIELDS = {
    "name": "name",
    "organization": "company",
    "street-address": "street",
    "address-level2": "city",
    "address-level1": "state",
    "postal-code": "zip",
    "country": "country",
    "email": "email",
    "tel": "phone",
}
# Form fields that may hold secrets: never copied, whatever the browser stored.
SECRET_FIELD = re.compile(
    r"pass|pwd|card|cc-?(num|csc)|cvc|cvv|iban|ssn|secret|token|otp|pin\b", re.I
)
DIGITS = re.compile(r"[\d -]{13,23}")


def _looks_like_card_number(value: str) -> bool:
    """13-19 digits passing the Luhn check (ISO/IEC 7812), as card numbers do."""
    if not DIGITS.fullmatch(value.strip()):
        return False
    digits = [int(d) for d in value if d.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _form_entry_allowed(field_name: str, value: str) -> bool:
    return (
        bool(value.strip())
        and not SECRET_FIELD.search(field_name)
        and not _looks_like_card_number(value)
    )


@dataclass(frozen=True)
class BrowserProfile:
    browser: str
    name: str
    path: Path


def find_profiles(home: Path, platform: str = sys.platform) -> list[BrowserProfile]:
    """Every profile folder of the known browsers under `home`."""
    key = "darwin" if platform == "darwin" else "linux"
    found: list[BrowserProfile] = []
    for browser, relative in CHROMIUM_FAMILY[key].items():
        base = home / relative
        if base.is_dir():
            for folder in sorted(base.iterdir()):
                if folder.name == "Default" or folder.name.startswith("Profile "):
                    found.append(BrowserProfile(browser, folder.name, folder))
    for relative in FIREFOX_DIRS[key]:
        base = home / relative
        if base.is_dir():
            found.extend(
                BrowserProfile("firefox", folder.name, folder)
                for folder in sorted(base.iterdir())
                if (folder / "places.sqlite").is_file() or (folder / "formhistory.sqlite").is_file()
            )
    return found


@contextmanager
def copied_database(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a private copy of `path` and its journal or WAL (the browser may hold
    the original locked); the copy is deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="deskloop-browser-") as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        for suffix in ("-wal", "-journal"):
            companion = path.with_name(path.name + suffix)
            if companion.is_file():
                shutil.copyfile(companion, copy.with_name(copy.name + suffix))
        db = sqlite3.connect(copy)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            yield db
        finally:
            db.close()


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def chromium_bookmarks(profile: Path) -> list[ExtractedItem]:
    data = json.loads((profile / "Bookmarks").read_text(encoding="utf-8"))
    items: list[ExtractedItem] = []

    def walk(node: dict[str, Any], folder: str) -> None:
        if node.get("type") == "url" and node.get("url"):
            items.append(
                ExtractedItem(
                    "bookmark",
                    str(node.get("name", "")),
                    str(node["url"]),
                    folder,
                    folder.rsplit("/", 1)[-1],
                )
            )
        for child in node.get("children", []):
            walk(
                child,
                f"{folder}/{node.get('name', '')}".strip("/")
                if node.get("type") == "folder"
                else folder,
            )

    for root in data.get("roots", {}).values():
        if isinstance(root, dict):
            walk(root, "")
    return items


def chromium_top_sites(profile: Path) -> list[ExtractedItem]:
    with copied_database(profile / "History") as db:
        rows = db.execute(
            "SELECT url, title, visit_count FROM urls WHERE hidden = 0 AND visit_count > 0"
            " AND (url LIKE 'http%' OR url LIKE 'file:%') ORDER BY visit_count DESC,"
            " last_visit_time DESC LIMIT ?",
            (TOP_SITES,),
        ).fetchall()
    return [
        ExtractedItem("top_site", title or "", url, f"{count} visits") for url, title, count in rows
    ]


def chromium_web_data(profile: Path) -> list[ExtractedItem]:
    """Addresses and form entries from Web Data; its card and IBAN tables are never read."""
    items: list[ExtractedItem] = []
    with copied_database(profile / "Web Data") as db:
        tables = _tables(db)
        if {"addresses", "address_type_tokens"} <= tables:
            fields: dict[str, dict[str, str]] = {}
            placeholders = ",".join("?" * len(ADDRESS_FIELDS))
            for guid, kind, value in db.execute(
                f"SELECT guid, type, value FROM address_type_tokens WHERE type IN ({placeholders})",
                tuple(ADDRESS_FIELDS),
            ):
                if value:
                    fields.setdefault(guid, {})[ADDRESS_FIELDS[kind]] = str(value)
            items.extend(_address(parts) for parts in fields.values())
        if "autofill" in tables:
            for name, value in db.execute(
                "SELECT name, value FROM autofill ORDER BY count DESC, date_last_used DESC LIMIT ?",
                (FORM_ENTRIES,),
            ):
                if _form_entry_allowed(str(name), str(value)):
                    items.append(ExtractedItem("form_entry", str(name), str(value)))
    return items


def _address(parts: dict[str, str]) -> ExtractedItem:
    order = ("name", "company", "street", "zip", "city", "state", "country")
    value = ", ".join(parts[key].replace("\n", ", ") for key in order if parts.get(key))
    contact = " ".join(parts[key] for key in ("email", "phone") if parts.get(key))
    return ExtractedItem("address", parts.get("name", ""), value, contact)


def firefox_places(profile: Path) -> list[ExtractedItem]:
    with copied_database(profile / "places.sqlite") as db:
        bookmarks = db.execute(
            "SELECT b.title, p.url, coalesce(f.title, '') FROM moz_bookmarks b"
            " JOIN moz_places p ON p.id = b.fk LEFT JOIN moz_bookmarks f ON f.id = b.parent"
            " WHERE b.type = 1 AND p.url NOT LIKE 'place:%' ORDER BY b.id"
        ).fetchall()
        top = db.execute(
            "SELECT url, title, visit_count FROM moz_places WHERE hidden = 0 AND visit_count > 0"
            " AND (url LIKE 'http%' OR url LIKE 'file:%') ORDER BY frecency DESC, visit_count DESC"
            " LIMIT ?",
            (TOP_SITES,),
        ).fetchall()
    items = [
        ExtractedItem("bookmark", title or "", url, folder, folder)
        for title, url, folder in bookmarks
    ]
    items.extend(
        ExtractedItem("top_site", title or "", url, f"{count} visits") for url, title, count in top
    )
    return items


def firefox_form_history(profile: Path) -> list[ExtractedItem]:
    with copied_database(profile / "formhistory.sqlite") as db:
        rows = db.execute(
            "SELECT fieldname, value FROM moz_formhistory ORDER BY timesUsed DESC, lastUsed DESC"
            " LIMIT ?",
            (FORM_ENTRIES,),
        ).fetchall()
    return [
        ExtractedItem("form_entry", name, value)
        for name, value in rows
        if _form_entry_allowed(name, value)
    ]


def firefox_addresses(profile: Path) -> list[ExtractedItem]:
    """autofill-profiles.json: its `addresses` list only (`creditCards` is never read)."""
    data = json.loads((profile / "autofill-profiles.json").read_text(encoding="utf-8"))
    items = []
    for entry in data.get("addresses", []):
        if not isinstance(entry, dict):
            continue
        parts = {
            ours: str(entry[theirs])
            for theirs, ours in FIREFOX_ADDRESS_FIELDS.items()
            if entry.get(theirs)
        }
        if "name" not in parts:
            given = " ".join(str(entry.get(k, "")) for k in ("given-name", "family-name")).strip()
            if given:
                parts["name"] = given
        if parts:
            items.append(_address(parts))
    return items


Reader = Callable[[Path], list[ExtractedItem]]
CHROMIUM_READERS: tuple[tuple[str, Reader], ...] = (
    ("Bookmarks", chromium_bookmarks),
    ("History", chromium_top_sites),
    ("Web Data", chromium_web_data),
)
FIREFOX_READERS: tuple[tuple[str, Reader], ...] = (
    ("places.sqlite", firefox_places),
    ("formhistory.sqlite", firefox_form_history),
    ("autofill-profiles.json", firefox_addresses),
)


@dataclass
class ExtractReport:
    profiles: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def render(self) -> str:
        if not self.profiles and not self.problems:
            return "no Chrome, Chromium, Brave or Firefox profile found in this user's home"
        lines = [*self.profiles]
        if self.problems:
            lines.append("could not read: " + "; ".join(self.problems))
        return "\n".join(lines)


def extract(store: Store, home: Path, browsers: tuple[str, ...] = BROWSERS) -> ExtractReport:
    report = ExtractReport()
    for profile in find_profiles(home):
        if profile.browser not in browsers:
            continue
        readers = FIREFOX_READERS if profile.browser == "firefox" else CHROMIUM_READERS
        items: list[ExtractedItem] = []
        for file_name, read in readers:
            if not (profile.path / file_name).is_file():
                continue
            try:
                items.extend(read(profile.path))
            except (OSError, sqlite3.Error, ValueError, KeyError, TypeError) as exc:
                report.problems.append(f"{profile.browser} {profile.name} {file_name} ({exc})")
        store.save_browser_items(profile.browser, profile.name, items)
        counts = {
            kind: sum(1 for item in items if item.kind == kind) for kind in BROWSER_ITEM_KINDS
        }
        said = ", ".join(f"{count} {PLURALS[kind]}" for kind, count in counts.items() if count)
        said = said or "nothing"
        report.profiles.append(f"{profile.browser} {profile.name}: {said}")
    return report


EXTRACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"browser": {"enum": list(BROWSERS)}},
    "additionalProperties": False,
}
QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "kind": {"enum": list(BROWSER_ITEM_KINDS)},
        "tag": {"type": "string"},
    },
    "additionalProperties": False,
}
EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "tags": {"type": "string", "description": "comma-separated"},
        "remove": {"type": "boolean"},
    },
    "required": ["id"],
    "additionalProperties": False,
}


async def extract_browser_profile(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    browsers = (tool_input["browser"],) if "browser" in tool_input else BROWSERS
    report = await asyncio.to_thread(extract, context.store, Path.home(), browsers)
    return report.render()


async def query_browser_profile(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    items = context.store.query_browser_items(
        str(tool_input.get("text", "")),
        str(tool_input.get("kind", "")),
        str(tool_input.get("tag", "")),
        QUERY_LIMIT,
    )
    if not items and context.store.browser_item_count() == 0:
        return "deskloop has no copy of the browser profiles yet; run extract_browser_profile"
    if not items:
        return "nothing matches"
    return "\n".join(
        f"{item.id} | {item.kind} | {item.title} | {item.value}"
        + (f" | {item.detail}" if item.detail else "")
        + (f" | tags: {item.tags}" if item.tags else "")
        for item in items
    )


async def edit_browser_profile(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    if not {"title", "tags", "remove"} & set(tool_input):
        raise BadToolArguments("give title, tags or remove: true")
    item = context.store.edit_browser_item(
        int(tool_input["id"]),
        title=tool_input.get("title"),
        tags=tool_input.get("tags"),
        remove=bool(tool_input.get("remove", False)),
    )
    if item is None:
        raise BadToolArguments(f"no item {tool_input['id']}; query_browser_profile shows the ids")
    if tool_input.get("remove"):
        return f"removed item {item.id} from deskloop's copy (the browser keeps its own)"
    return f"item {item.id} now: {item.title} | tags: {item.tags or '(none)'}"


def build_browser_profile_tools(context: ToolContext) -> list[Tool]:
    return [
        Tool(
            "extract_browser_profile",
            "Copy bookmarks, top sites, addresses, form entries from local browsers.",
            EXTRACT_SCHEMA,
            "read",
            TimeoutTier.OTHER,
            extract_browser_profile,
        ),
        Tool(
            "query_browser_profile",
            "Search the copied browser profile.",
            QUERY_SCHEMA,
            "read",
            TimeoutTier.INTERNAL,
            query_browser_profile,
            untrusted=True,
        ),
        Tool(
            "edit_browser_profile",
            "Retitle, retag or remove an item of the copy.",
            EDIT_SCHEMA,
            "act",
            TimeoutTier.INTERNAL,
            edit_browser_profile,
        ),
    ]


BROWSER_PROFILE_FAMILY = ToolFamily("browser_profile", ROUTING, build_browser_profile_tools)
