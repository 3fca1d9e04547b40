"""Which tool families a session offers: all of them, or those the task's words call for.

A small model offered every family (about 35 tools) chose `search_files` for "select the
radio button named Page 2" eight times in a row (issue 17's trial: 1 of 10 tasks done
with every family, 5 of 10 with the screen family alone), and the schemas alone made its
first prompt 3,188 tokens. So with `agent.tool_routing = task` the task's words choose
the families, each with the reason the session header shows, and `more_tools` lets the
model ask for a family it was not given. The choice is made once, from the first message,
so the prompt and its prefix cache stay the same for the rest of the session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deskloop.tools.contract import BadToolArguments, TimeoutTier, Tool, ToolContext, ToolOutput

MORE_TOOLS_NAME = "more_tools"
SCREEN = "screen"

_WORD = re.compile(r"[a-z0-9][a-z0-9+'-]*")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _any_phrase(text: str, phrases: Iterable[str]) -> str | None:
    """Of `phrases`, the one that comes first in `text` as whole words, or None."""
    lowered = f" {' '.join(_WORD.findall(text.lower()))} "
    found = [(lowered.find(f" {p} "), -len(p), p) for p in phrases if f" {p} " in lowered]
    return min(found)[2] if found else None


# Words that name what a family serves; the first that matches is the reason given.
_SCREEN_WORDS = (
    "click", "double-click", "tick", "untick", "check box", "checkbox", "checkbutton",
    "radio", "radiobutton", "radio button", "toggle", "togglebutton", "button", "select",
    "press", "type", "write", "enter", "fill in", "field", "entry", "text area", "window",
    "app", "application", "menu", "tab", "dialog", "scroll", "switch", "slider",
    "spin button", "screen", "screenshot", "desktop", "focus", "set the", "choose", "row",
    "list", "what do you see", "on screen",
)
_FILES_WORDS = (
    "file", "files", "folder", "folders", "directory", "document", "documents", "pdf",
    "pdfs", "downloads", "download folder", "desktop folder", "invoice", "invoices",
    "spreadsheet", "photos",
)
_BROWSER_WORDS = (
    "website", "web page", "webpage", "web site", "browser", "chrome", "chromium", "brave",
    "firefox", "url", "link", "google", "search the web", "online",
)
# "page" and "tab" are also parts of native apps ("the tab named page 2 of the widget
# factory"): they call for the browser only when the task names no app.
_BROWSER_WEAK_WORDS = ("page", "tab", "site")
_URL = re.compile(r"https?://|www\.|\b[a-z0-9-]+\.(?:com|org|net|io|dev|app|de|fr|uk)\b")
_ROUTINES_WORDS = (
    "every day", "every morning", "every evening", "every night", "every week",
    "every monday", "every hour", "every", "daily", "weekly", "hourly", "remind", "reminder",
    "schedule", "scheduled", "routine", "routines", "tomorrow", "later", "in an hour",
    "each morning", "each day",
)
_AT_TIME = re.compile(r"\bat \d{1,2}(?::\d\d)?\s*(?:am|pm|h)?\b", re.IGNORECASE)
_STORE_WORDS: dict[str, tuple[str, ...]] = {
    "graph": ("remember", "who is", "who's", "what do you know", "know about", "contact",
              "relationship", "person"),
    "sql": ("history", "past sessions", "database", "how many times", "statistics",
            "remember"),
    "preferences": ("preference", "preferences", "my name", "call me", "language",
                    "voice", "speak to me"),
    "speech": ("read aloud", "say it", "speak", "out loud", "aloud"),
    "observer": ("observe me", "observer", "what i do", "my habits"),
    "browser_profile": ("bookmark", "bookmarks", "autofill", "browsing history",
                        "most visited", "addresses"),
    "permissions": ("permission", "permissions", "accessibility access"),
}


@dataclass(frozen=True)
class Routing:
    """The families a session offers, each with why, in the order of the family list."""

    families: tuple[str, ...]
    reasons: Mapping[str, str]
    everything: bool  # every family: no `more_tools`

    def describe(self) -> str:
        if self.everything:
            return "tools: every family (" + ", ".join(self.families) + ")"
        chosen = "; ".join(f"{name} ({self.reasons[name]})" for name in self.families)
        return f"tools for this task: {chosen}; others on request with {MORE_TOOLS_NAME}"


def _app_named(task: str, app_names: Iterable[str]) -> str | None:
    lowered = task.lower()
    words = _words(task)
    for app in app_names:
        name = app.lower().strip()
        if not name:
            continue
        if len(name) >= 4 and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lowered):
            return app
        significant = [w for w in _words(name) if len(w) >= 4 and w not in {"gtk+", "gtk3"}]
        if len(significant) >= 2 and all(w in words for w in significant):
            return app
    return None


def route_task(
    task: str,
    available: Sequence[str],
    *,
    app_names: Iterable[str] = (),
    mcp_servers: Mapping[str, str] | None = None,
) -> Routing:
    """The families (of `available`, in that order) and MCP servers the task calls for.

    `app_names`: installed and running applications; `mcp_servers`: each server's name
    and the words of its tools (names and descriptions). Nothing recognised: the screen.
    """
    reasons: dict[str, str] = {}
    app = _app_named(task, app_names)
    if app is not None:
        reasons[SCREEN] = f"the task names an app: {app}"
    elif (word := _any_phrase(task, _SCREEN_WORDS)) is not None:
        reasons[SCREEN] = f"the task says {word!r}"
    if (word := _any_phrase(task, _FILES_WORDS)) is not None:
        reasons["files"] = f"the task says {word!r}"
    if _URL.search(task.lower()):
        reasons["browser"] = "the task has a web address"
    elif (word := _any_phrase(task, _BROWSER_WORDS)) is not None:
        reasons["browser"] = f"the task says {word!r}"
    elif app is None and (word := _any_phrase(task, _BROWSER_WEAK_WORDS)) is not None:
        reasons["browser"] = f"the task says {word!r} and names no app"
    if (time_said := _AT_TIME.search(task)) is not None:
        reasons["routines"] = f"the task says {time_said.group(0)!r}"
    elif (word := _any_phrase(task, _ROUTINES_WORDS)) is not None:
        reasons["routines"] = f"the task says {word!r}"
    for family, phrases in _STORE_WORDS.items():
        if (word := _any_phrase(task, phrases)) is not None:
            reasons[family] = f"the task says {word!r}"
    task_words = {w for w in _words(task) if len(w) >= 4}
    for server, server_words in (mcp_servers or {}).items():
        shared = sorted(task_words & {w for w in _words(server_words) if len(w) >= 4})
        if server.lower() in _words(task) or shared:
            said = server if server.lower() in _words(task) else shared[0]
            reasons[f"mcp:{server}"] = f"the task says {said!r}"
    if not reasons and SCREEN in available:
        reasons[SCREEN] = "nothing else recognised: the screen"
    chosen = [name for name in available if name in reasons]
    chosen += [name for name in reasons if name.startswith("mcp:") and name not in chosen]
    return Routing(tuple(chosen), {name: reasons[name] for name in chosen}, everything=False)


def route_everything(available: Sequence[str]) -> Routing:
    return Routing(tuple(available), {name: "every family" for name in available}, True)


@dataclass
class ToolOffer:
    """What the model is offered this session: the routed families' tools, plus what
    `more_tools` added. Tools of no family (finish, more_tools) are always offered."""

    family_tools: Mapping[str, Sequence[str]]  # family (or "mcp:<server>") -> tool names
    routing: Routing
    added: list[str] = field(default_factory=list)

    def families(self) -> list[str]:
        return [*self.routing.families, *self.added]

    def not_offered_families(self) -> list[str]:
        offered = set(self.families())
        return [name for name in self.family_tools if name not in offered]

    def offers(self, tool_name: str) -> bool:
        for family, names in self.family_tools.items():
            if tool_name in names:
                return family in self.routing.families or family in self.added
        return True

    def family_of(self, tool_name: str) -> str | None:
        for family, names in self.family_tools.items():
            if tool_name in names:
                return family
        return None

    def add(self, family: str) -> list[str]:
        """Offer `family` from the next turn on; its tool names."""
        if family not in self.added and family not in self.routing.families:
            self.added.append(family)
        return list(self.family_tools.get(family, ()))


# What each family is for, in a few words, for more_tools' description.
FAMILY_BLURBS = {
    "screen": "apps on screen",
    "browser": "web pages",
    "followup": "ask the user",
    "routines": "schedules and reminders",
    "sql": "deskloop's own database",
    "files": "files and folders",
    "graph": "people and things remembered",
    "observer": "observer cards",
    "preferences": "the user's settings",
    "speech": "reading aloud",
    "browser_profile": "bookmarks and autofill",
    "permissions": "permissions",
}


def more_tools_tool(offer: ToolOffer) -> Tool:
    """`more_tools`: the model asks for a family the task's words did not call for."""
    choices = offer.not_offered_families()

    async def run(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        family = str(tool_input.get("family", ""))
        if family not in offer.family_tools:
            could = ", ".join(offer.not_offered_families()) or "none"
            raise BadToolArguments(f"no family {family!r}; these can be added: {could}")
        names = offer.add(family)
        return f"From your next turn you also have: {', '.join(names)}."

    described = ", ".join(
        f"{name} ({FAMILY_BLURBS.get(name, name.removeprefix('mcp:'))})" for name in choices
    )
    return Tool(
        name=MORE_TOOLS_NAME,
        description=f"Ask for tools you were not given: {described}.",
        input_schema={
            "type": "object",
            "properties": {"family": {"type": "string", "enum": choices}},
            "required": ["family"],
            "additionalProperties": False,
        },
        risk="read",
        timeout_tier=TimeoutTier.INTERNAL,
        run=run,
        source="native",
    )
