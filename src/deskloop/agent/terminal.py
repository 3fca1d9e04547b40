"""What the user sees in a terminal: streamed text, each tool call, a status line, usage at the end."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from deskloop.agent.steps import (
    SHOWN_NOTICES,
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
from deskloop.tools import Answer, Asker, PermissionRequest

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# How often the status line is redrawn; it first shows after one interval, so an answer
# that comes at once never flashes a status.
STATUS_INTERVAL_S = 0.1


class TerminalView:
    """Prints steps as they come, with a live status line while nothing else is shown.

    The status line (starting the model server, waiting for the model, running a tool)
    is drawn only when the output is a terminal, and erased before anything is printed.
    """

    def __init__(self, out: TextIO = sys.stdout, err: TextIO | None = None) -> None:
        self.out = out
        # Reports about MCP servers go to stderr, beside the agent's answer.
        self.err = err if err is not None else sys.stderr
        self.animated = out.isatty()
        self.usage: list[TurnUsage] = []
        self._running: dict[str, tuple[str, float]] = {}
        self._status: tuple[str, float] | None = None
        self._spinner: asyncio.Task[None] | None = None
        self._mid_line = False
        self._spinner_drawn = False
        self._asking = 0

    # What is going on now ---------------------------------------------------------

    def set_status(self, text: str) -> None:
        """Show `text` (with the seconds it has lasted) until output arrives or it changes."""
        self._status = (text, time.monotonic())
        self._start_spinner()

    def update_status(self, text: str) -> None:
        """Change the status's words but not when it started, if one is showing."""
        if self._status is not None:
            self._status = (text, self._status[1])

    def clear_status(self) -> None:
        self._status = None
        self._clear_spinner()

    @property
    def status(self) -> str | None:
        """The status line as it reads now, or None when none would be drawn."""
        if self._running:
            name, started = next(iter(self._running.values()))
            more = f" and {len(self._running) - 1} more" if len(self._running) > 1 else ""
            return f"running {name}{more} for {time.monotonic() - started:.0f} s"
        if self._status is not None:
            text, started = self._status
            return f"{text} for {time.monotonic() - started:.0f} s"
        return None

    def while_asking(self, asker: Asker) -> Asker:
        """`asker` with the status line out of the way while it asks the person."""

        async def ask(request: PermissionRequest) -> Answer:
            self._asking += 1
            self._clear_spinner()
            try:
                return await asker(request)
            finally:
                self._asking -= 1

        return ask

    # Steps ------------------------------------------------------------------------

    def show_all(self, steps: Iterable[Step]) -> None:
        for step in steps:
            self.show(step)

    def show(self, step: Step) -> None:
        if isinstance(step, TextDelta):
            self._status = None
            self._write(step.text)
            self._mid_line = not step.text.endswith("\n")
        elif isinstance(step, TurnStarted):
            self.set_status("waiting for the model")
        elif isinstance(step, ToolCallStarted):
            self._status = None
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
            self._status = None
            self.usage.append(step.usage)
        elif isinstance(step, Notice) and step.kind == "mcp_report":
            self.error_line(f"deskloop: {step.message}")
        elif isinstance(step, Notice) and step.kind in SHOWN_NOTICES:
            self._line(f"[{step.message}]")
        elif isinstance(step, FollowupAsked):
            self._line(f"? {step.question}")
            for number, option in enumerate(step.options, 1):
                self._line(f"  {number}. {option}")
        elif isinstance(step, RunEnded):
            self.clear_status()
            # endpoint errors go to stderr from the command, once
            if step.reason not in ("end_turn", "ask_followup", "endpoint_error"):
                self._line(f"[{step.message}]")

    def summary(self) -> str:
        read = sum(u.input_tokens for u in self.usage)
        written = sum(u.output_tokens for u in self.usage)
        cached = sum(u.cache_read_tokens for u in self.usage)
        seconds = sum(u.model_seconds for u in self.usage)
        return (
            f"{len(self.usage)} turn{'' if len(self.usage) == 1 else 's'}, {read} tokens in "
            f"({cached} cached), {written} out, "
            f"{seconds:.1f} s in the model"
        )

    def finish(self) -> None:
        self._status = None
        self._running.clear()
        self._stop_spinner()
        if self._mid_line:
            self._write("\n")
            self._mid_line = False

    def line(self, text: str) -> None:
        """A line of the command's own (a header, a recap) on the output."""
        self._line(text)

    def error_line(self, text: str) -> None:
        """A line on stderr, with the status line erased first."""
        self._clear_spinner()
        print(text, file=self.err, flush=True)

    # Drawing ----------------------------------------------------------------------

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
            self.out.flush()
            self._spinner_drawn = False

    async def _spin(self) -> None:
        frame = 0
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            status = self.status
            if status is None or self._mid_line or self._asking:
                self._clear_spinner()
                continue
            self.out.write(f"\r\033[K{SPINNER[frame % len(SPINNER)]} {status}")
            self.out.flush()
            self._spinner_drawn = True
            frame += 1
