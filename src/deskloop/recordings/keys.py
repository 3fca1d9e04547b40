"""Keys as a recording sees them: chords written one way ("ctrl+shift+s"), and which keys
and chords only edit the focused field (part of its set_text step, never a step)."""

from __future__ import annotations

from deskloop.screen.recording_events import KeyEvent

# Keys that move the caret or edit a field: part of typing, never a step of their own.
EDITING_KEYS = frozenset(
    {
        "BackSpace",
        "Delete",
        "Left",
        "Right",
        "Up",
        "Down",
        "Home",
        "End",
        "Prior",
        "Next",
        "Tab",
        "ISO_Left_Tab",
        "Insert",
        "KP_Left",
        "KP_Right",
        "KP_Up",
        "KP_Down",
    }
)
# Chords that edit text where the focus is (select all, copy, paste, undo): in a field they
# are part of its set_text step.
EDITING_CHORDS = frozenset(
    {
        "ctrl+a",
        "ctrl+c",
        "ctrl+v",
        "ctrl+x",
        "ctrl+z",
        "ctrl+y",
        "ctrl+shift+z",
        "shift+insert",
        "ctrl+insert",
        "shift+delete",
        "ctrl+backspace",
        "ctrl+delete",
        "ctrl+left",
        "ctrl+right",
        "ctrl+shift+left",
        "ctrl+shift+right",
        "shift+left",
        "shift+right",
        "shift+home",
        "shift+end",
        "ctrl+home",
        "ctrl+end",
    }
)
MODIFIER_ORDER = ("ctrl", "alt", "altgr", "shift", "super")


def chord_of(event: KeyEvent) -> str:
    held = [name for name in MODIFIER_ORDER if name in event.modifiers]
    key = event.key.lower() if len(event.key) == 1 else event.key
    return "+".join([*held, key])
