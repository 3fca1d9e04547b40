"""The AT-SPI backend: reads windows with `WindowReader`, acts through AT-SPI, then XTest."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from PIL import Image

from deskloop.screen.backend import AppInfo, Target
from deskloop.screen.backends.atspi import constants as c
from deskloop.screen.backends.atspi.connection import (
    Caller,
    DBusCallError,
    connect_buses,
    connect_peer,
)
from deskloop.screen.backends.atspi.reader import (
    RawNode,
    ToolkitQuirks,
    WindowReader,
    cache_fingerprint,
    neutral_role,
    to_window_read,
)
from deskloop.screen.backends.atspi.toolkits import (
    accessibility_enabled,
    accessible_launch,
    enable_accessibility,
    no_tree_reason,
    not_registered_reason,
    process_name,
)
from deskloop.screen.backends.x11 import X11Display
from deskloop.screen.errors import ActionFailedError, AppNotFoundError, StaleElementError
from deskloop.screen.tree import Box, NodeData, WindowRead

DBUS = "org.freedesktop.DBus"
KNOWN_LIMIT = 20_000  # remembered roles per app before starting over


@dataclass(frozen=True)
class AtspiApp:
    """An app on the accessibility bus: its name, pid and unique bus name."""

    name: str
    pid: int
    bus_name: str


class AtspiBackend:
    """Linux: AT-SPI over D-Bus for reading and accessible actions, X11 for the rest."""

    name = "atspi"

    def __init__(self, session: MessageBus | None, a11y: MessageBus) -> None:
        self.session = session
        self.a11y = Caller(a11y, None)
        self.peers: dict[str, Caller] = {}
        self.apps_by_pid: dict[int, AtspiApp] = {}
        # Role and interfaces of objects outside the cache, per app bus name (see fetch_node).
        self.known: dict[str, dict[str, tuple[int, frozenset[str]]]] = {}
        self.quirks: dict[str, ToolkitQuirks] = {}
        self._x11: X11Display | None = None
        self.launched: list[subprocess.Popen[bytes]] = []

    @classmethod
    async def connect(cls, enable: bool = True) -> AtspiBackend:
        """Connect to the accessibility bus; `enable` turns on `org.a11y.Status.IsEnabled`
        when it is off, as a screen reader does, so Qt and Chromium apps show their trees."""
        buses = await connect_buses()
        session, a11y = buses.session, buses.a11y
        if enable and session is not None:
            try:
                if not await accessibility_enabled(session):
                    await enable_accessibility(session)
            except (DBusCallError, TimeoutError):
                pass  # a bus launcher without org.a11y.Status: GTK apps answer anyway
        return cls(session, a11y)

    @property
    def x11(self) -> X11Display:
        if self._x11 is None:
            self._x11 = X11Display()
        return self._x11

    async def close(self) -> None:
        for peer in self.peers.values():
            peer.close()
        self.peers.clear()
        self.a11y.close()
        if self.session is not None:
            self.session.disconnect()
        if self._x11 is not None:
            self._x11.close()

    # Apps ----------------------------------------------------------------------------

    async def atspi_apps(self) -> list[AtspiApp]:
        [children] = await self.a11y.call(
            c.ROOT_PATH, c.ACCESSIBLE, "GetChildren", destination=c.REGISTRY
        )
        bus_names = [str(ref[0]) for ref in children]
        names = await self.a11y.gather(
            self.a11y.get_property_at(bus_name, c.ROOT_PATH, c.ACCESSIBLE, "Name")
            for bus_name in bus_names
        )
        pids = await self.a11y.gather(
            self.a11y.call(
                "/org/freedesktop/DBus",
                DBUS,
                "GetConnectionUnixProcessID",
                "s",
                (bus_name,),
                destination=DBUS,
            )
            for bus_name in bus_names
        )
        apps = []
        for bus_name, name, pid in zip(bus_names, names, pids, strict=True):
            if isinstance(name, BaseException) or isinstance(pid, BaseException):
                continue  # an app that quit between the two calls
            apps.append(AtspiApp(str(name), int(pid[0]), bus_name))
        self.apps_by_pid = {app.pid: app for app in apps}
        return apps

    async def list_apps(self) -> list[AppInfo]:
        titles: dict[int, list[str]] = {}
        try:
            for window in self.x11.windows():
                if window.title:
                    titles.setdefault(window.pid, []).append(window.title)
        except Exception:  # no X display (Wayland): apps without titles
            pass
        return [
            AppInfo(app.name, app.pid, tuple(titles.get(app.pid, ())))
            for app in await self.atspi_apps()
        ]

    async def _caller_for(self, app: AtspiApp) -> Caller:
        """The app's peer-to-peer connection when it offers one, else the bus."""
        if app.bus_name in self.peers:
            return self.peers[app.bus_name]
        caller = Caller(self.a11y.bus, app.bus_name)
        try:
            [address] = await self.a11y.call(
                c.ROOT_PATH, c.APPLICATION, "GetApplicationBusAddress", destination=app.bus_name
            )
            if address:
                caller = Caller(await connect_peer(str(address)), None)
        except (DBusCallError, OSError, TimeoutError):
            pass  # GTK4 and Qt offer no peer socket: stay on the bus
        self.peers[app.bus_name] = caller
        await self._learn_toolkit(app, caller)
        return caller

    async def _learn_toolkit(self, app: AtspiApp, caller: Caller) -> None:
        """The app's toolkit and version, once: they pick the read path and the degraded fix."""
        quirks = self.quirks.setdefault(app.bus_name, ToolkitQuirks())
        try:
            name, version = await caller.gather(
                caller.request(c.ROOT_PATH, c.PROPERTIES, "Get", "ss", (c.APPLICATION, field))
                for field in ("ToolkitName", "Version")
            )
        except TimeoutError:
            return  # a busy app: the read that follows says so
        if not isinstance(name, BaseException):
            quirks.toolkit = str(name[0].value)
        if not isinstance(version, BaseException):
            quirks.version = str(version[0].value)

    async def find_app(self, target: Target) -> AtspiApp:
        if target.pid is not None and target.pid in self.apps_by_pid:
            return self.apps_by_pid[target.pid]  # dropped again below if the app is gone
        apps = await self.atspi_apps()
        listed = ", ".join(sorted({f"{app.name} (pid {app.pid})" for app in apps})) or "none"
        if target.pid is not None:
            matches = [app for app in apps if app.pid == target.pid]
        elif target.app is not None:
            wanted = target.app.lower()
            matches = [app for app in apps if app.name.lower() == wanted] or [
                app for app in apps if wanted in app.name.lower()
            ]
        else:
            matches = await self._focused_apps(apps)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise AppNotFoundError(
                f"no application matches {target.describe()} in the accessibility tree. "
                f"Apps visible now: {listed}. Use open_app to start it, or pick one of these"
            )
        raise AppNotFoundError(
            f"{len(matches)} applications match {target.describe()}: "
            + ", ".join(f"{app.name} (pid {app.pid})" for app in matches)
            + ". Pass a pid to choose one"
        )

    async def _focused_apps(self, apps: list[AtspiApp]) -> list[AtspiApp]:
        try:
            pid = self.x11.focused_pid()
        except Exception:  # no X display (Wayland): fall back to the ACTIVE state
            pid = 0
        by_pid = [app for app in apps if app.pid == pid]
        if by_pid:
            return by_pid[:1]
        active = []
        for app in apps:
            reader = self._reader(app, await self._caller_for(app))
            try:
                windows = await reader.top_windows(await reader.load_cache())
            except (DBusCallError, TimeoutError):
                continue
            if any(window.has(c.STATE_ACTIVE) for window in windows):
                active.append(app)
        if not active:
            raise AppNotFoundError(
                "no window has the focus: pass an app name or pid (deskloop observe --app NAME)"
            )
        return active[:1]

    # Reading -------------------------------------------------------------------------

    async def read(self, target: Target) -> WindowRead:
        try:
            app = await self.find_app(target)
        except AppNotFoundError:
            unregistered = self._window_off_the_bus(target)
            if unregistered is None:
                raise
            return unregistered
        reader = self._reader(app, await self._caller_for(app))
        try:
            windows = await reader.top_windows(await reader.load_cache())
        except (DBusCallError, TimeoutError, OSError) as exc:
            self.forget(app)
            raise AppNotFoundError(
                f"{app.name} (pid {app.pid}) stopped answering ({exc}): it may have quit. "
                "Observe again, or open_app to start it"
            ) from exc
        showing = [w for w in windows if w.has(c.STATE_SHOWING) or w.has(c.STATE_VISIBLE)]
        if not showing:
            empty = RawNode("", None, 0, 0, frozenset(), app.name, c.ROLE_FRAME, "", 0)
            return to_window_read(app.name, app.pid, empty, [], "the app has no open window")
        window = next((w for w in showing if w.has(c.STATE_ACTIVE)), showing[0])
        window, nodes = await reader.read_window(window)
        degraded = no_tree_reason(reader.quirks.toolkit) if len(nodes) <= 1 else None
        return to_window_read(app.name, app.pid, window, nodes, degraded, reader.fingerprint)

    def _window_off_the_bus(self, target: Target) -> WindowRead | None:
        """A degraded read of a window whose app never joined the accessibility bus."""
        if target.app is not None:
            return None
        try:
            pid = target.pid if target.pid is not None else self.x11.focused_pid()
            windows = [window for window in self.x11.windows() if window.pid == pid]
        except Exception:  # no X display (Wayland): nothing more to say than not found
            return None
        if not windows:
            return None
        window = windows[0]
        name = process_name(pid)
        return WindowRead(
            app=name,
            pid=pid,
            title=window.title or name,
            box=window.box,
            nodes=(NodeData("", None, "window", window.title, box=window.box),),
            degraded=not_registered_reason(name),
        )

    async def fingerprint(self, pid: int) -> int | None:
        """One `GetItems`: changes when any cached name, state or link changes."""
        _, caller = await self._app_by_pid(pid)
        try:
            [items] = await caller.call(c.CACHE_PATH, c.CACHE, "GetItems")
        except (DBusCallError, TimeoutError):
            return None
        return cache_fingerprint(items)

    def _reader(self, app: AtspiApp, caller: Caller) -> WindowReader:
        known = self.known.setdefault(app.bus_name, {})
        if len(known) > KNOWN_LIMIT:
            known.clear()
        quirks = self.quirks.setdefault(app.bus_name, ToolkitQuirks())
        return WindowReader(caller, app.name, app.pid, known, quirks)

    def forget(self, app: AtspiApp) -> None:
        self.known.pop(app.bus_name, None)
        self.quirks.pop(app.bus_name, None)
        self.apps_by_pid.pop(app.pid, None)
        peer = self.peers.pop(app.bus_name, None)
        if peer is not None and peer.destination is None:
            peer.close()

    async def _app_by_pid(self, pid: int) -> tuple[AtspiApp, Caller]:
        app = await self.find_app(Target(pid=pid))
        return app, await self._caller_for(app)

    async def identity(self, pid: int, ref: str) -> tuple[str, str]:
        app, caller = await self._app_by_pid(pid)
        try:
            node = await self._reader(app, caller).fetch_node(ref, None)
        except (DBusCallError, TimeoutError) as exc:
            raise StaleElementError(
                "stale id: the element no longer exists in the app: observe again"
            ) from exc
        return neutral_role(node), node.name

    # Accessible actions --------------------------------------------------------------

    async def press(self, pid: int, ref: str) -> bool:
        _, caller = await self._app_by_pid(pid)
        try:
            [done] = await caller.call(ref, c.ACTION, "DoAction", "i", (0,))
        except DBusCallError:
            return False
        return bool(done)

    async def focus_element(self, pid: int, ref: str) -> bool:
        _, caller = await self._app_by_pid(pid)
        try:
            [done] = await caller.call(ref, c.COMPONENT, "GrabFocus")
        except DBusCallError:
            return False
        return bool(done)

    async def insert_text(self, pid: int, ref: str, text: str) -> bool:
        _, caller = await self._app_by_pid(pid)
        try:
            caret = int(await caller.get_property(ref, c.TEXT, "CaretOffset"))
            if caret < 0:
                caret = int(await caller.get_property(ref, c.TEXT, "CharacterCount"))
            [done] = await caller.call(
                ref, c.EDITABLE_TEXT, "InsertText", "isi", (caret, text, len(text))
            )
        except DBusCallError:
            return False
        return bool(done)

    async def set_value(self, pid: int, ref: str, value: str) -> bool:
        _, caller = await self._app_by_pid(pid)
        try:
            [done] = await caller.call(ref, c.EDITABLE_TEXT, "SetTextContents", "s", (value,))
            return bool(done)
        except DBusCallError:
            pass
        try:
            number = float(value)
        except ValueError:
            return False
        try:
            await caller.call(
                ref, c.PROPERTIES, "Set", "ssv", (c.VALUE, "CurrentValue", Variant("d", number))
            )
        except DBusCallError:
            return False
        return True

    # Synthetic input and windows -----------------------------------------------------

    async def click_at(self, x: int, y: int, button: str, count: int) -> None:
        self.x11.click(x, y, button, count)

    async def type_keys(self, text: str) -> None:
        self.x11.type_text(text)

    async def press_keys(self, combo: str) -> None:
        self.x11.press_keys(combo)

    async def scroll_at(self, x: int, y: int, direction: str, amount: int) -> None:
        self.x11.scroll(x, y, direction, amount)

    async def focus_window(self, pid: int, title: str = "") -> None:
        windows = [window for window in self.x11.windows() if window.pid == pid]
        windows.sort(key=lambda window: window.title != title)
        if not windows:
            raise ActionFailedError(
                f"process {pid} has no mapped window to focus: open_app it, or observe to "
                "see which apps are running"
            )
        self.x11.focus_window(windows[0].xid)

    async def launch(self, command: list[str]) -> int:
        # Reap apps started earlier that have quit (they stay running otherwise: users' apps).
        self.launched = [process for process in self.launched if process.poll() is None]
        command, env = accessible_launch(command)
        try:
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise ActionFailedError(
                f"cannot start {command[0]!r}: {exc.strerror}. Give the program's command "
                "name as found on PATH (e.g. mousepad, gnome-calculator)"
            ) from exc
        self.launched.append(process)
        return process.pid

    async def capture(self, box: Box | None) -> Image.Image:
        area = box or self.x11.screen_box
        width, height, pixels = await asyncio.to_thread(self.x11.capture, area)
        return Image.frombytes("RGB", (width, height), pixels, "raw", "BGRX")
