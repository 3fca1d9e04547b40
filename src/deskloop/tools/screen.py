"""The screen tools: `ScreenSession` actions offered to the model, one Tool each.

One `ScreenSession` per agent session, created on the first screen call and kept in the
tool context, so element ids stay bound to the snapshot the model last saw. Every screen
tool's result carries what the screen shows, so each is marked untrusted.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

from deskloop.screen import (
    AppNotFoundError,
    ElementNotFoundError,
    ScreenError,
    ScreenSession,
    StaleElementError,
    default_backend,
)
from deskloop.screen.desktop_entries import find_installed, installed_apps
from deskloop.tools.contract import (
    BadToolArguments,
    ContentBlock,
    RiskClass,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFailed,
    ToolFamily,
    ToolOutput,
)

# No example id in what the model reads: a small model copies it (it clicked "e12", the
# example this description used to give).
ELEMENT_ID = {
    "type": "string",
    "pattern": "^e[0-9]{1,6}$",
    "description": "Element id from the latest observation.",
}
APP = {"type": "string", "description": "Application name as the observation shows it."}
INSTALLED_APP = {"type": "string", "description": "Installed application, by its name."}
PID = {"type": "integer", "description": "Process id of the application."}

ScreenAction = Callable[[ScreenSession, dict[str, Any]], Awaitable[ToolOutput]]


async def screen_session(context: ToolContext) -> ScreenSession:
    """This agent session's screen session, connected on first use and closed with it."""
    if context.screen is None:
        backend = await default_backend()
        context.screen = ScreenSession(backend, context.settings.agent.observation_budget)
        context.closers.append(backend.close)
    if context.settings.agent.target_named_window:
        context.screen.task = context.task
    context.screen.step = context.step
    return context.screen


def _screen_tool(
    name: str,
    description: str,
    properties: dict[str, Any],
    action: ScreenAction,
    *,
    required: tuple[str, ...] = (),
    risk: RiskClass = "act",
    tier: TimeoutTier = TimeoutTier.INTERNAL,
) -> Tool:
    async def run(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        try:
            # No desktop to reach is a failure the model (and the person) can read, too.
            session = await screen_session(context)
            return await action(session, tool_input)
        # A wrong or outdated id is the model's to fix; anything else the screen refused.
        except (StaleElementError, ElementNotFoundError, AppNotFoundError) as exc:
            raise BadToolArguments(str(exc)) from exc
        except ScreenError as exc:
            raise ToolFailed(str(exc)) from exc

    schema = {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    return Tool(name, description, schema, risk, tier, run, source="screen", untrusted=True)


async def _observe(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    return (await session.observe(app=given.get("app"), pid=given.get("pid"))).text


async def _find(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    return (await session.find_elements(given["query"], given.get("limit", 20))).text


async def _click(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    result = await session.click(
        given["id"], given.get("button", "left"), bool(given.get("double", False))
    )
    return result.text


async def _type(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    return (await session.type_text(given["text"], given.get("id"))).text


async def _set_value(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    return (await session.set_value(given["id"], given["value"])).text


async def _press(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    return (await session.press_keys(given["keys"])).text


async def _scroll(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    result = await session.scroll(
        given.get("direction", "down"), given.get("amount", 3), given.get("id")
    )
    return result.text


async def _focus(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    return (await session.focus_window(app=given.get("app"), pid=given.get("pid"))).text


async def _open(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    command = given.get("command")
    if given.get("app"):
        apps = installed_apps()
        entry = find_installed(given["app"], apps)
        if entry is None:
            names = ", ".join(app.name for app in apps[:30]) or "none found"
            raise BadToolArguments(
                f"no installed application named {given['app']!r}; installed: {names}"
            )
        command = shlex.join(entry.command)
    if not command:
        raise BadToolArguments("open_app needs app (an installed application) or command")
    return (await session.open_app(command, given.get("timeout_s", 20.0))).text


async def _wait(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    result = await session.wait_for(
        given.get("text"), given.get("id"), given.get("timeout_s", 5.0), bool(given.get("gone"))
    )
    return result.text


async def _screenshot(session: ScreenSession, given: dict[str, Any]) -> ToolOutput:
    result, shot = await session.capture_screenshot(bool(given.get("window", True)))
    image: ContentBlock = {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(shot.png).decode("ascii"),
        },
    }
    return [{"type": "text", "text": result.text}, image]


def screen_tools(context: ToolContext | None = None) -> list[Tool]:
    """The screen tools; they need nothing from the context until they run."""
    return [
        _screen_tool(
            "observe",
            "Read a window as one line per element (id, role, name, position). With no "
            "arguments, the window you work on (or the focused one at first).",
            {"app": APP, "pid": PID},
            _observe,
            risk="read",
        ),
        _screen_tool(
            "find_elements",
            "Search the last observation for elements whose role, name or text match every "
            "word of the query; for what did not fit in the observation.",
            {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            _find,
            required=("query",),
            risk="read",
        ),
        _screen_tool(
            "click",
            "Click an element by id. Returns what changed in the window.",
            {
                "id": ELEMENT_ID,
                "button": {"type": "string", "enum": ["left", "right", "middle"]},
                "double": {"type": "boolean"},
            },
            _click,
            required=("id",),
        ),
        _screen_tool(
            "type_text",
            "Type text into an element by id, or into whatever has the focus.",
            {"text": {"type": "string"}, "id": ELEMENT_ID},
            _type,
            required=("text",),
        ),
        _screen_tool(
            "set_value",
            "Replace an element's whole text, or set a slider or spin button to a number.",
            {"id": ELEMENT_ID, "value": {"type": "string"}},
            _set_value,
            required=("id", "value"),
        ),
        _screen_tool(
            "press_keys",
            "Press key combinations in order into the focused window, e.g. 'ctrl+s' or "
            "'ctrl+a Delete'.",
            {"keys": {"type": "string"}},
            _press,
            required=("keys",),
        ),
        _screen_tool(
            "scroll",
            "Scroll with the wheel over an element (or the window's centre).",
            {
                "direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
                "amount": {"type": "integer", "minimum": 1, "maximum": 50},
                "id": ELEMENT_ID,
            },
            _scroll,
        ),
        _screen_tool(
            "focus_window",
            "Bring an application's window to the front and observe it.",
            {"app": APP, "pid": PID},
            _focus,
        ),
        _screen_tool(
            "open_app",
            "Start an application, by its installed name or by command, and observe its window.",
            {
                "app": INSTALLED_APP,
                "command": {"type": "string"},
                "timeout_s": {"type": "number", "maximum": 120},
            },
            _open,
            # It runs any command line it is given, so it is asked about like a deletion.
            risk="destructive",
            tier=TimeoutTier.OTHER,
        ),
        _screen_tool(
            "wait_for",
            "Wait until text or an element appears in the window (or is gone, with gone).",
            {
                "text": {"type": "string"},
                "id": ELEMENT_ID,
                "timeout_s": {"type": "number", "maximum": 120},
                "gone": {"type": "boolean"},
            },
            _wait,
            risk="read",
            tier=TimeoutTier.OTHER,
        ),
        _screen_tool(
            "capture_screenshot",
            "A PNG of the window you work on (or the whole screen with window false). "
            "Costs far more tokens than observe: use it only when observe is not enough.",
            {"window": {"type": "boolean"}},
            _screenshot,
            risk="read",
        ),
    ]


SCREEN_FAMILY = ToolFamily(
    name="screen",
    routing=(
        "Native applications: use the screen tools. Observe the window first, act on "
        "elements by their ids, and observe again when an id is reported stale. Take a "
        "screenshot only when the accessibility text is not enough."
    ),
    build=screen_tools,
)


def without_desktop(reason: str) -> ToolFamily:
    """The screen family of a session that has no desktop: no tools, and a line that says so."""
    return ToolFamily(
        name=SCREEN_FAMILY.name,
        routing=(
            f"There is no desktop here ({reason}), so there are no screen tools: do what "
            "needs no screen, and say so when a task needs one."
        ),
        build=lambda context: [],
    )
