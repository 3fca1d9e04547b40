"""`scan_files` and `search_files`: an index of the user's own folders (setting `files.roots`).

A scan never leaves its roots: symbolic links are not followed, a path outside every root
is refused, and a folder that cannot be read is reported while the rest goes on. Scans are
incremental: a file whose modification time and size are unchanged is not rewritten.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from deskloop.settings import FilesSettings
from deskloop.store import FileSearch, IndexedFile, Store
from deskloop.tools.contract import (
    BadToolArguments,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROUTING = "Finding the user's files: search_files (scan_files first if the index is old)."

# Used when `files.roots` is empty: the usual places, and project folders that exist.
DEFAULT_ROOTS = ("Downloads", "Documents", "Desktop", "Projects", "projects", "src", "code")
# Folders of tools and caches, not of the user's work.
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "venv", "site-packages", "target"})
MAX_FILES_PER_SCAN = 200_000
SEARCH_LIMIT = 50
BATCH = 2000

KINDS: dict[str, tuple[str, ...]] = {
    "document": ("doc", "docx", "odt", "rtf", "pages", "tex", "epub"),
    "pdf": ("pdf",),
    "spreadsheet": ("xls", "xlsx", "ods", "csv", "tsv", "numbers"),
    "presentation": ("ppt", "pptx", "odp", "key"),
    "text": ("txt", "md", "rst", "org", "log"),
    "image": ("png", "jpg", "jpeg", "gif", "webp", "svg", "heic", "bmp", "tiff", "raw"),
    "audio": ("mp3", "wav", "flac", "ogg", "m4a", "aac", "opus"),
    "video": ("mp4", "mkv", "mov", "avi", "webm", "m4v"),
    "archive": ("zip", "tar", "gz", "tgz", "bz2", "xz", "7z", "rar", "dmg", "iso", "deb"),
    "code": (
        "py",
        "js",
        "ts",
        "tsx",
        "jsx",
        "c",
        "h",
        "cpp",
        "rs",
        "go",
        "java",
        "kt",
        "swift",
        "rb",
        "php",
        "sh",
        "html",
        "css",
        "json",
        "toml",
        "yaml",
        "yml",
        "sql",
        "ipynb",
    ),
}
_KIND_BY_SUFFIX = {suffix: kind for kind, suffixes in KINDS.items() for suffix in suffixes}


def file_kind(name: str) -> str:
    _, dot, suffix = name.rpartition(".")
    return _KIND_BY_SUFFIX.get(suffix.lower(), "other") if dot else "other"


def index_roots(settings: FilesSettings, home: Path | None = None) -> list[Path]:
    """The folders to index: the setting's (`~` expanded), or the default ones that exist."""
    base = home if home is not None else Path.home()
    if settings.roots:
        return [Path(root).expanduser().resolve() for root in settings.roots]
    return [(base / name).resolve() for name in DEFAULT_ROOTS if (base / name).is_dir()]


def root_of(path: Path, roots: list[Path]) -> Path | None:
    """The root holding `path` once every link in it is resolved, or None."""
    resolved = path.expanduser().resolve()
    return next((root for root in roots if resolved.is_relative_to(root)), None)


@dataclass
class ScanReport:
    folders: list[str] = field(default_factory=list)
    seen: int = 0
    written: int = 0
    removed: int = 0
    links_skipped: int = 0
    unreadable: list[str] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    def render(self) -> str:
        lines = [
            f"scanned {', '.join(self.folders)}: {self.seen} files ({self.written} new or "
            f"changed, {self.removed} gone, {self.seen - self.written} unchanged) "
            f"in {self.seconds:.1f} s"
        ]
        if self.stopped_early:
            lines.append(f"stopped at {MAX_FILES_PER_SCAN} files; scan a smaller folder")
        if self.links_skipped:
            lines.append(f"{self.links_skipped} symbolic links not followed")
        if self.unreadable:
            shown = self.unreadable[:20]
            more = f" and {len(self.unreadable) - 20} more" if len(self.unreadable) > 20 else ""
            lines.append("could not read: " + "; ".join(shown) + more)
        return "\n".join(lines)


def scan_folder(store: Store, root: Path, folder: Path, report: ScanReport) -> None:
    """Index `folder` (inside `root`) into the store, writing only what changed."""
    known = store.indexed_mtimes(str(folder))
    seen: set[str] = set()
    unreadable: list[str] = []
    changed: list[IndexedFile] = []
    pending = [folder]
    while pending and not report.stopped_early:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                listed = list(entries)
        except OSError as exc:
            unreadable.append(str(current))
            report.unreadable.append(f"{current} ({exc.strerror or exc})")
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                report.links_skipped += 1
            elif stat.S_ISDIR(info.st_mode):
                if entry.name not in SKIPPED_FOLDERS:
                    pending.append(Path(entry.path))
            elif stat.S_ISREG(info.st_mode):
                seen.add(entry.path)
                report.seen += 1
                if known.get(entry.path) != (info.st_mtime, info.st_size):
                    changed.append(
                        IndexedFile(
                            entry.path,
                            str(root),
                            entry.name,
                            file_kind(entry.name),
                            info.st_size,
                            info.st_mtime,
                        )
                    )
                if len(changed) >= BATCH:
                    _write(store, changed, report)
                if report.seen >= MAX_FILES_PER_SCAN:
                    report.stopped_early = True
                    break
    _write(store, changed, report)
    if report.stopped_early:
        return  # what was not reached is not gone
    # Files under a folder that could not be read this time are kept, not forgotten.
    gone = [
        path
        for path in known
        if path not in seen and not any(path.startswith(f + os.sep) for f in unreadable)
    ]
    store.index_files((), gone)
    report.removed += len(gone)


def _write(store: Store, changed: list[IndexedFile], report: ScanReport) -> None:
    if changed:
        store.index_files(changed)
        report.written += len(changed)
        changed.clear()


def scan(store: Store, roots: list[Path], path: str | None) -> ScanReport:
    report = ScanReport()
    started = time.perf_counter()
    if path:
        target = Path(path).expanduser()
        root = root_of(target, roots)
        if root is None:
            raise BadToolArguments(
                f"{path} is outside the indexed folders ({', '.join(map(str, roots)) or 'none'}); "
                "scan one of those, or ask the user to add the folder to files.roots"
            )
        resolved = target.resolve()
        if not resolved.is_dir():
            raise BadToolArguments(f"{path} is not a folder; give a folder inside the roots")
        jobs = [(root, resolved)]
    else:
        jobs = [(root, root) for root in roots if root.is_dir()]
        report.unreadable.extend(f"{root} (missing)" for root in roots if not root.is_dir())
    for root, folder in jobs:
        report.folders.append(str(folder))
        scan_folder(store, root, folder, report)
    report.seconds = time.perf_counter() - started
    return report


def _date(value: Any, key: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError as exc:
        raise BadToolArguments(f"{key} must be a date like 2026-11-30, got {value!r}") from exc


def _render(files: list[IndexedFile], limit: int) -> str:
    if not files:
        return "no matching files"
    lines = [
        f"{f.path} | {f.kind} | {f.size} B | {time.strftime('%Y-%m-%d %H:%M', time.localtime(f.modified_at))}"
        for f in files
    ]
    if len(files) == limit:
        lines.append(f"(first {limit}; narrow the search for more)")
    return "\n".join(lines)


SCAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"type": "string"}},
    "additionalProperties": False,
}
SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "path": {"type": "string"},
        "kind": {"enum": [*KINDS, "other"]},
        "modified_after": {"type": "string", "description": "YYYY-MM-DD"},
        "modified_before": {"type": "string"},
    },
    "additionalProperties": False,
}


def build_file_tools(context: ToolContext) -> list[Tool]:
    roots = index_roots(context.settings.files)

    async def scan_files(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
        if not roots:
            raise BadToolArguments(
                "no folders to index: set files.roots (`deskloop config set files.roots ~/Documents`)"
            )
        report = await asyncio.to_thread(scan, context.store, roots, tool_input.get("path"))
        return report.render()

    async def search_files_tool(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
        search = FileSearch(
            name=str(tool_input.get("name", "")),
            path=str(tool_input.get("path", "")),
            kind=str(tool_input.get("kind", "")),
            modified_after=_date(tool_input.get("modified_after"), "modified_after"),
            modified_before=_date(tool_input.get("modified_before"), "modified_before"),
            limit=SEARCH_LIMIT,
        )
        found = context.store.search_files(search)
        if not found and context.store.indexed_file_count() == 0:
            return "the file index is empty; run scan_files first"
        return _render(found, search.limit)

    return [
        Tool(
            "scan_files",
            "Index the user's folders, or one folder inside them.",
            SCAN_SCHEMA,
            "read",
            TimeoutTier.OTHER,
            scan_files,
            untrusted=True,
        ),
        Tool(
            "search_files",
            "Find indexed files by name, path, kind or date.",
            SEARCH_SCHEMA,
            "read",
            TimeoutTier.INTERNAL,
            search_files_tool,
            untrusted=True,
        ),
    ]


FILES_FAMILY = ToolFamily("files", ROUTING, build_file_tools)
