"""Recordings on the Routines page: Record and Stop a demonstration, list and remove them.

Record starts `deskloop record NAME` as a child process (it takes the one-recorder lock and
listens to this desktop, exactly as from a terminal); Stop asks it to stop as `deskloop
record --stop` does. The steps it prints are shown while it records.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.recordings.recorder import RecorderLock, stop_running_recorder
from deskloop.recordings.recording import RecordingError, RecordingFiles, check_name
from deskloop.settings import paths
from deskloop.ui.http import json_body, text_field

START_WAIT_S = 20.0  # until the child says it listens, or says why not
STOP_WAIT_S = 15.0  # until the child has saved and exited
POLL_S = 0.1


class RecorderBusy(RecordingError):
    status_code = 409


@dataclass
class RecordingChild:
    """A `deskloop record` this UI started; its printed steps go to `steps_path`."""

    name: str
    process: subprocess.Popen[bytes]
    steps_path: Path
    said_path: Path

    def steps(self) -> list[str]:
        try:
            text = self.steps_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()]

    def said(self) -> str:
        """The child's last words on stderr, without the `deskloop: ` prefix."""
        try:
            lines = self.said_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        last = next((line for line in reversed(lines) if line.strip()), "")
        return last.removeprefix("deskloop: ")


# The recording each data folder's UI started (one UI process serves one data folder).
_children: dict[Path, RecordingChild] = {}


def _files() -> RecordingFiles:
    return RecordingFiles(paths().data_dir / "recordings")


def recordings_view(files: RecordingFiles) -> dict[str, Any]:
    listed: list[dict[str, Any]] = []
    for name in files.names():
        try:
            recording = files.load(name)
        except RecordingError as exc:
            listed.append({"name": name, "error": str(exc)})
            continue
        listed.append(
            {
                "name": name,
                "steps": [step.intent for step in recording.steps],
                "apps": list(recording.apps),
                "created": recording.created,
                "proposed_repair": files.load_proposal(name) is not None,
            }
        )
    running: dict[str, Any] | None = None
    held = RecorderLock(files.folder).holder()
    child = _children.get(files.folder)
    if held is not None:
        pid, name = held
        mine = child is not None and child.process.pid == pid
        running = {"name": name, "pid": pid, "steps": child.steps() if mine and child else []}
    return {"recordings": listed, "recording": running}


async def show(request: Request) -> Response:
    return JSONResponse(recordings_view(_files()))


async def record(request: Request) -> Response:
    body = await json_body(request)
    name = check_name(text_field(body, "name", required=True))
    app = text_field(body, "app")
    files = _files()
    held = RecorderLock(files.folder).holder()
    if held is not None:
        raise RecorderBusy(f"a recording is already running ({held[1]!r}): stop it first")
    if files.exists(name):
        raise RecordingError(f"a recording named {name!r} already exists: pick another name")
    files.folder.mkdir(parents=True, exist_ok=True)
    steps_path = files.folder / f".{name}.steps.txt"
    said_path = files.folder / f".{name}.said.txt"
    command = [sys.executable, "-m", "deskloop", "record", name]
    if app:
        command += ["--app", app]
    with steps_path.open("wb") as steps, said_path.open("wb") as said:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=steps,
            stderr=said,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    child = RecordingChild(name, process, steps_path, said_path)
    waited = 0.0
    while waited < START_WAIT_S:
        if process.poll() is not None:
            raise RecordingError(
                child.said() or f"the recorder stopped at once (exit {process.returncode})"
            )
        if child.said().startswith("recording "):
            break
        await asyncio.sleep(POLL_S)
        waited += POLL_S
    _children[files.folder] = child
    return JSONResponse(recordings_view(files), status_code=202)


async def stop(request: Request) -> Response:
    files = _files()
    stop_running_recorder(files.folder)
    child = _children.pop(files.folder, None)
    if child is not None:
        waited = 0.0
        while child.process.poll() is None and waited < STOP_WAIT_S:
            await asyncio.sleep(POLL_S)
            waited += POLL_S
        for path in (child.steps_path, child.said_path):
            path.unlink(missing_ok=True)
    return JSONResponse(recordings_view(files))


async def remove(request: Request) -> Response:
    files = _files()
    files.remove(request.path_params["name"])
    return JSONResponse(recordings_view(files))


def recordings_routes() -> list[BaseRoute]:
    return [
        Route("/api/recordings", show, methods=["GET"]),
        Route("/api/recordings/record", record, methods=["POST"]),
        Route("/api/recordings/stop", stop, methods=["POST"]),
        Route("/api/recordings/{name}/remove", remove, methods=["POST"]),
    ]
