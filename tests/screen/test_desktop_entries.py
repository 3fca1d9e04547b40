"""Installed apps by name, from desktop entries: what open_app's `app` parameter lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskloop.screen.desktop_entries import find_installed, installed_apps


def entry(folder: Path, file: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text("[Desktop Entry]\nType=Application\n" + body)


def test_launchable_entries_are_listed_by_name_and_a_users_entry_hides_the_systems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, system = tmp_path / "user" / "applications", tmp_path / "system" / "applications"
    entry(system, "editor.desktop", "Name=Text Editor\nExec=editor %F\n")
    entry(user, "editor.desktop", "Name=My Editor\nExec=editor --new-window %U\n")
    entry(system, "calc.desktop", "Name=Calculator\nExec=gnome-calculator\n")
    entry(system, "hidden.desktop", "Name=Helper\nExec=helper\nNoDisplay=true\n")
    entry(system, "vim.desktop", "Name=Vim\nExec=vim %F\nTerminal=true\n")
    entry(system, "broken.desktop", "Name=Broken\n")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path / "system"))
    apps = installed_apps()
    assert [(app.name, app.command) for app in apps] == [
        ("Calculator", ("gnome-calculator",)),
        ("My Editor", ("editor", "--new-window")),
    ]
    found = find_installed("calculator", apps)
    assert found is not None and found.command == ("gnome-calculator",)
    assert find_installed("Text Editor", apps) is None
