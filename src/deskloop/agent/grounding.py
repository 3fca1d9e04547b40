"""Grounded calls: each turn, the screen tools' id and app parameters list what exists.

With a constrained engine a small model then cannot name an element that is not on the
screen, or an app that is not running: the id parameters become an `enum` of the latest
snapshot's on-window ids (find_elements searches the same snapshot), `observe` and
`focus_window` take the running apps, `open_app` the installed ones. A deskloop server
renders enums of more than 8 values as type and description only, so the prompt and its
prefix cache stay the same from turn to turn; other servers would render every value, so
the enums go only to a deskloop server with an in-process engine.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deskloop.agent.finish import FINISH_TOOL_NAME
from deskloop.screen import ScreenError, ScreenSession
from deskloop.screen.relevance import score, task_matches, task_terms
from deskloop.screen.tree import Snapshot

# /health's `engine` for servers that render the prompt themselves (server/local_service.py).
LOCAL_ENGINES = frozenset({"llamacpp", "mlx", "scripted"})

ELEMENT_PARAMETER = "id"
APP_PARAMETER = "app"
REF_PARAMETER = "ref"  # the browser tools' element, from the latest page snapshot
RUNNING_APP_TOOLS = frozenset({"observe", "focus_window"})
INSTALLED_APP_TOOLS = frozenset({"open_app"})


# Tools whose element must take text, or a text or number: their ids are narrowed to those.
TEXT_TOOLS = frozenset({"type_text"})
VALUE_TOOLS = frozenset({"set_value"})


@dataclass(frozen=True)
class Grounds:
    """What exists this turn: element ids on screen (all of them, those that take text,
    those that take a text or number), running apps, installed apps."""

    element_ids: tuple[str, ...] = ()
    running_apps: tuple[str, ...] = ()
    installed_apps: tuple[str, ...] = ()
    text_ids: tuple[str, ...] = ()
    value_ids: tuple[str, ...] = ()

    def ids_for(self, tool: str) -> tuple[str, ...]:
        """The ids `tool` may name: a text field for type_text (typing into a menu does
        nothing useful), a field or number for set_value; falls back to every id."""
        if tool in TEXT_TOOLS and self.text_ids:
            return self.text_ids
        if tool in VALUE_TOOLS and self.value_ids:
            return self.value_ids
        return self.element_ids


# Marks an enum of what exists now: a deskloop server never renders its values in the
# prompt (server/tool_schema.py), so the prompt stays the same however few there are.
GROUNDED_KEY = "x-grounded"


def grounded_enum(schema: dict[str, Any], values: Sequence[str]) -> dict[str, Any]:
    """`schema` as an `x-grounded` enum of `values`, keeping its description."""
    grounded: dict[str, Any] = {"type": "string", "enum": list(values), GROUNDED_KEY: True}
    if "description" in schema:
        grounded["description"] = schema["description"]
    return grounded


def ground_definitions(
    definitions: list[dict[str, Any]], grounds: Grounds, screen_tools: frozenset[str]
) -> list[dict[str, Any]]:
    """Tool definitions with the screen tools' id and app parameters as enums of `grounds`.

    A parameter with nothing to list (no observation yet) keeps its plain schema: an empty
    enum would forbid every call.
    """
    grounded = []
    for definition in definitions:
        name = definition.get("name", "")
        properties = definition.get("input_schema", {}).get("properties", {})
        choices: dict[str, Sequence[str]] = {}
        if name in screen_tools and ELEMENT_PARAMETER in properties and grounds.element_ids:
            choices[ELEMENT_PARAMETER] = grounds.ids_for(name)
        if APP_PARAMETER in properties:
            if name in RUNNING_APP_TOOLS and grounds.running_apps:
                choices[APP_PARAMETER] = grounds.running_apps
            elif name in INSTALLED_APP_TOOLS and grounds.installed_apps:
                choices[APP_PARAMETER] = grounds.installed_apps
        if not choices:
            grounded.append(definition)
            continue
        changed = copy.deepcopy(definition)
        for parameter, values in choices.items():
            schema = changed["input_schema"]["properties"][parameter]
            changed["input_schema"]["properties"][parameter] = grounded_enum(schema, values)
        grounded.append(changed)
    return grounded


# Optional parameters a small model fills with guesses: SmolLM2-135M, choosing the right
# check box, added "double": true or "button": "right" to half its clicks (bench tasks),
# and a double click ticks a box twice. Sessions where every turn is a call (the small-
# model setting, agent.tool_calls = required) get the screen tools without them.
LEAN_DROPS: dict[str, tuple[str, ...]] = {
    "click": ("button", "double"),
    "scroll": ("amount",),
    "observe": ("pid",),
    "focus_window": ("pid",),
    "wait_for": ("gone", "timeout_s"),
    "open_app": ("command", "timeout_s"),
}


# Left out of those sessions too: the first observation is already of the window the task
# names, and SmolLM2-135M answered "Open the tab named page 2" with open_app "GTK Demo" and
# "select the Assistant demo" with focus_window on the window it was in: one to three of
# the 14 first calls of bench tasks, depending on the prompt, went to these two tools.
# observe(app) still moves the session to another running app.
# scroll and wait_for too: Qwen2.5-Coder-0.5B scrolled where it was asked to select a radio
# button, and the two schemas are ~180 of a small model's first-prompt tokens (bench tasks).
LEAN_LEFT_OUT = frozenset({"open_app", "focus_window", "scroll", "wait_for"})


# Typing "into the focus" lands wherever the focus happens to be; a small model names the
# field instead (its id is grounded in the fields that take text).
LEAN_REQUIRED: dict[str, tuple[str, ...]] = {"type_text": ("id",)}


def lean_definitions(
    definitions: list[dict[str, Any]], screen_tools: frozenset[str]
) -> list[dict[str, Any]]:
    """The screen tools without LEAN_LEFT_OUT and the optional parameters in LEAN_DROPS,
    with the parameters in LEAN_REQUIRED required."""
    lean = []
    for definition in definitions:
        name = definition.get("name", "")
        if name in screen_tools and name in LEAN_LEFT_OUT:
            continue
        if name == FINISH_TOOL_NAME:
            lean.append(_short_summary(definition))
            continue
        schema = definition.get("input_schema", {})
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        drops = [p for p in LEAN_DROPS.get(name, ()) if p in properties and p not in required]
        needed = [p for p in LEAN_REQUIRED.get(name, ()) if p in properties and p not in required]
        if name not in screen_tools or not (drops or needed):
            lean.append(definition)
            continue
        changed = copy.deepcopy(definition)
        for parameter in drops:
            del changed["input_schema"]["properties"][parameter]
        if needed:
            # required first, in the order the grammar writes them
            changed["input_schema"]["required"] = [*needed, *required]
            properties = changed["input_schema"]["properties"]
            changed["input_schema"]["properties"] = {
                **{p: properties[p] for p in needed}, **properties
            }
        lean.append(changed)
    return lean


# finish's summary, capped: the grammar then closes it, where SmolLM2-135M otherwise wrote
# one phrase over and over until the runaway guard stopped the answer without a call.
SUMMARY_LIMIT = 160


def _short_summary(definition: dict[str, Any]) -> dict[str, Any]:
    properties = definition.get("input_schema", {}).get("properties", {})
    if "summary" not in properties:
        return definition
    changed = copy.deepcopy(definition)
    changed["input_schema"]["properties"]["summary"]["maxLength"] = SUMMARY_LIMIT
    return changed


def ground_refs(
    definitions: list[dict[str, Any]], refs: Sequence[str], browser_tools: frozenset[str]
) -> list[dict[str, Any]]:
    """The browser tools' ref parameters as an enum of the latest page snapshot's refs
    (deskloop.tools.browser.grounded_values); unchanged before there is a snapshot."""
    if not refs:
        return definitions
    grounded = []
    for definition in definitions:
        properties = definition.get("input_schema", {}).get("properties", {})
        if definition.get("name") not in browser_tools or REF_PARAMETER not in properties:
            grounded.append(definition)
            continue
        changed = copy.deepcopy(definition)
        schema = changed["input_schema"]["properties"][REF_PARAMETER]
        changed["input_schema"]["properties"][REF_PARAMETER] = grounded_enum(schema, refs)
        grounded.append(changed)
    return grounded


def server_grounds_enums(health: dict[str, Any] | None) -> bool:
    """Whether the endpoint is a deskloop server that keeps grounded enums out of the
    prompt and enforces them: its own engine renders the prompt, or (`--engine openai`)
    its upstream honours a constraint that forced calls go through (its /health)."""
    if health is None:
        return False
    upstream = health.get("upstream")
    through_upstream = isinstance(upstream, dict) and bool(upstream.get("forced_calls_through"))
    return health.get("engine") in LOCAL_ENGINES or through_upstream


async def screen_grounds(
    screen: ScreenSession | None, installed: Sequence[str], *, step: str = ""
) -> Grounds:
    """What exists now: the latest snapshot's ids, the running apps, the installed ones.

    With `step` (a small model's current step), the ids are those the step names, where
    it names any: SmolLM2-135M, told to "tick the unticked checkbutton", clicked the text
    entry beside it three times (bench tasks).
    """
    if screen is None:
        return Grounds(installed_apps=tuple(installed))
    try:
        running = tuple(sorted({app.name for app in await screen.backend.list_apps()}))
    except ScreenError:
        running = ()
    snapshot = screen.latest
    ids = screen.on_screen_ids()
    if snapshot is None:
        return Grounds(ids, running, tuple(installed))
    # A disabled element takes no click or text: naming one is never the right call.
    ids = tuple(i for i in ids if "disabled" not in snapshot.elements[i].states) or ids
    text = tuple(i for i in ids if "type" in snapshot.elements[i].actions)
    value = tuple(i for i in ids if {"type", "set_value"} & set(snapshot.elements[i].actions))
    named = _named_by(step, snapshot, ids) if step else ()
    if named:
        text = tuple(i for i in named if i in text) or text
        value = tuple(i for i in named if i in value) or value
        ids = named
    return Grounds(ids, running, tuple(installed), text, value)


def _named_by(step: str, snapshot: Snapshot, ids: Sequence[str]) -> tuple[str, ...]:
    """The ids of the elements `step` names best (by name, role and wanted state): for
    "tick the unticked checkbutton", the unticked ones, not every check box."""
    terms = task_terms(step, ignore=(snapshot.app, snapshot.title))
    matches = task_matches(terms, [snapshot.elements[i] for i in ids])
    if not matches:
        return ()
    scores = {i: score(snapshot.elements[i], terms) for i in matches}
    best = max(scores.values())
    return tuple(i for i in matches if scores[i] == best)
