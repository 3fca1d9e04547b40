"""The window a task names: matched against running apps' names and their window titles.

"Tick the check box in the widget factory" names gtk3-widget-factory (window "GTK+ Widget
Factory"); a task that names no running app gets the focused window. A small model acts
wherever the first observation points it, so this choice decides the task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from deskloop.screen.backend import AppInfo

# Words in app names and titles that say nothing about which app it is.
GENERIC_WORDS = frozenset(
    {
        "gtk", "gtk3", "gtk4", "gtk+", "qt", "kde", "gnome", "the", "app", "application",
        "window", "untitled", "new", "document", "file", "and", "for", "with", "org",
    }
)
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in GENERIC_WORDS]


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 4 else word


@dataclass(frozen=True)
class NamedWindow:
    """The app a task names, and the words that matched (for the observation header)."""

    app: AppInfo
    matched: str

    @property
    def why(self) -> str:
        return f"named in the task: {self.matched}"


def _score(task_words: set[str], task_text: str, app: AppInfo) -> tuple[float, str]:
    """How well the task names `app`: the share of its name's (or a title's) words present."""
    best = (0.0, "")
    for label in (app.name, *app.titles):
        label_words = words(label)
        if not label_words:
            continue
        if label.lower() in task_text:
            return (2.0, label)  # named whole ("gtk3-demo", "Mousepad")
        hits = [w for w in label_words if _stem(w) in task_words]
        score = len(hits) / len(label_words)
        if score > best[0]:
            best = (score, label)
    return best


def named_window(task: str, apps: Sequence[AppInfo]) -> NamedWindow | None:
    """The one running app whose name or window title the task names, or None."""
    text = task.lower()
    task_words = {_stem(w) for w in words(task)}
    scored = sorted(
        ((*_score(task_words, text, app), app) for app in apps),
        key=lambda entry: entry[0],
        reverse=True,
    )
    if not scored or scored[0][0] < 0.5:
        return None
    score, label, app = scored[0]
    # Two apps matching as well: the task does not say which (two mousepads, say).
    if len(scored) > 1 and scored[1][0] == score and scored[1][2].name != app.name:
        return None
    return NamedWindow(app, repr(label))
