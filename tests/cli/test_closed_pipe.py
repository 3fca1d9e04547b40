"""A reader that stops early (`deskloop ... | head`) ends deskloop quietly, as with other tools."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deskloop.store import Store

DESKLOOP = [sys.executable, "-m", "deskloop"]
pytestmark = pytest.mark.slow


def into_a_closed_pipe(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """Run deskloop with stdout on a pipe whose reader has already gone."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [*DESKLOOP, *argv], stdout=writer, stderr=subprocess.PIPE, timeout=60, check=False
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (("config", "get"), 141),
        (("history",), 141),
        (("history", "1"), 141),
        (("bench",), 141),
        (("--help",), 0),  # argparse drops help it cannot write
    ],
)
def test_a_closed_pipe_ends_quietly(argv: tuple[str, ...], code: int) -> None:
    with Store.open() as store:
        session = store.create_session(title="a task")
        for n in range(300):
            store.add_message(session.id, "user", f"message {n}")
    done = into_a_closed_pipe(*argv)
    assert done.stderr == b""
    assert done.returncode == code


def test_a_reader_that_stops_after_two_lines(tmp_path: object) -> None:
    with Store.open() as store:
        for n in range(400):
            store.create_session(title=f"task {n}")
    shell = f"{' '.join(DESKLOOP)} history --limit 400 | head -2"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=60
    )
    assert len(done.stdout.splitlines()) == 2
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    assert done.returncode in (0, 141)
