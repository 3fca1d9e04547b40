"""Words for steps: role names a person uses, window titles without their changing part,
and names that are times or counts (never used to find an element again)."""

from __future__ import annotations

import re

ROLE_WORDS = {
    "check": "check box",
    "radio": "radio button",
    "toggle": "toggle button",
    "button": "button",
    "tab": "tab",
    "link": "link",
    "menuitem": "menu item",
    "menu": "menu",
    "entry": "entry",
    "password": "password field",
    "combo": "combo box",
    "spin": "spin button",
    "slider": "slider",
    "item": "row",
    "cell": "row",
    "row": "row",
    "colorbutton": "color button",
    "switch": "switch",
    "document": "document",
    "text": "text",
}

_RELATIVE_TIME = re.compile(
    r"\b(\d+|an?|one|few)\s+(sec(ond)?|min(ute)?|h(ou)?r|day|week|month|year)s?\s+ago\b"
    r"|^(just now|yesterday|today|tomorrow)$",
    re.IGNORECASE,
)
_COUNT = re.compile(r"^\(?[\d.,]+\)?\s*(\w+\s*){0,2}$")
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?\s*([ap]\.?m\.?)?\b", re.IGNORECASE)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
_NUMBER_ONLY = re.compile(r"^[\d\s.,:%+\-]+$")
_TITLE_SEPARATORS = re.compile(r"\s+[-\u2013\u2014|]\s+")
# A mark editors put before the title of a document with unsaved changes.
_MODIFIED_MARKS = "*\u2022\u25cf "


def is_volatile_name(name: str) -> bool:
    """A name that changes by itself: a time ("3 hours ago", "10:42"), a date, a count
    ("12 items"), or only a number."""
    text = name.strip()
    if not text:
        return False
    return bool(
        _RELATIVE_TIME.search(text)
        or _CLOCK.search(text)
        or _DATE.search(text)
        or _NUMBER_ONLY.match(text)
        or _COUNT.match(text)
    )


def stable_title(title: str, app: str) -> str:
    """The part of a window title that stays: "*Untitled 1 - Mousepad" -> "Mousepad".

    Titles name the document first and the app last; of the parts, the one naming the app
    is kept, else the last. A title that is a time or a count keeps nothing.
    """
    text = title.strip().lstrip(_MODIFIED_MARKS).strip()
    parts = [part for part in _TITLE_SEPARATORS.split(text) if part]
    if len(parts) > 1:
        wanted = app.lower().replace("-", " ")
        for part in parts:
            lowered = part.lower()
            if lowered in wanted or wanted in lowered:
                return part
        text = parts[-1]
    return "" if is_volatile_name(text) else text


def role_word(role: str) -> str:
    return ROLE_WORDS.get(role, role)


def quoted(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "\u2026"
    return "'" + shown.replace("\n", "\\n") + "'"


def chord_words(chord: str) -> str:
    """ "ctrl+shift+s" as a person writes it: "Ctrl+Shift+S"."""
    parts = chord.split("+")
    return "+".join(
        part.upper() if len(part) == 1 else part[:1].upper() + part[1:] for part in parts
    )


def secret_name(field_name: str) -> str:
    """The name replay asks for, from the field's name ("Password" -> "password")."""
    slug = re.sub(r"[^a-z0-9]+", "_", field_name.lower()).strip("_")
    return slug or "password"
