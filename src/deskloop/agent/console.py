"""Reading a line from the terminal without blocking the event loop or Ctrl-C."""

from __future__ import annotations

import asyncio
import sys
import threading


async def read_line(prompt: str) -> str | None:
    """One line of stdin (None at end of input), read in a daemon thread.

    A daemon thread, not `asyncio.to_thread`: the default executor is joined when the
    loop closes, so a session ended by Ctrl-C would hang until the user pressed Enter.
    """
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def deliver(text: str) -> None:
        if not line.done():
            line.set_result(text)

    def read_one() -> None:
        text = sys.stdin.readline()
        loop.call_soon_threadsafe(deliver, text)

    if sys.stdin.isatty():
        print(prompt, end="", flush=True)
    threading.Thread(target=read_one, daemon=True).start()
    text = await line
    return text.rstrip("\n") if text else None
