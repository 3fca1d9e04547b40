"""`scan_files` indexes only inside its roots, incrementally; `search_files` finds what it indexed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskloop.settings import load_settings
from deskloop.store import Store
from deskloop.tools import BadToolArguments, Tool, ToolContext
from deskloop.tools.files import build_file_tools, index_roots


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    user = tmp_path / "user"
    (user / "Documents" / "taxes").mkdir(parents=True)
    (user / "Downloads").mkdir()
    (user / "Projects" / "site" / "node_modules" / "dep").mkdir(parents=True)
    (user / "Music").mkdir()  # not a default root
    (user / "Documents" / "taxes" / "return-2025.pdf").write_bytes(b"%PDF-1.7 " * 10)
    (user / "Documents" / "notes.md").write_text("# notes")
    (user / "Downloads" / "holiday.JPG").write_bytes(b"\xff\xd8" * 100)
    (user / "Projects" / "site" / "app.py").write_text("print('hi')")
    (user / "Projects" / "site" / "node_modules" / "dep" / "index.js").write_text("")
    (user / "Music" / "song.mp3").write_bytes(b"ID3")
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "private.txt").write_text("not yours")
    # A link out of the roots: must not be followed.
    (user / "Documents" / "escape").symlink_to(secret)
    monkeypatch.setenv("HOME", str(user))
    return user


def _tools(context: ToolContext) -> dict[str, Tool]:
    return {tool.name: tool for tool in build_file_tools(context)}


def test_default_roots_are_the_usual_folders_that_exist(home: Path) -> None:
    roots = index_roots(load_settings().files, home)
    assert [root.name for root in roots] == ["Downloads", "Documents", "Projects"]


async def test_scan_indexes_the_roots_without_following_links_out(
    home: Path, context: ToolContext, store: Store
) -> None:
    tools = _tools(context)
    said = str(await tools["scan_files"].run({}, context))
    assert "4 files (4 new or changed, 0 gone, 0 unchanged)" in said
    assert "1 symbolic links not followed" in said
    with store.transaction() as db:
        indexed = sorted(Path(row[0]).name for row in db.execute("SELECT path FROM indexed_files"))
    assert indexed == ["app.py", "holiday.JPG", "notes.md", "return-2025.pdf"]
    found = str(await tools["search_files"].run({"kind": "pdf"}, context))
    assert found.startswith(
        str(home / "Documents" / "taxes" / "return-2025.pdf") + " | pdf | 90 B | "
    )
    assert "holiday.JPG | image" in str(
        await tools["search_files"].run({"name": "HOLIDAY"}, context)
    )
    assert await tools["search_files"].run({"name": "private"}, context) == "no matching files"


async def test_a_rescan_writes_only_what_changed_and_forgets_what_is_gone(
    home: Path, context: ToolContext
) -> None:
    scan = _tools(context)["scan_files"]
    await scan.run({}, context)
    notes = home / "Documents" / "notes.md"
    notes.write_text("# notes, longer now")
    later = time.time() + 5
    os.utime(notes, (later, later))
    (home / "Downloads" / "holiday.JPG").unlink()
    said = str(await scan.run({}, context))
    assert "3 files (1 new or changed, 1 gone, 2 unchanged)" in said
    search = _tools(context)["search_files"]
    today = time.strftime("%Y-%m-%d", time.localtime(later))
    recent = str(await search.run({"modified_after": today}, context))
    assert "notes.md" in recent


async def test_a_path_outside_the_roots_is_refused_and_scanning_inside_still_works(
    home: Path, context: ToolContext, tmp_path: Path
) -> None:
    scan = _tools(context)["scan_files"]
    for outside in (
        str(tmp_path / "outside"),
        str(home / "Music"),
        "/etc",
        str(home / "Documents" / "escape"),
    ):
        with pytest.raises(BadToolArguments, match="outside the indexed folders"):
            await scan.run({"path": outside}, context)
    with pytest.raises(BadToolArguments, match="must be a date"):
        await _tools(context)["search_files"].run({"modified_after": "last week"}, context)
    said = str(await scan.run({"path": str(home / "Documents" / "taxes")}, context))
    assert "1 files (1 new or changed" in said


SCAN_IN_A_CHILD = """
import asyncio
from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import ToolContext
from deskloop.tools.files import build_file_tools
with Store.open() as store:
    context = ToolContext(settings=load_settings(), paths=paths(), store=store)
    (scan,) = [t for t in build_file_tools(context) if t.name == "scan_files"]
    print(asyncio.run(scan.run({}, context)))
"""


def _scan_as_a_user(home: Path) -> str:
    """A scan in a child process that folder permissions apply to: root drops the
    capabilities that let it read every folder (setpriv, from util-linux)."""
    command = [sys.executable, "-c", SCAN_IN_A_CHILD]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop the read-anything capability")
        dropped = "-dac_override,-dac_read_search"
        command = ["setpriv", "--bounding-set", dropped, "--inh-caps", dropped, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_folder_it_cannot_read_is_reported_and_what_it_held_is_kept(
    home: Path, context: ToolContext
) -> None:
    assert "4 files (4 new or changed" in _scan_as_a_user(home)
    locked = home / "Documents" / "taxes"
    locked.chmod(0)
    try:
        said = _scan_as_a_user(home)
    finally:
        locked.chmod(0o755)
    assert f"could not read: {locked} (Permission denied)" in said
    assert "3 files (0 new or changed, 0 gone, 3 unchanged)" in said
    # Not readable is not gone: the file under it is still found.
    found = await _tools(context)["search_files"].run({"kind": "pdf"}, context)
    assert "return-2025.pdf" in str(found)
