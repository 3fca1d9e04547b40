"""Finding a browser to attach to: user-data dirs, DevToolsActivePort files, the advice.

A live port is a real listening socket; a stale one is a port just closed. The real
browser's own stale file is in test_browser_start.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from deskloop.settings import BrowserSettings, paths
from deskloop.tools.browser.attach import (
    INSPECT_PAGE,
    UserDataDir,
    explain_no_browser,
    find_port_files,
    standard_user_data_dirs,
    user_data_dirs,
)
from deskloop.tools.browser.doctor import route_check


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def write_port_file(folder: Path, port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "DevToolsActivePort"
    file.write_text(f"{port}\n/devtools/browser/3f0c-test\n")
    return file


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real browser of the machine's user is found by these tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def test_standard_dirs_cover_chrome_chromium_and_brave_on_linux_and_macos(tmp_path: Path) -> None:
    linux = {d.browser: d.path for d in standard_user_data_dirs("linux", tmp_path, {})}
    assert linux["Chrome"] == tmp_path / ".config/google-chrome"
    assert linux["Chromium"] == tmp_path / ".config/chromium"
    assert linux["Brave"] == tmp_path / ".config/BraveSoftware/Brave-Browser"
    xdg = standard_user_data_dirs("linux", tmp_path, {"XDG_CONFIG_HOME": "/cfg"})
    assert xdg[0].path == Path("/cfg/google-chrome")
    mac = {d.browser: d.path for d in standard_user_data_dirs("darwin", tmp_path, {})}
    assert mac["Chrome"] == tmp_path / "Library/Application Support/Google/Chrome"
    assert mac["Brave"] == tmp_path / "Library/Application Support/BraveSoftware/Brave-Browser"


def test_a_live_port_file_gives_the_websocket_url(tmp_path: Path, listening_port: int) -> None:
    write_port_file(tmp_path / "chrome", listening_port)
    [finding] = find_port_files([UserDataDir("Chrome", tmp_path / "chrome")])
    assert finding.state == "live"
    assert finding.endpoint is not None
    assert finding.endpoint.ws_url == f"ws://127.0.0.1:{listening_port}/devtools/browser/3f0c-test"


def test_a_stale_port_file_is_told_apart_and_a_live_one_wins(
    tmp_path: Path, listening_port: int
) -> None:
    stale_port = closed_port()
    write_port_file(tmp_path / "stale", stale_port)
    write_port_file(tmp_path / "live", listening_port)
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "DevToolsActivePort").write_text("not a port\n")
    findings = find_port_files([
        UserDataDir("Chrome", tmp_path / "stale"),
        UserDataDir("Chromium", tmp_path / "garbage"),
        UserDataDir("Brave", tmp_path / "live"),
        UserDataDir("Chrome Beta", tmp_path / "none"),
    ])
    assert [(f.where.browser, f.state) for f in findings] == [
        ("Brave", "live"), ("Chrome", "stale"), ("Chromium", "unreadable"),
    ]
    assert f"port {stale_port}, where nothing listens" in findings[1].detail


def test_the_configured_dir_comes_first_and_deskloops_own_last(tmp_path: Path) -> None:
    settings = BrowserSettings(user_data_dir=str(tmp_path / "custom"))
    dirs = user_data_dirs(settings, paths())
    assert dirs[0] == UserDataDir("configured", tmp_path / "custom")
    assert dirs[-1].path == paths().data_dir / "browser-profile"


def test_with_nothing_to_attach_the_advice_names_both_routes(tmp_path: Path) -> None:
    write_port_file(tmp_path / "chrome", closed_port())
    findings = find_port_files([UserDataDir("Chrome", tmp_path / "chrome")])
    advice = explain_no_browser(findings, BrowserSettings(executable="/usr/bin/chromium"))
    assert INSPECT_PAGE in advice
    assert "nothing listens" in advice
    assert "browser_start" in advice and "browser.start_own" in advice
    assert "browser.user_data_dir" in advice


def test_doctor_says_which_route_works(tmp_path: Path, listening_port: int) -> None:
    where = paths()
    none_installed = route_check(BrowserSettings(executable=str(tmp_path / "no-such")), where)
    assert none_installed.status == "warn"
    assert INSPECT_PAGE in none_installed.fix
    route_2 = route_check(BrowserSettings(executable="/usr/bin/chromium"), where)
    assert route_2.status == "warn"
    assert "deskloop can start /usr/bin/chromium" in route_2.detail
    assert "browser-profile" in route_2.detail
    write_port_file(tmp_path / "chrome", listening_port)
    route_1 = route_check(BrowserSettings(user_data_dir=str(tmp_path / "chrome")), where)
    assert route_1.status == "ok"
    assert f"port {listening_port}" in route_1.detail
