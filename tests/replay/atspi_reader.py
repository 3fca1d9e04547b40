"""An accessibility reader for the tests, independent of deskloop's: raw AT-SPI D-Bus calls.

The replay tests read results through this, never through deskloop's own reader or action
path, so a replay that only fooled deskloop would still fail. It walks an app's whole tree
(GetChildren), reading each node's role name, name, states and text.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

ACCESSIBLE = "org.a11y.atspi.Accessible"
REGISTRY = "org.a11y.atspi.Registry"
ROOT = "/org/a11y/atspi/accessible/root"
# AT-SPI's state numbers (atspi-constants.h).
STATE_BITS = {
    "checked": 4,
    "focused": 12,
    "pressed": 20,
    "selected": 23,
    "sensitive": 24,
    "showing": 25,
}


@dataclass(frozen=True)
class Node:
    bus_name: str
    path: str
    role: str
    name: str
    states: frozenset[str]
    text: str | None


class IndependentReader:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    @classmethod
    async def connect(cls, session_address: str) -> IndependentReader:
        session = await MessageBus(bus_address=session_address).connect()
        try:
            [address] = await _call(
                session, "org.a11y.Bus", "/org/a11y/bus", "org.a11y.Bus", "GetAddress"
            )
        finally:
            session.disconnect()
        return cls(await MessageBus(bus_address=address).connect())

    def close(self) -> None:
        self.bus.disconnect()

    async def app(self, name: str) -> tuple[str, str]:
        [children] = await _call(self.bus, REGISTRY, ROOT, ACCESSIBLE, "GetChildren")
        for bus_name, path in children:
            [found] = await _call(
                self.bus,
                bus_name,
                path,
                "org.freedesktop.DBus.Properties",
                "Get",
                "ss",
                [ACCESSIBLE, "Name"],
            )
            if str(found.value) == name:
                return bus_name, path
        raise AssertionError(f"no app {name!r} on the accessibility bus")

    async def nodes(self, app: str) -> list[Node]:
        bus_name, root = await self.app(app)
        found: list[Node] = []
        await self._walk(bus_name, root, found, 0)
        return found

    async def _walk(self, bus_name: str, path: str, found: list[Node], depth: int) -> None:
        if depth > 40:
            return
        [role] = await _call(self.bus, bus_name, path, ACCESSIBLE, "GetRoleName")
        [name] = await _call(
            self.bus,
            bus_name,
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            "ss",
            [ACCESSIBLE, "Name"],
        )
        [bits] = await _call(self.bus, bus_name, path, ACCESSIBLE, "GetState")
        word = int(bits[0]) | (int(bits[1]) << 32)
        states = frozenset(s for s, bit in STATE_BITS.items() if word & (1 << bit))
        text = None
        with contextlib.suppress(AssertionError):
            [text] = await _call(
                self.bus, bus_name, path, "org.a11y.atspi.Text", "GetText", "ii", [0, -1]
            )
        found.append(Node(bus_name, path, str(role), str(name.value), states, text))
        [children] = await _call(self.bus, bus_name, path, ACCESSIBLE, "GetChildren")
        for child_bus, child_path in children:
            await self._walk(child_bus, child_path, found, depth + 1)

    async def extents(self, node: Node) -> tuple[int, int, int, int]:
        """The node's box on screen: x, y, width, height."""
        [box] = await _call(
            self.bus, node.bus_name, node.path, "org.a11y.atspi.Component", "GetExtents", "u", [0]
        )
        return (int(box[0]), int(box[1]), int(box[2]), int(box[3]))

    async def do_action(self, node: Node) -> None:
        await _call(
            self.bus, node.bus_name, node.path, "org.a11y.atspi.Action", "DoAction", "i", [0]
        )

    async def set_text(self, node: Node, text: str) -> None:
        await _call(
            self.bus,
            node.bus_name,
            node.path,
            "org.a11y.atspi.EditableText",
            "SetTextContents",
            "s",
            [text],
        )


async def _call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
) -> list[Any]:
    reply = await bus.call(
        Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
    )
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        raise AssertionError(f"{member} on {path}: {reply.error_name} {reply.body}")
    return list(reply.body)
