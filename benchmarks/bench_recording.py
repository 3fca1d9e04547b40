"""Recording benchmark: does a running recorder slow the desktop? Time from an `xdotool
click` on a check box to the app's own state change, with `deskloop record` running and
without, median of 50 each, in one run.

Starts its own Xvfb, session bus and gtk3-widget-factory. The state change is heard as the
app's AT-SPI `object:state-changed:checked` signal on a separate connection (registered in
both halves, so only the recorder differs). Batches alternate without/with the recorder so
drift hits both. Prints figures; asserts nothing. Target (issue 22): within 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbus_fast import Message, MessageType

from deskloop.screen.backend import Target
from deskloop.screen.backends.atspi import constants as c
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.backends.atspi.connection import Caller, connect_buses
from deskloop.screen.virtual_desktop import TEST_APPS, VirtualDesktop

FACTORY = TEST_APPS[0]
REGISTRY_PATH = "/org/a11y/atspi/registry"
BATCHES = 5
SETTLE_S = 0.15  # between clicks, so each change is heard before the next click


async def enabled_check_box() -> tuple[int, int]:
    backend = await AtspiBackend.connect()
    try:
        read = await backend.read(Target(app=FACTORY.atspi_name))
    finally:
        await backend.close()
    for node in read.nodes:
        if node.role == "check" and "disabled" not in node.states and node.box is not None:
            return node.box.center
    raise SystemExit("gtk3-widget-factory shows no enabled check box")


class StateListener:
    """Hears `object:state-changed:checked` from any app on its own bus connection."""

    def __init__(self) -> None:
        self.heard: asyncio.Future[float] | None = None

    async def start(self) -> None:
        buses = await connect_buses()
        self.bus = buses.a11y
        self.session = buses.session
        caller = Caller(self.bus, None)
        await caller.call(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            ("type='signal',interface='org.a11y.atspi.Event.Object',member='StateChanged'",),
            destination="org.freedesktop.DBus",
        )
        await caller.call(
            REGISTRY_PATH,
            c.REGISTRY,
            "RegisterEvent",
            "sas",
            ("object:state-changed:checked", []),
            destination=c.REGISTRY,
        )
        self.bus.add_message_handler(self._on_message)

    def _on_message(self, message: Message) -> bool:
        if (
            message.message_type == MessageType.SIGNAL
            and message.member == "StateChanged"
            and message.body
            and message.body[0] == "checked"
            and self.heard is not None
            and not self.heard.done()
        ):
            self.heard.set_result(time.perf_counter())
        return False

    def close(self) -> None:
        self.bus.disconnect()
        if self.session is not None:
            self.session.disconnect()


async def click_to_change_ms(
    desktop: VirtualDesktop, listener: StateListener, x: int, y: int, count: int
) -> list[float]:
    times = []
    await asyncio.to_thread(desktop.xdotool, "mousemove", str(x), str(y))
    for _ in range(count):
        listener.heard = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        await asyncio.to_thread(desktop.xdotool, "click", "1")
        heard = await asyncio.wait_for(listener.heard, timeout=5)
        times.append((heard - started) * 1000)
        await asyncio.sleep(SETTLE_S)
    return times


def start_recorder(desktop: VirtualDesktop, home: Path) -> subprocess.Popen[str]:
    env = {**desktop.env, "DESKLOOP_HOME": str(home)}
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deskloop",
            "record",
            "bench",
            "--replace",
            "--app",
            FACTORY.atspi_name,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert recorder.stderr is not None
    line = recorder.stderr.readline()
    if not line.startswith("recording"):
        recorder.kill()
        raise SystemExit(f"the recorder did not start: {line}{recorder.stderr.read()}")
    return recorder


def stop_recorder(recorder: subprocess.Popen[str]) -> int:
    """Stops it as Ctrl-C does; returns how many steps it printed."""
    recorder.send_signal(signal.SIGINT)
    out, _ = recorder.communicate(timeout=30)
    return sum(1 for line in out.splitlines() if line[:1].isdigit())


async def measure(desktop: VirtualDesktop, rounds: int, home: Path) -> dict[str, object]:
    x, y = await enabled_check_box()
    listener = StateListener()
    await listener.start()
    without: list[float] = []
    with_recorder: list[float] = []
    steps = 0
    per_batch = max(1, rounds // BATCHES)
    try:
        await click_to_change_ms(desktop, listener, x, y, 3)  # warm up
        for _ in range(BATCHES):
            without += await click_to_change_ms(desktop, listener, x, y, per_batch)
            recorder = await asyncio.to_thread(start_recorder, desktop, home)
            await asyncio.sleep(0.5)
            try:
                with_recorder += await click_to_change_ms(desktop, listener, x, y, per_batch)
            finally:
                await asyncio.sleep(1.0)  # the last click's step settles
                steps += await asyncio.to_thread(stop_recorder, recorder)
    finally:
        listener.close()
    off, on = statistics.median(without), statistics.median(with_recorder)
    return {
        "clicks_each": len(without),
        "median_ms_without_recorder": round(off, 2),
        "median_ms_with_recorder": round(on, 2),
        "added_ms": round(on - off, 2),
        "p90_ms_without": round(statistics.quantiles(without, n=10)[-1], 2),
        "p90_ms_with": round(statistics.quantiles(with_recorder, n=10)[-1], 2),
        "steps_recorded": steps,
        "target": "added_ms <= 10",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="clicks with and without")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    desktop = VirtualDesktop.start(apps=(FACTORY,))
    try:
        desktop.wait_for_trees(apps=(FACTORY,))
        with tempfile.TemporaryDirectory(prefix="deskloop-bench-") as home, desktop.environment():
            os.environ["DESKLOOP_HOME"] = home
            figures = asyncio.run(measure(desktop, args.rounds, Path(home)))
    finally:
        desktop.stop()
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    for key, value in figures.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
