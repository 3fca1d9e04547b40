"""The web UI's live sessions: each runs in its own task with its own event buffer and questions.

Events are kept per session id, numbered from 1, so a page (or a second tab on the same
session) can read from any point and a reconnecting EventSource resumes where it stopped;
nothing published for one session reaches another's page. A held call shows as the
loop's `approval_needed` step and waits on a future that the page's answer resolves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from deskloop.agent.commands import PromptCounter, prompt_counter
from deskloop.agent.loop import AgentSession
from deskloop.agent.session import SessionOptions, open_session, release_embedded_server
from deskloop.agent.steps import ApprovalNeeded, Step, TurnStarted
from deskloop.errors import DeskloopError
from deskloop.tools import Answer, PermissionRequest
from deskloop.ui.chat_events import Event, step_event

OpenSession = Callable[[SessionOptions], AbstractAsyncContextManager[AgentSession]]
# How long closing the UI waits for a session to close its MCP servers and store.
CLOSE_TIMEOUT_S = 10.0


class ChatError(DeskloopError):
    """A chat request that cannot be done now; the message says why."""

    status_code = 409


class UnknownChat(ChatError):
    status_code = 404


class LiveSession:
    """One open session: its events so far, its inbox, its running turn, its held calls."""

    def __init__(self) -> None:
        self.session_id = 0
        self.title = ""
        self.events: list[Event] = []
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.turn: asyncio.Task[None] | None = None
        self.owner: asyncio.Task[None] | None = None
        # The policy asks one question at a time: the call it is about, and its answer.
        self.asked_call: str | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self.running = False
        self.closed = False
        # Messages stored before this process opened it: the page reads those from the store.
        self.messages_before = 0
        self._wakeup = asyncio.Event()

    def publish(self, event: Event) -> None:
        self.events.append({"seq": len(self.events) + 1, **event})
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def events_after(
        self, seq: int, keepalive_s: float | None = None
    ) -> AsyncIterator[Event | None]:
        """Every event numbered above `seq`, then each new one, until the session closes.

        With `keepalive_s`, None comes after that long without an event.
        """
        while True:
            wakeup = self._wakeup
            while seq < len(self.events):
                seq += 1
                yield self.events[seq - 1]
            if self.closed:
                return
            try:
                await asyncio.wait_for(wakeup.wait(), keepalive_s)
            except TimeoutError:
                yield None

    def publish_step(self, step: Step) -> None:
        if isinstance(step, ApprovalNeeded):
            self.asked_call = step.call.id
        self.publish(step_event(step))

    async def ask(self, request: PermissionRequest) -> Answer:
        """The policy's asker: wait for the page's answer to the `approval_needed` it shows.

        The dispatcher queues that step just before calling this, and the loop yields it
        once this waits, so the future exists before the page can answer.
        """
        self._answer = asyncio.get_running_loop().create_future()
        try:
            answer = await self._answer
        except asyncio.CancelledError:
            self._answered("withdrawn")
            raise
        finally:
            self._answer = None
        self._answered(answer.value)
        return answer

    def _answered(self, answer: str) -> None:
        self.publish({"event": "approval_answered", "id": self.asked_call, "answer": answer})
        self.asked_call = None

    def answer(self, call_id: str, answer: str) -> None:
        """The person's answer to the held call `call_id`."""
        future = self._answer
        if future is None or future.done() or call_id != self.asked_call:
            raise ChatError(f"nothing is waiting for an answer about {call_id!r}; it was answered")
        try:
            future.set_result(Answer(answer))
        except ValueError:
            choices = ", ".join(a.value for a in Answer)
            raise ChatError(f"answer must be one of {choices}, not {answer!r}") from None

    def stop(self) -> bool:
        """Stop the running turn; False when none runs."""
        if self.turn is None or self.turn.done():
            return False
        self.turn.cancel()
        return True

    def summary(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "title": self.title,
            "running": self.running,
            "waiting_for": [self.asked_call] if self._answer is not None else [],
        }


class ChatSessions:
    """Every live session of this UI process, keyed by session id."""

    def __init__(self, opener: OpenSession = open_session) -> None:
        self._open_session = opener
        self.live: dict[int, LiveSession] = {}
        # Sessions open one at a time: the first may start the embedded server for all.
        self._opening = asyncio.Lock()

    def get(self, session_id: int) -> LiveSession:
        live = self.live.get(session_id)
        if live is None:
            raise UnknownChat(f"session {session_id} is not open here; send a message to resume it")
        return live

    async def start(self, text: str) -> LiveSession:
        """A new session, already working on `text`."""
        live = await self._open(SessionOptions(title=text, task=text))
        self.send(live.session_id, text)
        return live

    async def resume(self, session_id: int) -> LiveSession:
        """The live session, or the stored one reopened."""
        if session_id in self.live:
            return self.live[session_id]
        return await self._open(SessionOptions(resume=session_id))

    def send(self, session_id: int, text: str) -> None:
        live = self.get(session_id)
        if not text.strip():
            raise ChatError("the message is empty")
        if live.running:
            raise ChatError("the agent is still working on the last message; stop it first")
        live.running = True  # at once, so a second click cannot queue a second turn
        live.inbox.put_nowait(text)

    def close(self, session_id: int) -> None:
        live = self.get(session_id)
        live.stop()
        live.inbox.put_nowait(None)

    async def close_all(self) -> None:
        owners = [live.owner for live in self.live.values() if live.owner is not None]
        for session_id in list(self.live):
            self.close(session_id)
        if owners:
            _, pending = await asyncio.wait(owners, timeout=CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _open(self, options: SessionOptions) -> LiveSession:
        live = LiveSession()
        options.asker = live.ask
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        live.owner = asyncio.create_task(self._own(live, options, opened))
        await opened  # raises what opening raised: a bad endpoint, an unknown session
        return live

    async def _own(
        self, live: LiveSession, options: SessionOptions, opened: asyncio.Future[None]
    ) -> None:
        """Owns the session's context from open to close, so both happen in one task."""
        try:
            async with AsyncExitStack() as stack:
                async with self._opening:
                    agent = await stack.enter_async_context(self._open_session(options))
                live.session_id = agent.session_id
                live.title = options.title or agent.store.session(agent.session_id).title
                live.messages_before = len(agent.store.messages(agent.session_id))
                self.live[live.session_id] = live
                opened.set_result(None)
                for step in agent.take_notices():
                    live.publish_step(step)
                await self._serve(live, agent)  # each run's end is stored as it ends
        except Exception as exc:
            if not opened.done():
                opened.set_exception(exc)
                return
            live.publish({"event": "error", "message": f"the session failed: {exc}"})
        finally:
            if not opened.done():
                opened.set_exception(ChatError("the UI closed while the session was opening"))
            live.closed = True
            live.running = False
            if self.live.get(live.session_id) is live:
                del self.live[live.session_id]
            if not self.live and not self._opening.locked():
                release_embedded_server()  # the resident server may stop once idle
            live.publish({"event": "session_closed"})

    async def _serve(self, live: LiveSession, agent: AgentSession) -> None:
        """Run each message of the inbox as a turn, until the session is closed."""
        while True:
            text = await live.inbox.get()
            if text is None:
                return
            live.running = True
            live.publish({"event": "busy", "running": True})
            live.turn = asyncio.ensure_future(
                _publish_steps(live, agent.send(text), prompt_counter(agent))
            )
            try:
                await live.turn
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                live.publish({"event": "turn_stopped"})
            except Exception as exc:
                live.publish({"event": "error", "message": f"the turn failed: {exc}"})
            finally:
                live.turn = None
                live.running = False
                live.publish({"event": "busy", "running": False})


async def _publish_steps(
    live: LiveSession, steps: AsyncIterator[Step], count_prompt: PromptCounter | None = None
) -> None:
    """The steps to the page; at each turn's start, the prompt's size too, as the terminal's
    status line says it ("waiting for the model (3154 prompt tokens)")."""
    counting: asyncio.Task[None] | None = None

    async def count(turn: int, counter: PromptCounter) -> None:
        tokens = await counter()
        if tokens is not None:
            live.publish({"event": "prompt_size", "turn": turn, "tokens": tokens})

    try:
        async for step in steps:
            live.publish_step(step)
            if isinstance(step, TurnStarted) and count_prompt is not None:
                counting = asyncio.ensure_future(count(step.turn, count_prompt))
    finally:
        if counting is not None:
            counting.cancel()
