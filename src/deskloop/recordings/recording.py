"""The step file: one recording is a JSON file of steps a person can read and edit.

A step says what was done in words a person would use ("click check box 'Bold' in window
'Editor'"), which element it was done to as ranked locators (best first), what it typed or
chose, and what the screen showed afterwards (its postcondition). Recordings live in
`<data dir>/recordings/NAME.json`; a repair proposed by healing waits beside it in
`NAME.proposed.json` until a person accepts it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from deskloop.errors import DeskloopError

FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# What a step does. `click` presses a button, check box, radio, tab or link; `set_text`
# leaves an entry holding `text` (one step per field, however many keys made it);
# `select` selects a row or item; `menu` chooses `menu_path` from a menu bar; `keys`
# presses a chord ("ctrl+s"); `open_app` starts `command`.
Action = Literal["click", "set_text", "select", "menu", "keys", "open_app"]
# Best first: a toolkit's stable id (macOS AXIdentifier, GTK buildable id), role and
# accessible name, the chain of named ancestors up to the window, the index among
# siblings of the same role, and the on-screen box last.
LocatorKind = Literal["stable_id", "role_name", "path", "index", "bounds"]
# What must hold after the step: the element is checked/unchecked/selected, holds `value`
# (text), is focused, or a window whose title contains `value` appeared.
ConditionKind = Literal["checked", "unchecked", "selected", "text", "focused", "window"]
RISKS = ("read", "write", "destructive")
Risk = Literal["read", "write", "destructive"]


class RecordingError(DeskloopError):
    """A recording that does not exist, a name that cannot be used, or a file that is not one."""


@dataclass(frozen=True)
class PathPart:
    """One named ancestor on the way from the window down to the element."""

    role: str
    name: str


@dataclass(frozen=True)
class Locator:
    """One way to find the step's element again; a step keeps several, best first."""

    kind: LocatorKind
    role: str = ""
    name: str = ""
    stable_id: str = ""
    # Named ancestors, window first (never the window title's changing part).
    path: tuple[PathPart, ...] = ()
    # Position among the parent's children of the same role (kind "index").
    index: int = -1
    # [x, y, width, height] relative to the window (kind "bounds").
    box: tuple[int, int, int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.role:
            data["role"] = self.role
        if self.name:
            data["name"] = self.name
        if self.stable_id:
            data["stable_id"] = self.stable_id
        if self.path:
            data["path"] = [{"role": part.role, "name": part.name} for part in self.path]
        if self.index >= 0:
            data["index"] = self.index
        if self.box is not None:
            data["box"] = list(self.box)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Locator:
        kind = _choice(data.get("kind"), LocatorKind, "locator kind")
        box = data.get("box")
        return cls(
            kind=kind,
            role=str(data.get("role", "")),
            name=str(data.get("name", "")),
            stable_id=str(data.get("stable_id", "")),
            path=tuple(
                PathPart(str(part.get("role", "")), str(part.get("name", "")))
                for part in data.get("path", [])
            ),
            index=int(data.get("index", -1)),
            box=(int(box[0]), int(box[1]), int(box[2]), int(box[3])) if box else None,
        )


@dataclass(frozen=True)
class Postcondition:
    kind: ConditionKind
    value: str = ""

    def describe(self) -> str:
        if self.kind == "text":
            return f"holds {self.value!r}"
        if self.kind == "window":
            return f"a window titled {self.value!r} is open"
        return f"is {self.kind}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.value:
            data["value"] = self.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Postcondition:
        kind = _choice(data.get("kind"), ConditionKind, "postcondition kind")
        return cls(kind=kind, value=str(data.get("value", "")))


@dataclass(frozen=True)
class Step:
    """One thing a person did, as they would name it."""

    action: Action
    intent: str
    app: str = ""
    # The window's role and the stable part of its title, for finding it again.
    window: str = ""
    locators: tuple[Locator, ...] = ()
    # set_text: the text; keys: the chord; open_app: the command.
    text: str = ""
    # set_text into a password field: the text is never stored; replay asks for the
    # secret named here, or reads it from the environment variable DESKLOOP_SECRET_<NAME>.
    secret: str = ""
    menu_path: tuple[str, ...] = ()
    postcondition: Postcondition | None = None
    risk: Risk = "write"

    @property
    def destructive(self) -> bool:
        return self.risk == "destructive"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action, "intent": self.intent}
        if self.app:
            data["app"] = self.app
        if self.window:
            data["window"] = self.window
        if self.locators:
            data["locators"] = [locator.to_json() for locator in self.locators]
        if self.text:
            data["text"] = self.text
        if self.secret:
            data["secret"] = self.secret
        if self.menu_path:
            data["menu_path"] = list(self.menu_path)
        if self.postcondition is not None:
            data["postcondition"] = self.postcondition.to_json()
        if self.risk != "write":
            data["risk"] = self.risk
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        if not isinstance(data, dict):
            raise RecordingError(f"a step must be an object, not {type(data).__name__}")
        condition = data.get("postcondition")
        return cls(
            action=_choice(data.get("action"), Action, "step action"),
            intent=str(data.get("intent", "")),
            app=str(data.get("app", "")),
            window=str(data.get("window", "")),
            locators=tuple(Locator.from_json(item) for item in data.get("locators", [])),
            text=str(data.get("text", "")),
            secret=str(data.get("secret", "")),
            menu_path=tuple(str(item) for item in data.get("menu_path", [])),
            postcondition=Postcondition.from_json(condition) if condition else None,
            risk=_choice(data.get("risk", "write"), Risk, "step risk"),
        )


@dataclass(frozen=True)
class Recording:
    name: str
    steps: tuple[Step, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    apps: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "deskloop_recording": FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "apps": list(self.apps),
            "steps": [step.to_json() for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: Any) -> Recording:
        if not isinstance(data, dict) or "steps" not in data:
            raise RecordingError("not a deskloop recording: it has no list of steps")
        version = data.get("deskloop_recording", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise RecordingError(
                f"recording format {version} is not one this deskloop reads "
                f"({FORMAT_VERSION}); update deskloop"
            )
        if not isinstance(data["steps"], list):
            raise RecordingError("its steps must be a list, one step per entry")
        return cls(
            name=str(data.get("name", "")),
            steps=tuple(_step(number, step) for number, step in enumerate(data["steps"], 1)),
            created=str(data.get("created", "")),
            apps=tuple(str(app) for app in data.get("apps", [])),
        )


# What each action needs to be replayed: a way to find its element, or its own field.
_NEEDS: dict[str, tuple[str, str]] = {
    "click": ("locators", "no locators, so its element cannot be found"),
    "select": ("locators", "no locators, so its row cannot be found"),
    "set_text": ("locators", "no locators, so its field cannot be found"),
    "menu": ("menu_path", "no menu_path (the menu titles to choose, in order)"),
    "keys": ("text", "no text (the keys to press, such as ctrl+s)"),
    "open_app": ("text", "no text (the command that opens the app)"),
}


def _step(number: int, data: Any) -> Step:
    """Step `number` (from 1) of a file; what is wrong with it names the step."""
    try:
        step = Step.from_json(data)
    except RecordingError as error:
        raise RecordingError(f"step {number} is not valid: {error}") from error
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise RecordingError(
            f"step {number} is not valid: a field has the wrong shape ({error})"
        ) from error
    needed, missing = _NEEDS[step.action]
    if not getattr(step, needed):
        raise RecordingError(f"step {number} ({step.action}) is not valid: it has {missing}")
    return step


def _choice(value: Any, kind: Any, what: str) -> Any:
    allowed = get_args(kind)
    if value not in allowed:
        raise RecordingError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return value


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise RecordingError(
            f"{name!r} cannot name a recording: use letters, digits, '.', '_' and '-' "
            "(up to 64, starting with a letter or digit)"
        )
    return name


class RecordingFiles:
    """The recordings folder: one `NAME.json` per recording, `NAME.proposed.json` beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}.json"

    def proposal_path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}.proposed.json"

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(
            path.name.removesuffix(".json")
            for path in self.folder.glob("*.json")
            if not path.name.endswith(".proposed.json")
        )

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def load(self, name: str) -> Recording:
        path = self.path(name)
        if not path.is_file():
            known = ", ".join(self.names()) or "none yet"
            raise RecordingError(
                f"no recording named {name!r} (recordings: {known}); make one with "
                f"`deskloop record {name}`"
            )
        return self._read(path)

    def load_proposal(self, name: str) -> Recording | None:
        path = self.proposal_path(name)
        return self._read(path) if path.is_file() else None

    def save(self, recording: Recording) -> Path:
        return self._write(self.path(recording.name), recording)

    def save_proposal(self, recording: Recording) -> Path:
        return self._write(self.proposal_path(recording.name), recording)

    def accept(self, name: str) -> Recording:
        proposal = self.load_proposal(name)
        if proposal is None:
            raise RecordingError(f"recording {name!r} has no proposed repair to accept")
        self.save(replace(proposal, name=name))
        self.proposal_path(name).unlink()
        return proposal

    def remove(self, name: str) -> None:
        path = self.path(name)
        if not path.is_file():
            raise RecordingError(f"no recording named {name!r}")
        path.unlink()
        self.proposal_path(name).unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> Recording:
        recording = self.load(old)
        if self.exists(new):
            raise RecordingError(f"a recording named {new!r} already exists; remove it first")
        renamed = replace(recording, name=check_name(new))
        self.save(renamed)
        proposal = self.load_proposal(old)
        if proposal is not None:
            self.save_proposal(replace(proposal, name=new))
        self.remove(old)
        return renamed

    def _read(self, path: Path) -> Recording:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RecordingError(f"{path} cannot be read as a recording: {error}") from error
        try:
            return Recording.from_json(data)
        except RecordingError as error:
            raise RecordingError(
                f"{path}: {error}. Fix that step in the file, or record it again"
            ) from error

    def _write(self, path: Path, recording: Recording) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Written whole then renamed, so an editor or a replay never reads half a file.
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(recording.to_json(), indent=2, ensure_ascii=False) + "\n")
        os.replace(partial, path)
        return path


def steps_summary(steps: tuple[Step, ...]) -> list[str]:
    return [f"{number}. {step.intent}" for number, step in enumerate(steps, start=1)]


def cast_risk(value: str) -> Risk:
    if value not in RISKS:
        raise RecordingError(f"risk {value!r} is not one of {', '.join(RISKS)}")
    return cast(Risk, value)
