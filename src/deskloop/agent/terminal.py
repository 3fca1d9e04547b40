"""What the user sees in a terminal: streamed text, each tool call, a spinner, usage at the end."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from deskloop.agent.steps import (
    FollowupAsked,
    Notice,
    RunEnded,
    Step,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
)
from deskloop.agent.text import short
from deskloop.store import TurnUsage

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class TerminalView:
    """Prints steps as they come; a spinner shows while tools run (only on a terminal)."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO | None = None) -> None:
        self.out = out
        # Reports about MCP servers go to stderr, beside the agent's answer.
        self.err = err if err is not None else sys.stderr
        self.animated = out.isatty()
        self.usage: list[TurnUsage] = []
        self._running: dict[str, tuple[str, float]] = {}
        self._spinner: asyncio.Task[None] | None = None
        self._mid_line = False
        self._spinner_drawn = False

    def show_all(self, steps: Iterable[Step]) -> None:
        for step in steps:
            self.show(step)

    def show(self, step: Step) -> None:
        if isinstance(step, TextDelta):
            self._write(step.text)
            self._mid_line = not step.text.endswith("\n")
        elif isinstance(step, TurnStarted):
            pass
        elif isinstance(step, ToolCallStarted):
            self._line(f"→ {step.call.name} {short(step.call.input)}")
            self._running[step.call.id] = (step.call.name, time.monotonic())
            self._start_spinner()
        elif isinstance(step, ToolCallFinished):
            outcome = step.outcome
            self._running.pop(outcome.call.id, None)
            mark = "✗" if outcome.is_error else "✓"
            said = " ".join(str(b.get("text", f"[{b.get('type')}]")) for b in outcome.content)
            self._line(f"  {mark} {outcome.call.name} {outcome.duration_s:.1f} s: {short(said)}")
        elif isinstance(step, TurnEnded):
            self.usage.append(step.usage)
        elif isinstance(step, Notice) and step.kind == "mcp_report":
            self._clear_spinner()
            print(f"deskloop: {step.message}", file=self.err, flush=True)
        elif isinstance(step, FollowupAsked):
            self._line(f"? {step.question}")
            for number, option in enumerate(step.options, 1):
                self._line(f"  {number}. {option}")
        # endpoint errors go to stderr from the command, once
        elif isinstance(step, RunEnded) and step.reason not in (
            "end_turn",
            "ask_followup",
            "endpoint_error",
        ):
            self._line(f"[{step.message}]")

    def summary(self) -> str:
        read = sum(u.input_tokens for u in self.usage)
        written = sum(u.output_tokens for u in self.usage)
        cached = sum(u.cache_read_tokens for u in self.usage)
        seconds = sum(u.model_seconds for u in self.usage)
        return (
            f"{len(self.usage)} turns, {read} tokens in ({cached} cached), {written} out, "
            f"{seconds:.1f} s in the model"
        )

    def finish(self) -> None:
        self._stop_spinner()
        if self._mid_line:
            self._write("\n")
            self._mid_line = False

    def _line(self, text: str) -> None:
        self._clear_spinner()
        if self._mid_line:
            self._write("\n")
            self._mid_line = False
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        self._clear_spinner()
        self.out.write(text)
        self.out.flush()

    def _start_spinner(self) -> None:
        if self.animated and self._spinner is None:
            self._spinner = asyncio.ensure_future(self._spin())

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.cancel()
            self._spinner = None
        self._clear_spinner()

    def _clear_spinner(self) -> None:
        if self._spinner_drawn:
            self.out.write("\r\033[K")
            self._spinner_drawn = False

    async def _spin(self) -> None:
        frame = 0
        while True:
            await asyncio.sleep(0.1)
            if not self._running:
                continue
            name, started = next(iter(self._running.values()))
            more = f" +{len(self._running) - 1}" if len(self._running) > 1 else ""
            elapsed = time.monotonic() - started
            if self._mid_line:
                continue
            self.out.write(f"\r\033[K{SPINNER[frame % len(SPINNER)]} {name}{more} {elapsed:.1f} s")
            self.out.flush()
            self._spinner_drawn = True
            frame += 1
