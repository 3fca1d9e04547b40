"""Installed applications, from their desktop entries: what `open_app` can start by name.

Linux lists launchable apps as `.desktop` files (freedesktop Desktop Entry spec) under
`$XDG_DATA_HOME/applications` and each `$XDG_DATA_DIRS/applications`; a user's entry
hides a system one with the same file name.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

# Exec field codes (%f, %U, ...) stand for files or URLs passed at launch; none are passed.
_FIELD_CODE = re.compile(r"%[fFuUdDnNickvm]")


@dataclass(frozen=True)
class InstalledApp:
    """One launchable application: the name a person knows it by and how to start it."""

    name: str
    command: tuple[str, ...]


def _data_dirs() -> list[Path]:
    home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
    system = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [home, *(Path(part) for part in system.split(":") if part)]


def _entry(path: Path, *, hidden_too: bool = False) -> InstalledApp | None:
    parser = configparser.RawConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    try:
        parser.read(path, encoding="utf-8")
        section = parser["Desktop Entry"]
    except (configparser.Error, KeyError, UnicodeDecodeError, OSError):
        return None
    if section.get("Type", "Application") != "Application":
        return None
    if section.get("NoDisplay", "false").lower() == "true" and not hidden_too:
        return None
    if section.get("Hidden", "false").lower() == "true":
        return None
    if section.get("Terminal", "false").lower() == "true":
        return None  # needs a terminal to show anything (vim, python)
    name, exec_line = section.get("Name", "").strip(), section.get("Exec", "")
    try:
        argv = [part for part in shlex.split(_FIELD_CODE.sub("", exec_line)) if part]
    except ValueError:
        return None
    if not name or not argv:
        return None
    return InstalledApp(name, tuple(argv))


def macos_app_folders() -> list[Path]:
    """Where macOS keeps app bundles; Apple's own apps are in /System/Applications since 10.15."""
    roots = [Path("/Applications"), Path("/System/Applications"), Path.home() / "Applications"]
    return [folder for root in roots for folder in (root, root / "Utilities")]


def installed_apps(*, hidden_too: bool = False) -> list[InstalledApp]:
    """Launchable apps of this machine by name, sorted; empty where none are listed.

    `hidden_too`: also the entries menus hide (NoDisplay), which a person may still name
    in a task ("in gtk3-widget-factory").
    """
    if sys.platform == "darwin":
        folders = macos_app_folders()
        names = {p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.app")}
        # The bare name: the macOS backend opens it with `open -a` (it must not be wrapped
        # twice, and `open_app` finds the started app by this name).
        return [InstalledApp(name, (name,)) for name in sorted(names, key=str.lower)]
    seen: set[str] = set()
    by_name: dict[str, InstalledApp] = {}
    for folder in _data_dirs():
        directory = folder / "applications"
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.desktop")):
            if path.name in seen:
                continue  # hidden by an entry of the same file name found earlier
            seen.add(path.name)
            app = _entry(path, hidden_too=hidden_too)
            if app is not None:
                by_name.setdefault(app.name, app)
    return [by_name[name] for name in sorted(by_name, key=str.lower)]


def find_installed(name: str, apps: list[InstalledApp]) -> InstalledApp | None:
    wanted = name.strip().lower()
    return next((app for app in apps if app.name.lower() == wanted), None)
