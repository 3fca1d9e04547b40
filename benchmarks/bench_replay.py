"""Replay benchmark: 10 demonstrations replayed 10 times each, the window moved between
replays; success rate, median time per step, and the share of steps done through the
accessibility API rather than synthetic input.

Starts its own Xvfb, session bus and the GTK3 test apps (gtk3-widget-factory, gtk3-demo,
mousepad). Each demonstration is a step file as `deskloop record` writes one, and puts
its app back as it found it, so every replay starts from the same state. Prints figures;
asserts nothing. Targets (issue 22): success at least 98 %, median at most 150 ms a step.
The model route (healing every step) takes seconds a step on the embedded model; it is
not run here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from deskloop.recordings.recording import Locator, PathPart, Postcondition, Recording, Step
from deskloop.recordings.replay import Replayer
from deskloop.recordings.replay_report import ReplayReport
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.virtual_desktop import TEST_APPS, VirtualDesktop

FACTORY, DEMO, MOUSEPAD = "gtk3-widget-factory", "gtk3-demo", "mousepad"
WINDOW = (PathPart("window", ""),)
# Where each app's window goes before each replay, in turn (x, y offsets from its place).
MOVES = ((0, 0), (40, 30), (80, 10), (20, 60), (60, 40))


def indexed(role: str, name: str, index: int, state: str, app: str = FACTORY) -> Step:
    return Step(
        "click",
        f"click {role} {name!r} number {index + 1}",
        app=app,
        locators=(
            Locator("role_name", role=role, name=name),
            Locator("index", role=role, path=WINDOW, index=index),
        ),
        postcondition=Postcondition(state),  # type: ignore[arg-type]
    )


def named(action: str, role: str, name: str, state: str, app: str) -> Step:
    return Step(
        action,  # type: ignore[arg-type]
        f"{action} {role} {name!r}",
        app=app,
        locators=(Locator("role_name", role=role, name=name),),
        postcondition=Postcondition(state),  # type: ignore[arg-type]
    )


def text(value: str) -> Step:
    return Step(
        "set_text",
        f"set text of the document to {value!r}",
        app=MOUSEPAD,
        locators=(Locator("index", role="entry", path=WINDOW, index=0),),
        text=value,
        postcondition=Postcondition("text", value),
    )


def keys(chord: str, after: str | None = None) -> Step:
    return Step(
        "keys",
        f"press {chord}",
        app=MOUSEPAD,
        locators=text("").locators,
        text=chord,
        postcondition=None if after is None else Postcondition("text", after),
    )


def menu(*path: str) -> Step:
    return Step("menu", f"choose menu {' > '.join(path)}", app=MOUSEPAD, menu_path=path)


def demonstrations() -> list[Recording]:
    """Ten demonstrations, each leaving its app as it found it."""
    steps = [
        ("check-box", [indexed("check", "checkbutton", 4, "checked"),
                       indexed("check", "checkbutton", 4, "unchecked")]),
        ("switch", [indexed("toggle", "", 4, "checked"),
                    indexed("toggle", "", 4, "unchecked")]),
        ("radio", [indexed("radio", "radiobutton", 4, "checked"),
                   indexed("radio", "radiobutton", 5, "checked")]),
        ("entry", [text("anna@example.com"), text("")]),
        ("row", [named("select", "cell", "Assistant", "selected", DEMO),
                 named("select", "cell", "Application Class", "selected", DEMO)]),
        ("menu", [menu("View", "Statusbar"), menu("View", "Statusbar")]),
        ("chord", [text("throw this away"), keys("ctrl+a"), keys("Delete", after="")]),
        ("two-apps", [indexed("check", "checkbutton", 4, "checked"), text("two apps"),
                      indexed("check", "checkbutton", 4, "unchecked"), text("")]),
        ("page", [named("click", "radio", "Page 2", "checked", FACTORY),
                  named("click", "radio", "Page 1", "checked", FACTORY)]),
        ("rows", [named("select", "cell", "Builder", "selected", DEMO),
                  named("select", "cell", "Clipboard", "selected", DEMO),
                  named("select", "cell", "Application Class", "selected", DEMO)]),
    ]  # fmt: skip
    return [Recording(name, tuple(found)) for name, found in steps]


def move_windows(desktop: VirtualDesktop, turn: int) -> None:
    dx, dy = MOVES[turn % len(MOVES)]
    for spec in TEST_APPS:
        window = desktop.wait_for_window(spec)  # back to its place first
        x, y = spec.position
        desktop.xdotool("windowmove", "--sync", window, str(x + dx), str(y + dy))


async def measure(desktop: VirtualDesktop, rounds: int) -> dict[str, object]:
    backend = await AtspiBackend.connect()
    reports: list[ReplayReport] = []
    try:
        for demonstration in demonstrations():
            for turn in range(rounds):
                move_windows(desktop, turn)
                replayer = Replayer(ScreenSession(backend))
                reports.append(await replayer.replay(demonstration))
    finally:
        await backend.close()
    outcomes = [o for report in reports for o in report.outcomes]
    acted = [o for o in outcomes if o.via in ("accessibility", "input")]
    failures = [f"{r.recording}: {r.failed.line()}" for r in reports if r.failed is not None]
    return {
        "replays": len(reports),
        "success_percent": round(100 * sum(r.ok for r in reports) / len(reports), 1),
        "steps": len(outcomes),
        "median_ms_per_step": round(1000 * statistics.median(o.duration_s for o in outcomes), 1),
        "p90_ms_per_step": round(
            1000 * statistics.quantiles([o.duration_s for o in outcomes], n=10)[-1], 1
        ),
        "accessibility_share_percent": round(
            100 * sum(o.via == "accessibility" for o in acted) / max(1, len(acted)), 1
        ),
        "failures": failures[:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="replays per demonstration")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    started = time.monotonic()
    desktop = VirtualDesktop.start()
    try:
        desktop.wait_for_trees()
        with desktop.environment():
            figures = asyncio.run(measure(desktop, args.rounds))
    finally:
        desktop.stop()
    figures["wall_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    for key, value in figures.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
