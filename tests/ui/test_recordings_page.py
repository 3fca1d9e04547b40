"""The Recordings card's API on the Routines page: list, remove, and Record / Stop refusals."""

from __future__ import annotations

import httpx
import pytest

from deskloop.recordings.recorder import RecorderLock
from deskloop.recordings.recording import Recording, RecordingFiles, Step
from deskloop.settings import paths


def files() -> RecordingFiles:
    return RecordingFiles(paths().data_dir / "recordings")


async def test_list_and_remove(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/recordings")).json() == {"recordings": [], "recording": None}
    files().save(
        Recording(
            "bold", (Step(action="keys", intent="press Ctrl+B", text="ctrl+b"),), apps=("editor",)
        )
    )
    (listed,) = (await client.get("/api/recordings")).json()["recordings"]
    assert listed["name"] == "bold"
    assert listed["steps"] == ["press Ctrl+B"] and listed["apps"] == ["editor"]
    removed = await client.post("/api/recordings/bold/remove")
    assert removed.json()["recordings"] == []


async def test_record_without_a_desktop_says_what_to_fix(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    answer = await client.post("/api/recordings/record", json={"name": "nowhere"})
    assert answer.status_code == 400
    said = answer.json()["error"]
    assert "DISPLAY" in said and "Traceback" not in said
    assert (await client.get("/api/recordings")).json()["recording"] is None


async def test_a_second_recording_and_a_stop_with_none_are_refused(
    client: httpx.AsyncClient,
) -> None:
    lock = RecorderLock(files().folder)
    lock.take("first")
    try:
        busy = await client.post("/api/recordings/record", json={"name": "second"})
        assert busy.status_code == 409
        assert "already running ('first')" in busy.json()["error"]
        assert (await client.get("/api/recordings")).json()["recording"]["name"] == "first"
    finally:
        lock.release()
    none = await client.post("/api/recordings/stop")
    assert none.status_code == 400 and "no recording is running" in none.json()["error"]
    bad = await client.post("/api/recordings/record", json={"name": "../x"})
    assert bad.status_code == 400 and "cannot name a recording" in bad.json()["error"]
