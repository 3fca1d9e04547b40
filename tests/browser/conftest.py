"""Browser tests: pages on a loopback HTTP server, a real headless Chromium per module."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# A browser a test starts dies with the test run, even one killed before its teardown
# (setpriv is Linux's util-linux; elsewhere only the teardown stops it).
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []
# Quiet and self-contained: no sandbox (tests run as root), no network traffic of its own.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--window-size=1000,700",
]


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No browser of the machine's own user is found: only the one a test points at."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def start_chromium(profile: Path) -> subprocess.Popen[bytes]:
    """Chromium as a user would run it with remote debugging on, its port in its profile."""
    process = subprocess.Popen(
        [*DIE_WITH_PARENT, CHROMIUM, *CHROMIUM_ARGS, "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
            return process
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        time.sleep(0.1)
    stop(process)
    raise RuntimeError("chromium wrote no DevToolsActivePort within 60 s")


def chromium_dying_with_the_tests(folder: Path) -> str:
    """An executable for `browser.executable`: Chromium, ended when the test run ends.

    deskloop starts its own browser in a new session so that it outlives deskloop; a
    test's must not outlive the test.
    """
    script = folder / "chromium-for-tests"
    script.write_text(f'#!/bin/sh\nexec {" ".join(DIE_WITH_PARENT)} {CHROMIUM} "$@"\n')
    script.chmod(0o755)
    return str(script)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium as a person closing it would: it writes its storage to disk first.

    On a loaded 2-core machine that took over 10 s once, and the kill that followed lost
    the page's localStorage (the profile test then saw "Nobody yet").
    """
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium_profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One running Chromium for the module; its user-data dir holds DevToolsActivePort."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/debian-packages.txt)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = start_chromium(profile)
    try:
        yield profile
    finally:
        stop(process)


class PageServer(http.server.ThreadingHTTPServer):
    pages: dict[str, str]


class PageHandler(http.server.BaseHTTPRequestHandler):
    server: PageServer

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.server.pages.get(path.strip("/"))
        if body is None:
            self.send_error(404)
            return
        data = body.replace("{query}", query).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class LocalSite:
    """A loopback HTTP server's address and the pages it serves by path ({query} filled in)."""

    base: str
    pages: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    server = PageServer(("127.0.0.1", 0), PageHandler)
    local = LocalSite(f"http://127.0.0.1:{server.server_address[1]}")
    server.pages = local.pages
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield local
    finally:
        server.shutdown()
        server.server_close()
