"""D-Bus connections for AT-SPI: the session bus, the accessibility bus, and per-app peers.

Each GTK/Qt app offers a peer-to-peer socket (`GetApplicationBusAddress`); calls there
cost about 104 µs against 157 µs through the bus (SCREEN-NOTES.md), so reads use it.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.aio.message_bus import _MessageWriter
from dbus_fast.aio.message_reader import build_message_reader

from deskloop.screen.errors import ScreenUnavailableError

# Past about 1,000 pipelined requests the dbus-fast writer failed on a full socket
# (SCREEN-NOTES.md); 128 in flight keeps the pipe full without that.
MAX_IN_FLIGHT = 128
CALL_TIMEOUT_S = 5.0

A11Y_BUS_NAME = "org.a11y.Bus"
A11Y_BUS_PATH = "/org/a11y/bus"
PROPERTIES = "org.freedesktop.DBus.Properties"


class DBusCallError(Exception):
    """An error reply to one call (a gone object, a missing interface)."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name


class PeerBus(MessageBus):
    """A dbus-fast connection to an app's own socket: authenticates but sends no `Hello`.

    A peer is not a bus daemon and has no `Hello` method; dbus-fast's `connect` always
    sends one, so this mirrors its setup without it.
    """

    async def connect(self) -> PeerBus:
        last_error: Exception | None = None
        for transport, options in self._bus_address:
            sock, stream, address = self._create_socket_for_transport(transport, options)
            sock.setblocking(False)
            try:
                await self._loop.sock_connect(sock, address)
            except OSError as exc:
                stream.close()
                sock.close()
                last_error = exc
                continue
            self._sock, self._stream, self._fd = sock, stream, sock.fileno()
            self._writer = _MessageWriter(self)
            break
        else:
            raise last_error or OSError("no address to connect to")
        await self._authenticate()
        # The writer sends only once a unique name is known; a peer gives none.
        self.unique_name = ":peer"
        expect_remote_close(self)
        self._loop.add_reader(
            self._fd,
            build_message_reader(
                self._sock, self._process_message, self._finalize, self._negotiate_unix_fd
            ),
        )
        return self


class Caller:
    """Method calls on one connection, pipelined, with a bound on how many are in flight.

    Requests made in one event-loop turn are marshalled together and written with one
    socket write (one `send` per message cost about 21 µs each, a fifth of a window read);
    replies resolve plain futures through dbus-fast's reply table, with no task per call.
    This reaches into dbus-fast internals (`_method_return_handlers`, `_writer`), pinned by
    the desktop tests.
    """

    def __init__(self, bus: MessageBus, destination: str | None) -> None:
        self.bus = bus
        self.destination = destination
        self._in_flight = 0
        self._waiting: deque[tuple[Message, asyncio.Future[list[Any]]]] = deque()
        self._flush_scheduled = False

    def request(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        destination: str | None = None,
    ) -> asyncio.Future[list[Any]]:
        message = Message(
            destination=destination or self.destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append((message, future))
        self._schedule_flush(loop)
        return future

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._flush_scheduled and self._waiting and self._in_flight < MAX_IN_FLIGHT:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        writer = self.bus._writer
        if writer is None or self.bus._disconnected:
            error = DBusCallError("Disconnected", "the connection is closed")
            while self._waiting:
                _, future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(error)
            return
        batch = bytearray()
        while self._waiting and self._in_flight < MAX_IN_FLIGHT:
            message, future = self._waiting.popleft()
            message.serial = self.bus.next_serial()
            self.bus._method_return_handlers[message.serial] = self._reply_handler(future)
            self._in_flight += 1
            batch += message._marshall(False)
        if batch:
            writer.messages.append((batch, None, None))
            writer.schedule_write()

    def _reply_handler(
        self, future: asyncio.Future[list[Any]]
    ) -> Callable[[Message | None, Exception | None], None]:
        def on_reply(reply: Message | None, error: Exception | None) -> None:
            self._in_flight -= 1
            if self._waiting and not future.get_loop().is_closed():
                self._schedule_flush(future.get_loop())
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            elif reply is None:
                future.set_exception(DBusCallError("NoReply", "the connection closed"))
            elif reply.message_type == MessageType.ERROR:
                text = reply.body[0] if reply.body else ""
                future.set_exception(DBusCallError(reply.error_name or "error", str(text)))
            else:
                future.set_result(list(reply.body))

        return on_reply

    async def call(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        destination: str | None = None,
    ) -> list[Any]:
        future = self.request(path, interface, member, signature, body, destination)
        async with asyncio.timeout(CALL_TIMEOUT_S):
            return await future

    async def get_property(self, path: str, interface: str, name: str) -> Any:
        [variant] = await self.call(path, PROPERTIES, "Get", "ss", (interface, name))
        return variant.value

    async def get_property_at(self, destination: str, path: str, interface: str, name: str) -> Any:
        [variant] = await self.call(
            path, PROPERTIES, "Get", "ss", (interface, name), destination=destination
        )
        return variant.value

    async def gather(self, calls: Iterable[Awaitable[Any]]) -> list[Any]:
        """Wait for many pipelined requests; a failed one gives its exception in its place."""
        async with asyncio.timeout(CALL_TIMEOUT_S):
            return list(await asyncio.gather(*calls, return_exceptions=True))

    def close(self) -> None:
        self.bus.disconnect()


def expect_remote_close(bus: MessageBus) -> MessageBus:
    """An app that quits closes its socket; the pending calls fail on their own, so the
    bus's disconnect error needs no other reader (else asyncio logs it as never retrieved)."""

    def retrieve(future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()

    bus._disconnect_future.add_done_callback(retrieve)
    return bus


def session_bus_address() -> str:
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if not address:
        raise ScreenUnavailableError(
            "no session bus: DBUS_SESSION_BUS_ADDRESS is not set. Run deskloop inside your "
            "desktop session, or start one with `dbus-run-session -- deskloop …`"
        )
    return address


async def _connect_bus(address: str, failure: str) -> MessageBus:
    """A bus connection; `failure` (with {address} and {error}) says what went wrong."""
    try:
        return expect_remote_close(await MessageBus(bus_address=address).connect())
    except (OSError, ValueError) as exc:
        raise ScreenUnavailableError(failure.format(address=address, error=exc)) from exc


async def connect_session_bus() -> MessageBus:
    return await _connect_bus(
        session_bus_address(),
        "cannot reach the session bus at {address}: {error}. Check DBUS_SESSION_BUS_ADDRESS",
    )


async def accessibility_bus_address(session: MessageBus) -> str:
    caller = Caller(session, A11Y_BUS_NAME)
    try:
        [address] = await caller.call(A11Y_BUS_PATH, A11Y_BUS_NAME, "GetAddress")
    except (DBusCallError, TimeoutError) as exc:
        raise ScreenUnavailableError(
            f"no accessibility bus ({exc}). Install at-spi2-core "
            "(`apt-get install at-spi2-core`) and log in to a desktop session again"
        ) from exc
    return str(address)


# MCP hosts start stdio servers with a scrubbed environment (the MCP SDKs keep HOME, PATH,
# USER and a few more), so this is the fix to name when no bus can be found at all.
HOST_CONFIG_FIX = (
    "run deskloop inside your desktop session, or set DISPLAY (e.g. DISPLAY=:0). Started by "
    'an MCP host, put "env": {"DISPLAY": ":0"} in deskloop\'s server entry of the host\'s '
    "config (your display: `echo $DISPLAY` in a desktop terminal), or DBUS_SESSION_BUS_ADDRESS "
    "with that terminal's value"
)


def root_window_bus_address() -> str | None:
    """The `AT_SPI_BUS` property of the X root window, set by at-spi-bus-launcher (None: none)."""
    if not os.environ.get("DISPLAY"):
        return None
    from deskloop.screen.backends.x11 import X11Display

    try:
        display = X11Display()
    except ScreenUnavailableError:
        return None
    try:
        return display.root_property("AT_SPI_BUS")
    finally:
        display.close()


@dataclass
class BusConnections:
    """The accessibility bus, and the session bus when there is one (it holds a11y Status)."""

    a11y: MessageBus
    session: MessageBus | None
    found_by: str  # which way the accessibility bus was found, for doctor


async def connect_buses() -> BusConnections:
    """Find the accessibility bus the way libatspi does: AT_SPI_BUS_ADDRESS, then the
    AT_SPI_BUS property on the X root window, then org.a11y.Bus on the session bus."""
    failure = "cannot connect to the accessibility bus at {address}: {error}"
    session: MessageBus | None = None
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        try:
            session = await connect_session_bus()
        except ScreenUnavailableError:
            session = None
    address = os.environ.get("AT_SPI_BUS_ADDRESS", "")
    found_by = "AT_SPI_BUS_ADDRESS"
    if not address:
        from_root: str | None = await asyncio.to_thread(root_window_bus_address)
        address, found_by = from_root or "", "AT_SPI_BUS"
    if not address:
        if session is None:
            display = os.environ.get("DISPLAY")
            where = (
                f"DISPLAY is {display} but its root window has no AT_SPI_BUS property "
                "(no at-spi bus launcher runs there)"
                if display
                else "neither DISPLAY nor DBUS_SESSION_BUS_ADDRESS is set"
            )
            raise ScreenUnavailableError(f"no desktop to reach: {where}. To fix it, {HOST_CONFIG_FIX}")
        address, found_by = await accessibility_bus_address(session), "the session bus"
    try:
        a11y = await _connect_bus(address, failure)
    except ScreenUnavailableError:
        if session is not None:
            session.disconnect()
        raise
    return BusConnections(a11y, session, found_by)


async def connect_accessibility_bus(session: MessageBus) -> MessageBus:
    return await _connect_bus(
        await accessibility_bus_address(session),
        "cannot connect to the accessibility bus at {address}: {error}",
    )


async def connect_peer(address: str) -> PeerBus:
    return await PeerBus(bus_address=address).connect()
