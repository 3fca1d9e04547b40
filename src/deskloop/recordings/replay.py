"""Replay a recording without a model: each step found again by its locators, done through
the accessibility API first (as the screen tools do), and checked against its postcondition.

A step waits until its element is there and enabled (5 s by default). A step that cannot
be found, or whose postcondition fails, goes to the healer when there is one (healing.py)
and is not destructive; otherwise the replay stops there and says which step and why.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from deskloop.recordings.healing import Healer, HealRequest, propose, repaired_step
from deskloop.recordings.locate import Found, NotFound, describe, locate, menu_item
from deskloop.recordings.recording import Postcondition, Recording, RecordingFiles, Step
from deskloop.recordings.replay_report import ReplayReport, StepOutcome, Via
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backend import Target
from deskloop.screen.errors import ActionFailedError, ScreenError, StaleElementError
from deskloop.screen.observation import visible_elements
from deskloop.screen.roles import LIST_ROW_ROLES
from deskloop.screen.tree import Element, Snapshot

DEFAULT_STEP_TIMEOUT_S = 5.0
POLL_S = 0.1
APP_START_TIMEOUT_S = 20.0
# Looking for a list row scrolled out of view: wheel steps per scroll, and scrolls each way.
SCROLL_AMOUNT = 5
MAX_SCROLLS = 20

SecretSource = Callable[[str], "str | None"]


class ReplayError(ScreenError):
    """A recording that cannot be replayed here at all (an app not installed, say)."""


class StepLog(Protocol):
    """Where each step is logged as it starts and ends (a session's tool calls: step_log.py)."""

    def started(self, number: int, step: Step) -> None: ...

    def finished(self, number: int, step: Step, outcome: StepOutcome) -> None: ...


def secret_from_environment(name: str) -> str | None:
    """The secret `name` from DESKLOOP_SECRET_<NAME> (letters upper-cased, others '_')."""
    return os.environ.get(secret_variable(name))


def secret_variable(name: str) -> str:
    return "DESKLOOP_SECRET_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def _program(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return words[0] if words else ""


def _target(step: Step) -> Target:
    return Target(app=step.app) if step.app else Target()


def holds(condition: Postcondition, element: Element) -> bool:
    """Whether an element shows what `condition` asks (a window condition is about titles,
    not an element: see `Replayer._condition_now`)."""
    states = element.states
    if condition.kind == "checked":
        return "checked" in states or "pressed" in states
    if condition.kind == "unchecked":
        return "checked" not in states and "pressed" not in states
    if condition.kind == "selected":
        return "selected" in states or "checked" in states
    if condition.kind == "focused":
        return "focused" in states
    if condition.kind == "text":
        return (element.value or "").rstrip("\n") == condition.value.rstrip("\n")
    return False


@dataclass
class Replayer:
    """Replays recordings on one screen session; a healer, secrets and a step log are optional."""

    screen: ScreenSession
    files: RecordingFiles | None = None
    step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S
    healer: Healer | None = None
    secrets: SecretSource = secret_from_environment
    log: StepLog | None = None
    # The report so far: read it after an interrupt (Ctrl-C) to say how far the replay got.
    report: ReplayReport | None = None
    # Set by `request_stop` (Ctrl-C): the replay stops before its next step.
    stop_requested: bool = False
    _repairs: dict[int, Step] = field(default_factory=dict)
    # The snapshot this replay's last action settled on: the next step looks there first,
    # which saves it a read of the whole window (most of a step's time, bench replay).
    _settled_on: Snapshot | None = None

    def request_stop(self) -> None:
        self.stop_requested = True

    async def check_apps(self, recording: Recording) -> None:
        """Refuse, before acting, a recording whose apps are neither running nor installed."""
        running = {app.name.lower() for app in await self.screen.backend.list_apps()}
        opened: set[str] = set()
        for number, step in enumerate(recording.steps, start=1):
            if step.action == "open_app":
                program = _program(step.text)
                if not program or shutil.which(program) is None:
                    raise ReplayError(
                        f"step {number} opens {step.text!r}, which is not installed here (not "
                        "on PATH): install it, or edit the step's command in the recording"
                    )
                opened.add(program.rsplit("/", 1)[-1].lower())
                if step.app:
                    opened.add(step.app.lower())
                continue
            app = step.app.lower()
            if app and app not in running and app not in opened and shutil.which(app) is None:
                raise ReplayError(
                    f"step {number} acts on {step.app!r}, which is not running, and no program "
                    "of that name is installed here: install and start it (or add an open_app "
                    "step before it), then replay"
                )

    async def replay(self, recording: Recording, *, dry_run: bool = False) -> ReplayReport:
        await self.check_apps(recording)
        started = time.monotonic()
        outcomes: list[StepOutcome] = []
        self._repairs = {}
        self._settled_on = None
        proposal: Path | None = None

        def report(interrupted: bool = False) -> ReplayReport:
            self.report = ReplayReport(
                recording.name,
                len(recording.steps),
                tuple(outcomes),
                dry_run=dry_run,
                proposal=proposal,
                interrupted=interrupted,
                duration_s=time.monotonic() - started,
            )
            return self.report

        for number, step in enumerate(recording.steps, start=1):
            report()
            if self.stop_requested:
                return report(interrupted=True)
            step_started = time.monotonic()
            if self.log is not None and not dry_run:
                self.log.started(number, step)
            try:
                if dry_run:
                    outcome = await self._resolve(number, step)
                else:
                    outcome = await self._do(recording, number, step)
            except asyncio.CancelledError:
                report(interrupted=True)
                raise
            except ScreenError as error:
                outcome = StepOutcome(number, step.intent, "failed", str(error))
            outcome = StepOutcome(
                outcome.number,
                outcome.intent,
                outcome.status,
                outcome.detail,
                outcome.via,
                time.monotonic() - step_started,
            )
            outcomes.append(outcome)
            if self.log is not None and not dry_run:
                self.log.finished(number, step, outcome)
            if outcome.status == "healed" and self.files is not None:
                proposal = self.files.proposal_path(recording.name)
            if not outcome.ok and not dry_run:
                break
        return report()

    # Finding ---------------------------------------------------------------------------

    async def _read(self, step: Step) -> Snapshot:
        return await self.screen.read(_target(step))

    def _settled_find(self, step: Step) -> Found | None:
        """The step's element in the snapshot the last action settled on, when that is
        still the session's latest and shows the step's app; else None (read afresh).

        Only for elements acted on by id (a click through the accessibility API, a value
        set): those check the element's identity before acting, so a stale find fails
        loudly and is found again. A list row is clicked at its centre, so never here.
        """
        settled = self._settled_on
        if (
            settled is None
            or settled is not self.screen.latest
            or step.action not in ("click", "set_text")
            or (step.app and settled.app.lower() != step.app.lower())
        ):
            return None
        found = locate(settled, step)
        if not isinstance(found, Found) or not found.enabled:
            return None
        if found.element.role in LIST_ROW_ROLES:
            return None
        condition = step.postcondition
        if condition is not None and holds(condition, found.element):
            return None  # "already done" is only said on a fresh read
        return found

    async def _wait_for(self, step: Step) -> Found | NotFound:
        """The step's element once it is there and enabled, or why not by the deadline."""
        settled = self._settled_find(step)
        if settled is not None:
            return settled
        deadline = time.monotonic() + self.step_timeout_s
        scrolled = False
        while True:
            try:
                snapshot = await self._read(step)
                result = locate(snapshot, step)
                if isinstance(result, NotFound) and not scrolled:
                    scrolled = True
                    result = await self._scrolled_into_view(step, snapshot) or result
            except ScreenError as error:
                result = NotFound((str(error),))
            if isinstance(result, Found):
                if result.enabled:
                    return result
                result = NotFound((f"{result.element.role} {result.element.name!r} is disabled",))
            if time.monotonic() >= deadline:
                waited = f"after waiting {self.step_timeout_s:g} s"
                return NotFound((f"not found {waited}: {result.reason}",))
            await asyncio.sleep(POLL_S)

    async def _scrolled_into_view(self, step: Step, snapshot: Snapshot) -> Found | None:
        """A list row scrolled out of view: scroll its list up, then down, looking for it."""
        roles = {locator.role for locator in step.locators} & LIST_ROW_ROLES
        for direction in ("up", "down"):
            for _ in range(MAX_SCROLLS):
                rows = [e for e in visible_elements(snapshot) if e.role in roles]
                if not rows:
                    return None
                await self.screen.scroll(direction, SCROLL_AMOUNT, rows[len(rows) // 2].id)
                after = self.screen.latest
                if after is None:
                    return None
                found = locate(after, step)
                if isinstance(found, Found):
                    return found
                if [e.name for e in visible_elements(after) if e.role in roles] == [
                    e.name for e in rows
                ]:
                    break  # the list's end: nothing moved
                snapshot = after
        return None

    async def _resolve(self, number: int, step: Step) -> StepOutcome:
        """Dry run: whether the step's element is on the screen now; nothing is done."""
        if step.action == "open_app":
            return StepOutcome(number, step.intent, "found", f"{_program(step.text)} is installed")
        snapshot = await self._read(step)
        if step.action == "menu":
            top = menu_item(snapshot, step.menu_path, 0) if step.menu_path else None
            if isinstance(top, Element):
                return StepOutcome(number, step.intent, "found", f"menu {top.name.strip()!r}")
            why = top if isinstance(top, str) else f"no menu {step.menu_path[:1]!r}"
            return StepOutcome(number, step.intent, "would_fail", why)
        if not step.locators:
            return StepOutcome(number, step.intent, "found", f"acts on {snapshot.app}")
        result = locate(snapshot, step)
        if isinstance(result, NotFound):
            return StepOutcome(number, step.intent, "would_fail", result.reason)
        disabled = "" if result.enabled else " (disabled now)"
        return StepOutcome(number, step.intent, "found", f"by {describe(result.locator)}{disabled}")

    # Doing -----------------------------------------------------------------------------

    async def _do(self, recording: Recording, number: int, step: Step) -> StepOutcome:
        if step.action == "open_app":
            return await self._open_app(number, step)
        if step.action == "menu":
            return await self._menu(recording, number, step)
        text = step.text
        if step.action == "set_text" and step.secret:
            secret = self.secrets(step.secret)
            if secret is None:
                return StepOutcome(
                    number,
                    step.intent,
                    "failed",
                    f"needs the secret {step.secret!r}: set {secret_variable(step.secret)} "
                    "or replay from a terminal to be asked for it",
                )
            text = secret
        if step.action == "keys" and not step.locators:
            await self._read(step)
            await self.screen.press_keys(step.text)
            return await self._checked(recording, number, step, None, "input")
        found = await self._wait_for(step)
        if isinstance(found, NotFound):
            return await self._heal_or_fail(recording, number, step, found.reason)
        condition = step.postcondition
        if (
            step.action in ("click", "select")
            and condition is not None
            and condition.kind in ("checked", "unchecked", "selected")
            and holds(condition, found.element)
        ):
            return StepOutcome(number, step.intent, "already", f"it {condition.describe()}")
        try:
            via = await self._act(step, found, text)
        except StaleElementError:
            if self._settled_on is None:
                raise
            self._settled_on = None  # the window changed since: find the element afresh
            return await self._do(recording, number, step)
        # Only an action through the accessibility API settled the session's latest read.
        self._settled_on = self.screen.latest if via == "accessibility" else None
        return await self._checked(recording, number, step, found, via)

    async def _act(self, step: Step, found: Found, text: str) -> Via:
        element = found.element
        if step.action in ("click", "select"):
            result = await self.screen.click(element.id)
            return "input" if "at its centre" in result.text else "accessibility"
        if step.action == "set_text":
            try:
                await self.screen.set_value(element.id, text)
                return "accessibility"
            except ActionFailedError:
                backend, pid = self.screen.backend, found.snapshot.pid
                await backend.focus_window(pid, found.snapshot.title)
                await backend.focus_element(pid, element.ref)
                await backend.press_keys("ctrl+a")
                await backend.type_keys(text)
                return "input"
        # keys, aimed at the recorded element
        await self.screen.backend.focus_window(found.snapshot.pid, found.snapshot.title)
        await self.screen.backend.focus_element(found.snapshot.pid, element.ref)
        await self.screen.press_keys(step.text)
        return "input"

    async def _checked(
        self, recording: Recording, number: int, step: Step, found: Found | None, via: Via
    ) -> StepOutcome:
        """Wait for the postcondition (up to the step timeout); heal or fail when it does not."""
        condition = step.postcondition
        if condition is None:
            return StepOutcome(number, step.intent, "done", "", via)
        # The action's own settled read usually shows it already: no second read then.
        after = self.screen.latest
        if found is not None and after is not None and after.pid == found.snapshot.pid:
            element = after.elements.get(found.element.id)
            if condition.kind != "window" and element is not None and holds(condition, element):
                return StepOutcome(number, step.intent, "done", f"it {condition.describe()}", via)
        why = await self._wait_for_condition(step, condition, found)
        if why is None:
            return StepOutcome(number, step.intent, "done", f"it {condition.describe()}", via)
        return await self._heal_or_fail(recording, number, step, why)

    async def _wait_for_condition(
        self, step: Step, condition: Postcondition, found: Found | None
    ) -> str | None:
        """None once `condition` holds; else, at the deadline, what was seen instead."""
        deadline = time.monotonic() + self.step_timeout_s
        seen = ""
        while True:
            try:
                seen = await self._condition_now(step, condition, found)
            except ScreenError as error:
                seen = str(error)
            if not seen:
                return None
            if time.monotonic() >= deadline:
                return f"the postcondition failed: expected it {condition.describe()}, but {seen}"
            await asyncio.sleep(POLL_S)

    async def _condition_now(
        self, step: Step, condition: Postcondition, found: Found | None
    ) -> str:
        """'' when the condition holds now, else what the screen shows."""
        if condition.kind == "window":
            wanted = condition.value.lower()
            titles = [t for app in await self.screen.backend.list_apps() for t in app.titles]
            if any(wanted in title.lower() for title in titles):
                return ""
            return f"the windows open are {titles!r}"
        target = Target(pid=found.snapshot.pid) if found is not None else _target(step)
        snapshot = await self.screen.read(target)
        element = snapshot.elements.get(found.element.id) if found is not None else None
        if element is None:
            again = locate(snapshot, step)
            if isinstance(again, NotFound):
                return f"the element is gone ({again.reason})"
            element = again.element
        if holds(condition, element):
            return ""
        if condition.kind == "text":
            return f"it holds {element.value!r}"
        return f"its states are {', '.join(sorted(element.states)) or 'none'}"

    async def _open_app(self, number: int, step: Step) -> StepOutcome:
        program = _program(step.text).rsplit("/", 1)[-1].lower()
        names = {program, step.app.lower()} - {""}
        running = [a for a in await self.screen.backend.list_apps() if a.name.lower() in names]
        if running:
            return StepOutcome(number, step.intent, "already", f"{running[0].name} is running")
        await self.screen.open_app(step.text, max(APP_START_TIMEOUT_S, self.step_timeout_s))
        return StepOutcome(number, step.intent, "done", f"started {program}", "input")

    async def _menu(self, recording: Recording, number: int, step: Step) -> StepOutcome:
        """Open each menu of the path in turn, then choose the last item."""
        names = step.menu_path
        if not names:
            return StepOutcome(number, step.intent, "failed", "the step names no menu path")
        opened: Snapshot | None = None  # what opening the last menu settled on
        for depth in range(len(names)):
            deadline = time.monotonic() + self.step_timeout_s
            while True:
                if opened is not None and opened is self.screen.latest:
                    snapshot, opened = opened, None
                else:
                    snapshot = await self._read(step)
                item = menu_item(snapshot, names, depth)
                if isinstance(item, Element) and "disabled" not in item.states:
                    break
                if time.monotonic() >= deadline:
                    why = (
                        item
                        if isinstance(item, str)
                        else (
                            f"no enabled menu item {' > '.join(names[: depth + 1])!r} in "
                            f"{snapshot.title!r} after {self.step_timeout_s:g} s"
                        )
                    )
                    if depth > 0:
                        await self.screen.backend.press_keys("Escape")
                    return await self._heal_or_fail(recording, number, step, why)
                await asyncio.sleep(POLL_S)
            opened = (await self.screen.click(item.id)).snapshot
        self._settled_on = None  # a chosen item may have changed anything: read afresh
        return await self._checked(recording, number, step, None, "accessibility")

    # Healing ---------------------------------------------------------------------------

    async def _heal_or_fail(
        self, recording: Recording, number: int, step: Step, reason: str
    ) -> StepOutcome:
        if step.destructive:
            return StepOutcome(
                number,
                step.intent,
                "failed",
                f"{reason}. The step is destructive, so it is not healed: check the screen, "
                "then fix the step in the recording or do it by hand",
            )
        if step.secret:
            return StepOutcome(
                number,
                step.intent,
                "failed",
                f"{reason}. The step types a secret, which is never handed to a model: "
                "fix the step's locators in the recording",
            )
        if self.healer is None:
            return StepOutcome(
                number,
                step.intent,
                "failed",
                f"{reason}. No model was given to heal it: edit the step's locators in the "
                "recording, or record it again",
            )
        try:
            observation = (await self.screen.observe(app=step.app or None)).text
        except ScreenError as error:
            observation = f"(no observation: {error})"
        request = HealRequest(recording.name, number, step, reason, observation)
        healed = await self.healer.heal(request)
        if healed is None:
            return StepOutcome(
                number, step.intent, "failed", f"{reason}. The model could not do it either"
            )
        repaired = repaired_step(step, healed)
        if step.postcondition is not None:
            why = await self._wait_for_condition(repaired, step.postcondition, None)
            if why is not None:
                return StepOutcome(
                    number, step.intent, "failed", f"{reason}. The model acted, but {why}"
                )
        self._repairs[number] = repaired
        if self.files is not None:
            propose(self.files, recording, self._repairs)
        return StepOutcome(
            number,
            step.intent,
            "healed",
            f"{reason}. The model did it on {healed.element.role} {healed.element.name!r}",
            "model",
        )
