"""A task split into the steps a person would name, each with the kind of call it needs.

Small models lose the thread of "do X, then Y": SmolLM2-135M and Qwen2.5-Coder-0.5B did
the first half of every two-step task and then repeated it (issue 17's trial), and
clicked a text area three times where the task said to type. So for small models the
task goes one step at a time, and a step's verb narrows the calls offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

StepKind = Literal["type", "set", "point", "keys", "look", "any"]

_TYPE_VERBS = ("type", "write", "enter", "add", "fill", "input", "put", "paste")
# Verbs that replace a field's whole value (set_value) rather than type at the cursor.
_SET_VERBS = ("replace", "set", "change", "rename")
_POINT_VERBS = (
    "click", "double-click", "press", "select", "tick", "check", "untick", "uncheck",
    "clear", "open", "show", "switch", "toggle", "choose", "pick", "go", "close", "expand",
    "collapse", "activate", "enable", "disable", "turn",
)
_LOOK_VERBS = ("capture", "take", "screenshot", "look", "describe", "say", "tell", "read")
_OTHER_VERBS = ("save", "scroll", "find", "copy", "delete", "remove", "wait", "focus", "start")
VERBS = frozenset(_TYPE_VERBS + _SET_VERBS + _POINT_VERBS + _LOOK_VERBS + _OTHER_VERBS)
_LEAD_INS = ("first", "please", "now", "next", "finally", "also", "and", "then", "after that")

# Where a task breaks into steps: "then" in its forms, semicolons, and sentence ends.
_BREAKS = re.compile(
    r"\s*(?:;|,?\s+and then\s+|,\s*then\s+|\s+then\s+|\.\s+(?=[A-Z])|,\s*after that,?\s+)",
    re.IGNORECASE,
)
# "and" or a comma joins two steps only when a verb follows it.
_VERB_JOIN = re.compile(
    r"(?:,\s*and\s+|\s+and\s+|,\s+)(?=(?:" + "|".join(sorted(VERBS, key=len, reverse=True))
    + r")\b)",
    re.IGNORECASE,
)
_KEY_CHORD = re.compile(
    r"\b(?:ctrl|control|alt|shift|super|cmd)\s*\+\s*\w+|\bpress (?:the )?(?:enter|return|"
    r"escape|esc|tab|delete|backspace|space|f\d{1,2})\b(?: key)?",
    re.IGNORECASE,
)
_SCREENSHOT = re.compile(r"screenshot|what (?:do )?you see|on (?:the )?screen now", re.I)
_TYPING_TARGET = re.compile(r"\b(?:text|entry|field|words?|number|value)\b", re.I)


@dataclass(frozen=True)
class TaskStep:
    text: str
    kind: StepKind


def _first_verb(piece: str) -> str | None:
    words: list[str] = re.findall(r"[a-z-]+", piece.lower())
    while words and words[0] in _LEAD_INS:
        words.pop(0)
    if words and words[0] in VERBS:
        return words[0]
    return None


def _leading_verb(text: str) -> str | None:
    """The step's verb: its first word that is one, after a place ("In Mousepad, type")."""
    words: list[str] = re.findall(r"[a-z-]+", text.lower())
    for word in words:
        if word in VERBS:
            return word
    return None


def step_kind(text: str) -> StepKind:
    """Which calls the step needs, from its verb (and a key chord or a screenshot in it)."""
    if _SCREENSHOT.search(text):
        return "look"
    verb = _leading_verb(text)
    if _KEY_CHORD.search(text) and verb in ("press", "hit", None):
        return "keys"
    if verb in _TYPE_VERBS:
        return "type"
    if verb in _SET_VERBS:
        return "set"
    if verb == "clear" and _TYPING_TARGET.search(text) and not re.search(r"tick|check", text, re.I):
        return "set"
    if verb in _POINT_VERBS:
        return "point"
    if verb in _LOOK_VERBS:
        return "look"
    return "any"


def split_steps(task: str) -> list[TaskStep]:
    """The task's steps in order; a task with one verb phrase is one step."""
    text = task.strip().rstrip(".!?").strip()
    pieces: list[str] = []
    for part in _BREAKS.split(text):
        pieces.extend(p for p in _VERB_JOIN.split(part) if p.strip())
    steps: list[str] = []
    pending = ""  # a piece without a verb ("In the widget factory") joins the next one
    for piece in (p.strip(" ,.") for p in pieces):
        if not piece:
            continue
        if _first_verb(piece) is None:
            if steps and not pending and _ends_a_phrase(piece):
                steps[-1] = f"{steps[-1]} {piece}"
            else:
                pending = f"{pending}{piece}, "
            continue
        steps.append(f"{pending}{piece}")
        pending = ""
    if pending:
        if steps:
            steps[-1] = f"{steps[-1]} {pending.rstrip(', ')}"
        else:
            steps.append(pending.rstrip(", "))
    # Looking and saying what is seen are one step: the answer comes with the next call.
    merged: list[str] = []
    for step in steps:
        if merged and step_kind(step) == "look" and step_kind(merged[-1]) == "look":
            merged[-1] = f"{merged[-1]}, {step}"
        else:
            merged.append(step)
    return [TaskStep(step, step_kind(step)) for step in merged] or [TaskStep(task, "any")]


def _ends_a_phrase(piece: str) -> bool:
    """A trailing place ("in Mousepad") belongs to the step before it."""
    return bool(re.match(r"(?:in|on|of|at|into|from|inside)\b", piece, re.IGNORECASE))


# The call each step kind needs from a small model, forced through `tool_choice` so the
# tool list (and with it the server's prefix cache) stays the same from step to step;
# `finish` is forced once the last step is done. Steps of kind "any" choose freely.
STEP_TOOLS: dict[StepKind, frozenset[str]] = {
    "type": frozenset({"type_text"}),
    "set": frozenset({"set_value"}),
    # Not scroll: Qwen2.5-Coder-0.5B, asked to select a radio button, scrolled three times.
    "point": frozenset({"click"}),
    "keys": frozenset({"press_keys"}),
    "look": frozenset({"capture_screenshot"}),
}
