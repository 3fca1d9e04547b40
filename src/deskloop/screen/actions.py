"""The backend-neutral action surface the agent's screen tools call.

A `ScreenSession` keeps the latest snapshot of the window it works on. Every action
resolves ids against that snapshot, checks the element still has the same role and name
(else "stale id: observe again"), acts through the accessibility API first and synthetic
input second, waits for the window to settle, and returns the diff.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from dataclasses import dataclass

from deskloop.screen.backend import ScreenBackend, Target
from deskloop.screen.diff import SnapshotDiff, diff_snapshots
from deskloop.screen.errors import (
    ActionFailedError,
    DegradedTreeError,
    ScreenError,
    StaleElementError,
)
from deskloop.screen.observation import (
    DEFAULT_BUDGET,
    FOR_MODEL,
    Wording,
    render_observation,
    visible_elements,
    visible_fields,
)
from deskloop.screen.observation import find_elements as find_in_snapshot
from deskloop.screen.roles import LIST_ROW_ROLES, takes_text
from deskloop.screen.screenshot import Screenshot, make_screenshot
from deskloop.screen.targeting import named_window
from deskloop.screen.tree import Box, Element, IdAllocator, Snapshot, build_snapshot, resolve

# Settle rule: read until two reads SETTLE_GAP_S apart agree. A state flip through an
# accessible action is synchronous (0.2 ms, SCREEN-NOTES.md), but right after a page switch
# a GTK tree is incomplete for about 60 ms, so when elements come or go the reads must
# agree for STRUCTURE_QUIET_S (a test flaked at 15 ms without it).
SETTLE_GAP_S = 0.008
SETTLE_TIMEOUT_S = 1.0
STRUCTURE_QUIET_S = 0.1
# On a loaded machine the app builds the new page slower too: with both cores busy a page
# switch settled with the old page's 83 elements gone and none of the new page's yet (a
# fresh CI rehearsal). The app answers reads from the same main loop, so how long a read
# takes says how slow it is now; the structure quiet is at least this many reads long.
STRUCTURE_QUIET_READS = 3
# Synthetic input reaches the app asynchronously: give it this long to show a change.
SYNTHETIC_GRACE_S = 0.15
# Typed text lands a key at a time (xdotool: about 2 ms a key idle, several times that
# under load); a fixed grace ran out on long texts and the diff said "no change". The first
# keys show long before the last (a character without a key waits for a keymap change), so
# typing settles only after its grace and once the text has been still for TYPING_QUIET_S:
# CI read "Grüß" of "Grüße → ok" when the first change was taken as the end.
TYPING_GRACE_PER_CHAR_S = 0.01
TYPING_GRACE_MAX_S = 3.0
TYPING_QUIET_S = 0.2


def typing_grace(text: str) -> float:
    return min(TYPING_GRACE_MAX_S, SYNTHETIC_GRACE_S + TYPING_GRACE_PER_CHAR_S * len(text))


POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class ActionResult:
    """What an action tells the model (`text`), with the snapshot and diff behind it."""

    text: str
    snapshot: Snapshot | None = None
    diff: SnapshotDiff | None = None


def _signature(snapshot: Snapshot) -> dict[str, list[str]]:
    return visible_fields(snapshot)


def _structure_changed(before: Snapshot, after: Snapshot) -> bool:
    """Elements came or went (not just changed state): the settle rule waits longer."""
    if (before.pid, before.root) != (after.pid, after.root):
        return True
    return visible_fields(before).keys() != visible_fields(after).keys()


class ScreenSession:
    """One agent's view of the screen: the window it works on and its latest snapshot."""

    def __init__(
        self, backend: ScreenBackend, budget: int = DEFAULT_BUDGET, wording: Wording = FOR_MODEL
    ) -> None:
        self.backend = backend
        self.budget = budget
        self.wording = wording
        self.ids = IdAllocator()
        self.target = Target()
        self.latest: Snapshot | None = None
        # The user's task: the first observation looks at the window it names (targeting.py).
        self.task = ""
        # The step of the task being done, when it goes step by step: its words pick the
        # elements an observation lists first.
        self.step = ""

    @property
    def focus(self) -> str:
        """The words observations rank elements by: the current step's, else the task's."""
        return self.step or self.task

    # Reading -------------------------------------------------------------------------

    async def read(self, target: Target | None = None) -> Snapshot:
        """A fresh snapshot of `target` (default: the session's window), made the latest."""
        read = await self.backend.read(target or self.target)
        snapshot = build_snapshot(read, self.ids)
        self.latest = snapshot
        if snapshot.pid:
            self.target = Target(pid=snapshot.pid)
        return snapshot

    async def settle(
        self, before: Snapshot, grace_s: float = 0.0, typing: bool = False
    ) -> Snapshot:
        """Read until two reads agree (and, for synthetic input, a change shows or time passes).

        Typed keys keep landing after the first change shows, so `typing` waits out the
        whole grace and then for the reads to stay still for TYPING_QUIET_S.

        Once a change has shown, the agreeing "read" is the backend's cheap fingerprint (one
        cache call) rather than a whole tree. A change that adds or removes elements (a page
        switch, a dialog) must stay quiet for STRUCTURE_QUIET_S: GTK builds the new page's
        tree over some tens of milliseconds after the old one is gone.
        """
        started = time.monotonic()
        timeout = SETTLE_TIMEOUT_S + (grace_s if typing else 0.0)
        current = await self.read()
        since = time.monotonic()
        slowest_read = since - started
        while time.monotonic() - started < timeout:
            await asyncio.sleep(SETTLE_GAP_S)
            waited = time.monotonic() - started >= grace_s
            changed = _signature(current) != _signature(before) and not typing
            if current.fingerprint is not None and (changed or waited):
                if await self.backend.fingerprint(current.pid) != current.fingerprint:
                    reading = time.monotonic()
                    current, since = await self.read(), time.monotonic()
                    slowest_read = max(slowest_read, since - reading)
                    continue
            else:
                reading = time.monotonic()
                fresh = await self.read()
                slowest_read = max(slowest_read, time.monotonic() - reading)
                if _signature(fresh) != _signature(current):
                    current, since = fresh, time.monotonic()
                    continue
                current = fresh
                changed = _signature(current) != _signature(before) and not typing
            quiet = 0.0
            if _structure_changed(before, current):
                quiet = max(STRUCTURE_QUIET_S, STRUCTURE_QUIET_READS * slowest_read)
            if typing:
                quiet = max(quiet, TYPING_QUIET_S)
            if (changed or waited) and time.monotonic() - since >= quiet:
                return current
        return current

    def on_screen_ids(self) -> tuple[str, ...]:
        """Ids of the latest snapshot's elements inside its window: what a call may name
        (the observation shows some, find_elements finds the rest)."""
        if self.latest is None:
            return ()
        snapshot = self.latest
        return tuple(
            element.id
            for element in snapshot
            if element.box is not None and not element.box.is_empty and element.id != snapshot.root
        )

    def _require_snapshot(self) -> Snapshot:
        if self.latest is None:
            raise StaleElementError("no observation yet: call observe first, then use its ids")
        return self.latest

    async def _checked_element(self, element_id: str) -> Element:
        snapshot = self._require_snapshot()
        element = resolve(snapshot, element_id, self.ids)
        live = await self.backend.identity(snapshot.pid, element.ref)
        if live != element.identity:
            raise StaleElementError(
                f"stale id: {element.id} was {element.role} {element.name!r} in snapshot "
                f"{snapshot.number} but is now {live[0]} {live[1]!r}: observe again"
            )
        return element

    def _report(self, what: str, before: Snapshot, after: Snapshot) -> ActionResult:
        same_window = (before.pid, before.root) == (after.pid, after.root)
        if not same_window:
            observation = render_observation(after, self.budget, self.wording, task=self.focus)
            return ActionResult(f"{what}; the window changed:\n{observation.text}", after)
        diff = diff_snapshots(before, after)
        return ActionResult(f"{what}\n{diff.render(self.budget)}", after, diff)

    async def _act_and_report(
        self, what: str, grace_s: float, before: Snapshot, typing: bool = False
    ) -> ActionResult:
        after = await self.settle(before, grace_s, typing)
        return self._report(what, before, after)

    # The tools -----------------------------------------------------------------------

    async def observe(
        self,
        app: str | None = None,
        pid: int | None = None,
        focused: bool = False,
        budget: int | None = None,
    ) -> ActionResult:
        """The compact observation of a window: by app name or pid, the focused one, or
        (with no arguments) the window this session works on."""
        why = ""
        if app is not None or pid is not None:
            target = Target(app=app, pid=pid)
        elif focused or self.latest is None:
            target, why = await self.starting_target()
        else:
            target, why = self.target, "the window you work on"
        snapshot = await self.read(target)
        observation = render_observation(
            snapshot, budget or self.budget, self.wording, why=why, task=self.focus
        )
        return ActionResult(observation.text, snapshot)

    async def starting_target(self) -> tuple[Target, str]:
        """The window the task names (by app name or window title), else the focused one."""
        if self.task:
            named = named_window(self.task, await self.backend.list_apps())
            if named is not None:
                return Target(pid=named.app.pid), named.why
            return Target(), "the focused window; the task names no running app"
        return Target(), "the focused window"

    async def find_elements(self, query: str, limit: int = 20) -> ActionResult:
        """Elements of the latest snapshot whose role, name or text match every word of query."""
        snapshot = self._require_snapshot()
        if snapshot.degraded:
            raise DegradedTreeError(
                f"{snapshot.app} gives no usable tree ({snapshot.degraded}): use capture_screenshot"
            )
        return ActionResult(find_in_snapshot(snapshot, query, limit), snapshot)

    async def click(
        self, element_id: str, button: str = "left", double: bool = False
    ) -> ActionResult:
        """Click an element: its accessible action, else a synthetic click at its centre."""
        if button not in ("left", "right", "middle"):
            raise ActionFailedError(f"button must be left, right or middle, not {button!r}")
        before = self._require_snapshot()
        element = await self._checked_element(element_id)
        label = f"{element.id} ({element.role} {element.name!r})"
        # A list row's accessible action is not a click: on a GTK tree cell it activates or
        # expands and selects nothing ("select the Assistant demo" changed nothing), so a
        # row is clicked the way a person clicks it, its window brought to the front first
        # (another may lie over it). Menu items keep their action: raising the window
        # would close their menu.
        is_row = element.role in LIST_ROW_ROLES
        if (
            not is_row
            and button == "left"
            and not double
            and await self.backend.press(before.pid, element.ref)
        ):
            return await self._act_and_report(f"clicked {label}", 0.0, before)
        if is_row:
            await self.backend.focus_window(before.pid, before.title)
        await self._synthetic_click(element, button, 2 if double else 1)
        kind = (
            "double-clicked" if double else f"{button}-clicked" if button != "left" else "clicked"
        )
        return await self._act_and_report(
            f"{kind} {label} at its centre", SYNTHETIC_GRACE_S, before
        )

    async def _synthetic_click(self, element: Element, button: str, count: int) -> None:
        if element.box is None:
            raise ActionFailedError(
                f"{element.id} has no position on screen and no accessible action: "
                "scroll it into view, then observe again"
            )
        x, y = element.box.center
        await self.backend.click_at(x, y, button, count)

    async def type_text(self, text: str, element_id: str | None = None) -> ActionResult:
        """Type text into an element (inserted at its caret) or into whatever has focus."""
        before = self._require_snapshot() if element_id else await self.read()
        if element_id is None:
            await self.backend.focus_window(before.pid, before.title)
            await self.backend.type_keys(text)
            return await self._act_and_report(
                f"typed {len(text)} characters into the focus", typing_grace(text), before, True
            )
        element = await self._checked_element(element_id)
        if not takes_text(element.role, element.states):
            raise ActionFailedError(
                f"{element.id} is a {element.role} ({element.name!r}) and takes no text: "
                "type into a text field instead (an entry, text or document element), "
                "or click this one"
            )
        if await self.backend.insert_text(before.pid, element.ref, text):
            return await self._act_and_report(
                f"typed {len(text)} characters into {element.id}", 0.0, before
            )
        await self.backend.focus_window(before.pid, before.title)
        if not await self.backend.focus_element(before.pid, element.ref):
            await self._synthetic_click(element, "left", 1)
        await self.backend.type_keys(text)
        return await self._act_and_report(
            f"typed {len(text)} characters into {element.id} with the keyboard",
            typing_grace(text),
            before,
            typing=True,
        )

    async def set_value(self, element_id: str, value: str) -> ActionResult:
        """Replace an element's whole text, or set a slider or spin button to a number."""
        before = self._require_snapshot()
        element = await self._checked_element(element_id)
        if not await self.backend.set_value(before.pid, element.ref, value):
            raise ActionFailedError(
                f"{element.id} ({element.role}) has no text or numeric value to set: "
                "use click or type_text instead"
            )
        return await self._act_and_report(f"set {element.id} to {value!r}", 0.0, before)

    async def press_keys(self, keys: str) -> ActionResult:
        """Press key combinations in order, e.g. `ctrl+s` or `ctrl+a Delete`, into the focus."""
        before = self.latest or await self.read()
        await self.backend.focus_window(before.pid, before.title)
        for combo in keys.split():
            await self.backend.press_keys(combo)
        return await self._act_and_report(f"pressed {keys}", SYNTHETIC_GRACE_S, before)

    async def scroll(
        self, direction: str = "down", amount: int = 3, element_id: str | None = None
    ) -> ActionResult:
        """Scroll with the wheel over an element (or the window's centre)."""
        if direction not in ("up", "down", "left", "right"):
            raise ActionFailedError(f"direction must be up, down, left or right, not {direction!r}")
        before = self._require_snapshot()
        box = (await self._checked_element(element_id)).box if element_id else before.window
        if box is None:
            raise ActionFailedError(f"{element_id} has no position on screen: observe again")
        x, y = box.center
        await self.backend.scroll_at(x, y, direction, max(1, min(amount, 50)))
        return await self._act_and_report(
            f"scrolled {direction} {amount}", SYNTHETIC_GRACE_S, before
        )

    async def focus_window(self, app: str | None = None, pid: int | None = None) -> ActionResult:
        """Bring an app's window to the front and give it the keyboard focus; observe it."""
        snapshot = await self.read(Target(app=app, pid=pid))
        await self.backend.focus_window(snapshot.pid, snapshot.title)
        return await self.observe(pid=snapshot.pid)

    async def open_app(self, command: str, timeout_s: float = 20.0) -> ActionResult:
        """Start an application by command and observe its window once it shows elements."""
        argv = shlex.split(command)
        if not argv:
            raise ActionFailedError("no command given: pass the program name, e.g. mousepad")
        pid = await self.backend.launch(argv)
        name = argv[0].rsplit("/", 1)[-1]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            apps = await self.backend.list_apps()
            match = next((a for a in apps if a.pid == pid), None) or next(
                (a for a in apps if a.name.lower() == name.lower()), None
            )
            if match is not None:
                try:
                    snapshot = await self.read(Target(pid=match.pid))
                except ScreenError:
                    snapshot = None
                if snapshot is not None and snapshot.degraded is None:
                    return ActionResult(
                        f"started {name} (pid {pid})\n"
                        + render_observation(snapshot, self.budget, self.wording).text,
                        snapshot,
                    )
            await asyncio.sleep(POLL_INTERVAL_S)
        raise ActionFailedError(
            f"started {name} (pid {pid}) but no window with elements appeared within "
            f"{timeout_s:.0f} s: observe later, or capture_screenshot to see it"
        )

    async def wait_for(
        self,
        text: str | None = None,
        element_id: str | None = None,
        timeout_s: float = 5.0,
        gone: bool = False,
    ) -> ActionResult:
        """Wait until text (or an element id) appears in the window, or is gone with `gone`."""
        if not text and not element_id:
            raise ActionFailedError("wait_for needs text or an element id to wait for")
        before = self.latest or await self.read()
        deadline = time.monotonic() + timeout_s
        wanted = (text or "").lower()
        while True:
            snapshot = await self.read()
            lines = [" ".join(fields) for fields in visible_fields(snapshot).values()]
            if element_id:
                present = element_id in {e.id for e in visible_elements(snapshot)}
            else:
                present = any(wanted in line.lower() for line in lines)
            if present != gone:
                what = f"{'gone' if gone else 'found'}: {element_id or repr(text)}"
                return self._report(what, before, snapshot)
            if time.monotonic() >= deadline:
                raise ActionFailedError(
                    f"timed out after {timeout_s:g} s waiting for {element_id or repr(text)} "
                    f"to {'go' if gone else 'appear'}: observe to see the window now"
                )
            await asyncio.sleep(POLL_INTERVAL_S)

    async def capture_screenshot(self, window: bool = True) -> tuple[ActionResult, Screenshot]:
        """A PNG of the session's window (or the whole screen), downscaled for the model."""
        box = None
        if window:
            box = (self.latest or await self.read()).window
        image = await self.backend.capture(box)
        shot = make_screenshot(image, box or _image_box(image.width, image.height))
        return ActionResult(shot.describe(), self.latest), shot


def _image_box(width: int, height: int) -> Box:
    return Box(0, 0, width, height)
