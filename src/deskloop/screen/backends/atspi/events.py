"""Linux's event source for recording: AT-SPI events from the accessibility bus, and the
pointer and keys from X (RECORD), as platform-neutral `RecordedEvent`s.

The element under the pointer is looked up as soon as a button press is heard, in this
process's event loop, never on the input path: the X server does not wait for RECORD
listeners, and the lookups are D-Bus calls the app answers between its own events.
Events are handed out in the order they were heard, however long each lookup took.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from dbus_fast import Message, MessageType

from deskloop.screen.backends.atspi import constants as c
from deskloop.screen.backends.atspi.backend import AtspiApp, AtspiBackend
from deskloop.screen.backends.atspi.connection import Caller, DBusCallError
from deskloop.screen.backends.atspi.describe import ElementDescriber
from deskloop.screen.backends.atspi.x_input import RawInput, XInputListener
from deskloop.screen.errors import ScreenError, ScreenUnavailableError
from deskloop.screen.recording_events import (
    ElementEvent,
    ElementEventKind,
    ElementFacts,
    KeyEvent,
    PointerEvent,
    RecordedEvent,
)
from deskloop.screen.tree import Box

REGISTRY_PATH = "/org/a11y/atspi/registry"
# The AT-SPI events a recording needs (an app emits only what some listener registered).
EVENTS = (
    "object:state-changed:checked",
    "object:state-changed:selected",
    "object:state-changed:focused",
    "object:text-changed:insert",
    "object:text-changed:delete",
    "object:selection-changed",
    "window:activate",
    "focus:",
)
EVENT_INTERFACES = (
    "org.a11y.atspi.Event.Object",
    "org.a11y.atspi.Event.Window",
    "org.a11y.atspi.Event.Focus",
)
STOP_WAIT_S = 3.0
MENU_ROLES = frozenset({"menu", "menuitem", "menubar"})
MENU_TRIES = 20  # reads of an opening menu's items, MENU_RETRY_S apart
MENU_RETRY_S = 0.05


class AtspiEventSource:
    """Hears the person's input and the apps' accessibility events until `stop()`."""

    def __init__(self, backend: AtspiBackend, app: str | None = None, display: str = "") -> None:
        self.backend = backend
        self.app = app.lower() if app else None
        self.describer = ElementDescriber()
        self._outbox: asyncio.Queue[asyncio.Future[RecordedEvent | None] | None] = asyncio.Queue()
        self._pending: set[asyncio.Future[RecordedEvent | None]] = set()
        self._apps_by_bus: dict[str, AtspiApp] = {}
        self._loop = asyncio.get_running_loop()
        self._input = XInputListener(self._heard_input, display)
        self._stopped = False
        self._registered: list[str] = []
        # Items of menus open now, per app bus name: (box, path). A menu closes on the
        # button release that chooses an item, often before a lookup at press could reach
        # it, so the items' boxes are read while the menu opens.
        self._menu_items: dict[str, list[tuple[Box, str]]] = {}

    @classmethod
    async def connect(cls, app: str | None = None) -> AtspiEventSource:
        """Connect to the accessibility bus and X and start listening (to `app` only, when
        given); raises with the fix when either is missing."""
        backend = await AtspiBackend.connect()
        try:
            source = cls(backend, app)
            await source.start()
        except BaseException:
            await backend.close()
            raise
        return source

    async def start(self) -> None:
        await self._refresh_apps()
        bus = self.backend.a11y.bus
        bus.add_message_handler(self._heard_signal)
        for interface in EVENT_INTERFACES:
            await self._bus_call("AddMatch", f"type='signal',interface='{interface}'")
        for event in EVENTS:
            await self._register(event)
        # Let the apps learn of the new listeners before the person starts.
        await asyncio.sleep(0.1)
        self._input.start()

    async def _bus_call(self, member: str, rule: str) -> None:
        await self.backend.a11y.call(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            member,
            "s",
            (rule,),
            destination="org.freedesktop.DBus",
        )

    async def _register(self, event: str) -> None:
        """`RegisterEvent` takes (event, properties) since at-spi2-core 2.34, (event) before."""
        try:
            await self.backend.a11y.call(
                REGISTRY_PATH,
                c.REGISTRY,
                "RegisterEvent",
                "sas",
                (event, []),
                destination=c.REGISTRY,
            )
        except DBusCallError:
            try:
                await self.backend.a11y.call(
                    REGISTRY_PATH,
                    c.REGISTRY,
                    "RegisterEvent",
                    "s",
                    (event,),
                    destination=c.REGISTRY,
                )
            except DBusCallError as exc:
                raise ScreenUnavailableError(
                    f"the accessibility registry refused to send {event} events ({exc}): "
                    "restart the desktop session, or reinstall at-spi2-core"
                ) from exc
        self._registered.append(event)

    async def events(self) -> AsyncIterator[RecordedEvent]:
        secret_focus = False
        while True:
            item = await self._outbox.get()
            if item is None:
                return
            event = await item
            if isinstance(event, ElementEvent) and event.kind == "focused":
                secret_focus = event.element.secret
            if isinstance(event, KeyEvent) and secret_focus and event.text:
                # Typed into a password field: which key it was is withheld too.
                event = KeyEvent("", event.modifiers, event.time, "", secret=True)
            if event is not None:
                yield event

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await asyncio.to_thread(self._input.stop)
        with contextlib.suppress(Exception):
            self.backend.a11y.bus.remove_message_handler(self._heard_signal)
        for event in self._registered:
            with contextlib.suppress(DBusCallError, TimeoutError):
                await self.backend.a11y.call(
                    REGISTRY_PATH,
                    c.REGISTRY,
                    "DeregisterEvent",
                    "s",
                    (event,),
                    destination=c.REGISTRY,
                )
        if self._pending:
            await asyncio.wait(self._pending, timeout=STOP_WAIT_S)
        self._outbox.put_nowait(None)
        await self.backend.close()

    @property
    def failure(self) -> str | None:
        """Why the input listener stopped on its own (None while it runs)."""
        return self._input.failure

    # Hearing -------------------------------------------------------------------------

    def _queue(self, work: asyncio.Future[RecordedEvent | None]) -> None:
        self._pending.add(work)
        work.add_done_callback(self._pending.discard)
        self._outbox.put_nowait(work)

    def _ready(self, event: RecordedEvent) -> None:
        done: asyncio.Future[RecordedEvent | None] = self._loop.create_future()
        done.set_result(event)
        self._outbox.put_nowait(done)

    def _heard_input(self, raw: RawInput) -> None:
        """Called in the X listener's thread: only hands over to the loop."""
        self._loop.call_soon_threadsafe(self._take_input, raw)

    def _take_input(self, raw: RawInput) -> None:
        if self._stopped:
            return
        if raw.kind == "key":
            self._ready(KeyEvent(raw.key, raw.modifiers, raw.time, raw.text))
        elif raw.kind == "release":
            self._ready(PointerEvent("release", raw.x, raw.y, raw.button, raw.time))
        else:
            self._queue(asyncio.ensure_future(self._press(raw)))

    async def _press(self, raw: RawInput) -> RecordedEvent | None:
        element: ElementFacts | None = None
        with contextlib.suppress(ScreenError, DBusCallError, TimeoutError, OSError):
            element = await self._element_at(raw.x, raw.y)
        return PointerEvent("press", raw.x, raw.y, raw.button, raw.time, element)

    def _heard_signal(self, message: Message) -> bool:
        if self._stopped or message.message_type != MessageType.SIGNAL:
            return False
        if message.interface not in EVENT_INTERFACES or not message.sender or not message.path:
            return False
        kind, detail = _event_kind(message.member or "", message.body)
        if kind is not None:
            now = time.monotonic()
            self._queue(
                asyncio.ensure_future(
                    self._describe_event(kind, message.sender, message.path, detail, now)
                )
            )
        return False

    async def _describe_event(
        self, kind: ElementEventKind, sender: str, path: str, detail: str, now: float
    ) -> RecordedEvent | None:
        try:
            app = await self._app_by_bus(sender)
            if app is None or not self._wanted(app):
                return None
            caller = await self.backend._caller_for(app)
            if kind == "selection_changed":
                path = await self.describer.selected_child(caller, path) or path
            element = await self.describer.describe(caller, app.name, app.pid, path, climb=False)
        except (DBusCallError, TimeoutError, OSError, ScreenError):
            return None  # the element went away before it could be read
        if element.role == "menu" and kind in ("selected", "focused"):
            task = asyncio.ensure_future(self._read_menu(app, caller, path))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        elif kind in ("focused", "window_activated") and element.role not in MENU_ROLES:
            self._menu_items.pop(app.bus_name, None)
        if element.secret:
            detail = ""
        return ElementEvent(kind, element, now, detail)

    async def _read_menu(self, app: AtspiApp, caller: Caller, path: str) -> RecordedEvent | None:
        """Remember where the items of a menu that opens are, once it is on screen."""
        for _ in range(MENU_TRIES):
            items = await self.describer.items_on_screen(caller, path)
            if items:
                known = self._menu_items.setdefault(app.bus_name, [])
                known[:] = [item for item in known if item[1] not in {p for _, p in items}] + items
                return None
            await asyncio.sleep(MENU_RETRY_S)
        return None

    def _menu_item_at(self, x: int, y: int) -> tuple[str, str] | None:
        """(app bus name, path) of the smallest remembered open-menu item containing (x, y)."""
        found: list[tuple[int, str, str]] = []
        for bus_name, items in self._menu_items.items():
            for box, path in items:
                if box.x <= x < box.x + box.width and box.y <= y < box.y + box.height:
                    found.append((box.width * box.height, bus_name, path))
        if not found:
            return None
        _, bus_name, path = min(found)
        return bus_name, path

    # Finding apps and elements -------------------------------------------------------

    async def _refresh_apps(self) -> None:
        apps = await self.backend.atspi_apps()
        self._apps_by_bus = {app.bus_name: app for app in apps}

    def _wanted(self, app: AtspiApp) -> bool:
        return self.app is None or self.app == app.name.lower() or self.app in app.name.lower()

    async def _app_by_bus(self, bus_name: str) -> AtspiApp | None:
        if bus_name not in self._apps_by_bus:
            await self._refresh_apps()
        return self._apps_by_bus.get(bus_name)

    async def _app_by_pid(self, pid: int) -> AtspiApp | None:
        app = next((a for a in self._apps_by_bus.values() if a.pid == pid), None)
        if app is None:
            await self._refresh_apps()
            app = next((a for a in self._apps_by_bus.values() if a.pid == pid), None)
        return app

    async def _element_at(self, x: int, y: int) -> ElementFacts | None:
        """The element under screen point (x, y): the app from the X window stack, then
        `GetAccessibleAtPoint` from the smallest showing top-level down."""
        in_menu = self._menu_item_at(x, y)
        if in_menu is not None:
            menu_app = await self._app_by_bus(in_menu[0])
            if menu_app is not None:
                caller = await self.backend._caller_for(menu_app)
                return await self.describer.describe(
                    caller, menu_app.name, menu_app.pid, in_menu[1], climb=False
                )
        pids = await asyncio.to_thread(self._pids_at, x, y)
        for pid in pids:
            app = await self._app_by_pid(pid)
            if app is None:
                continue
            if not self._wanted(app):
                return None
            caller = await self.backend._caller_for(app)
            path = await self.describer.deepest_at(caller, x, y)
            if path is not None:
                return await self.describer.describe(caller, app.name, app.pid, path, climb=True)
        return None

    def _pids_at(self, x: int, y: int) -> list[int]:
        """Processes whose top-level X windows contain the point, topmost first."""
        pids: list[int] = []
        for window in reversed(self.backend.x11.windows()):
            box = window.box
            inside = box.x <= x < box.x + box.width and box.y <= y < box.y + box.height
            if inside and window.pid not in pids:
                pids.append(window.pid)
        return pids


def _event_kind(member: str, body: list[Any]) -> tuple[ElementEventKind | None, str]:
    """Which neutral event an AT-SPI signal is, and its text (for text changes)."""
    minor = str(body[0]) if body else ""
    on = bool(body[1]) if len(body) > 1 else False
    if member == "StateChanged":
        if minor == "checked":
            return ("checked" if on else "unchecked"), ""
        if minor == "selected":
            return ("selected" if on else "unselected"), ""
        if minor == "focused" and on:
            return "focused", ""
        return None, ""
    if member == "TextChanged":
        value = body[3].value if len(body) > 3 and hasattr(body[3], "value") else ""
        kind: ElementEventKind = "text_inserted" if minor.startswith("insert") else "text_deleted"
        return kind, str(value)
    if member == "SelectionChanged":
        return "selection_changed", ""
    if member == "Activate":
        return "window_activated", ""
    if member == "Focus":
        return "focused", ""
    return None, ""
