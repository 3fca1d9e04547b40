"""Baseline for bench_screen.py: a naive pyatspi walk of one app's window.

Runs under Debian's /usr/bin/python3 (python3-pyatspi), not the venv. Prints JSON:
milliseconds of each walk, their median, and the node count.
"""

import contextlib
import json
import statistics
import sys
import time

import pyatspi


def walk(accessible, counter):
    counter[0] += 1
    read = [accessible.getRoleName(), accessible.name, accessible.getState()]
    with contextlib.suppress(NotImplementedError):
        read.append(accessible.queryComponent().getExtents(pyatspi.DESKTOP_COORDS))
    with contextlib.suppress(NotImplementedError):
        read.append(accessible.queryText().getText(0, -1))
    for child in accessible:
        if child is not None:
            walk(child, counter)


def main():
    app_name, rounds = sys.argv[1], int(sys.argv[2])
    desktop = pyatspi.Registry.getDesktop(0)
    app = next(a for a in desktop if a is not None and a.name == app_name)
    window = next(w for w in app if w.getState().contains(pyatspi.STATE_SHOWING))
    times = []
    for _ in range(rounds):
        counter = [0]
        started = time.perf_counter()
        walk(window, counter)
        times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"times_ms": times, "median_ms": statistics.median(times), "nodes": counter[0]}))


main()
