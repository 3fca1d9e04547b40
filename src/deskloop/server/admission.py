"""A bounded queue in front of one engine: one request runs, a few wait, the rest get 429."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from deskloop.server.errors import Overloaded, RateLimited


class EngineQueue:
    def __init__(self, max_waiting: int, max_wait_s: float = 600.0):
        self._lock = asyncio.Lock()
        self._max_waiting = max_waiting
        self._max_wait_s = max_wait_s
        self._admitted = 0

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def waiting(self) -> int:
        return max(0, self._admitted - (1 if self._lock.locked() else 0))

    def admit(self) -> Ticket:
        """Reserve a place, or refuse at once with 429 when the queue is full."""
        if self._admitted >= self._max_waiting + 1:
            raise RateLimited(
                f"too many requests queued for this model ({self._max_waiting} waiting); "
                "retry shortly"
            )
        self._admitted += 1
        return Ticket(self)

    def _release(self) -> None:
        self._admitted -= 1


class Ticket:
    """A place in the queue; `turn()` waits for the engine, `close()` gives the place back.

    Work handed over with `hand_over` keeps both the engine and the place until it has
    finished, even when the request that started it is gone (a client that closed early).
    """

    def __init__(self, queue: EngineQueue):
        self._queue = queue
        self._closed = False
        self._work: concurrent.futures.Future[Any] | None = None

    def hand_over(self, work: concurrent.futures.Future[Any]) -> None:
        """The engine is this work's until it ends, whatever happens to the request."""
        self._work = work

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        queue = self._queue
        try:
            await asyncio.wait_for(queue._lock.acquire(), timeout=queue._max_wait_s)
        except TimeoutError as exc:
            raise Overloaded(
                f"the model was busy for {queue._max_wait_s:.0f} s; retry later"
            ) from exc
        try:
            yield
        finally:
            self._after_work(queue._lock.release)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._after_work(self._queue._release)

    def _after_work(self, action: Callable[[], None]) -> None:
        work = self._work
        if work is None or work.done():
            action()
            return
        loop = asyncio.get_running_loop()

        def finished(_: concurrent.futures.Future[Any]) -> None:
            # A closed loop means the server has stopped: nobody is left to let in.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(action)

        work.add_done_callback(finished)
