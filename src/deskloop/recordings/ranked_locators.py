"""Ranked locators for a step's element, and what makes two descriptions the same element.

Best first: a toolkit's stable id, role and name, the named ancestors up to the window
(its title's stable part only), the index among siblings, and the box last. Names that
are times or counts are never used.
"""

from __future__ import annotations

from dataclasses import replace

from deskloop.recordings.naming import is_volatile_name, quoted, stable_title
from deskloop.recordings.recording import Locator, PathPart, Step
from deskloop.screen.recording_events import ElementFacts


def identity(facts: ElementFacts) -> tuple[str, str, str, tuple[tuple[str, str], ...], int]:
    """What makes two descriptions the same element: the window's title left out (it may
    change with the very step, as gtk3-demo's does when a row is selected)."""
    path = tuple(
        (role, "" if number == 0 else name) for number, (role, name) in enumerate(facts.path)
    )
    return facts.app, facts.role, facts.name, path, facts.index


def locators_for(facts: ElementFacts) -> tuple[Locator, ...]:
    """Best first: stable id, role + name, named-ancestor path, index, bounds."""
    found: list[Locator] = []
    name = facts.name if facts.name and not is_volatile_name(facts.name) else ""
    if facts.stable_id:
        found.append(Locator("stable_id", role=facts.role, stable_id=facts.stable_id))
    if name:
        found.append(Locator("role_name", role=facts.role, name=name))
    parts: list[PathPart] = []
    for number, (role, part_name) in enumerate(facts.path):
        kept = stable_title(part_name, facts.app) if number == 0 else part_name
        if kept and not is_volatile_name(kept):
            parts.append(PathPart(role, kept))
    if parts and name:
        found.append(Locator("path", role=facts.role, name=name, path=tuple(parts)))
    if facts.index >= 0:
        found.append(Locator("index", role=facts.role, path=tuple(parts), index=facts.index))
    if facts.box is not None and facts.window_box is not None:
        box = facts.box
        origin = facts.window_box
        found.append(
            Locator(
                "bounds",
                role=facts.role,
                box=(box.x - origin.x, box.y - origin.y, box.width, box.height),
            )
        )
    return tuple(found)


def without_titles(step: Step, changing: set[str]) -> Step:
    """The step with a changing window title replaced by its app, in words and locators."""
    if step.window not in changing:
        return step
    locators = []
    for locator in step.locators:
        if locator.path and locator.path[0].name in changing:
            locator = replace(locator, path=locator.path[1:])
            if locator.kind == "path" and not locator.path:
                continue  # the window was its only named ancestor
        locators.append(locator)
    intent = step.intent.replace(f" in window {quoted(step.window)}", f" in {step.app}")
    return replace(step, window="", locators=tuple(locators), intent=intent)
