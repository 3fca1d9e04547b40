"""Raw events into the steps a person would name.

A press on a check box is "click check box 'Bold' in window 'Editor'"; the text events of
one field, however many keys and pastes made them, are one "set text" step holding what
the field held last; a press on a menu title then on an item is "choose menu Edit >
Paste"; a chord outside a text field is "press Ctrl+S". What the accessibility events say
right after a step (the box got checked, the row got selected, a window came up) becomes
its postcondition. A password field's text is never kept: the step names a secret.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from deskloop.recordings.keys import EDITING_CHORDS, EDITING_KEYS, chord_of
from deskloop.recordings.naming import chord_words, quoted, role_word, secret_name, stable_title
from deskloop.recordings.ranked_locators import identity, locators_for, without_titles
from deskloop.recordings.recording import Action, Postcondition, Risk, Step
from deskloop.screen.recording_events import (
    ElementEvent,
    ElementFacts,
    KeyEvent,
    PointerEvent,
    RecordedEvent,
)

CLICK_ROLES = frozenset(
    {"button", "toggle", "check", "radio", "tab", "link", "colorbutton", "switch", "combo"}
)
SELECT_ROLES = frozenset({"item", "cell", "row"})
TEXT_ROLES = frozenset({"entry", "password", "spin"})
MENU_ROLES = frozenset({"menu", "menuitem"})
# Roles that only hold others: a press on one (blank space) is no step.
CONTAINERS = frozenset(
    {
        "panel",
        "pane",
        "group",
        "filler",
        "viewport",
        "scrollpane",
        "split",
        "section",
        "layered",
        "form",
        "redundant",
        "unknown",
        "embedded",
        "application",
        "window",
        "table",
        "list",
        "tree",
        "toolbar",
        "tabs",
        "menubar",
        "statusbar",
        "header",
        "footer",
        "document",
        "canvas",
        "scrollbar",
        "separator",
        "dialog",
    }
)
# Seconds after a click, choice or chord in which what the screen does is its result.
SETTLE_S = 0.7
# How long before a press a result may be heard (see Collapser._apply_recent), and how
# many such events are kept for it.
EARLY_S = 0.3
RECENT_EVENTS = 32
DESTRUCTIVE = re.compile(
    r"\b(delete|remove|send|overwrite|replace|discard|erase|destroy|purge|empty|format|"
    r"uninstall|trash|revert)\b",
    re.IGNORECASE,
)


def _risk(*words: str) -> Risk:
    return "destructive" if any(DESTRUCTIVE.search(word) for word in words if word) else "write"


@dataclass
class _Pending:
    """A step being built: its element, and what came after it."""

    action: Action
    started: float
    element: ElementFacts | None = None
    text: str = ""
    chord: str = ""
    menu_path: tuple[str, ...] = ()
    postcondition: Postcondition | None = None
    field_edits: int = 0


@dataclass
class Collapser:
    """Feed it events in order; it returns the steps it is sure of as it goes."""

    only_app: str | None = None
    apps_at_start: frozenset[str] = frozenset()
    steps: list[Step] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)
    _pending: _Pending | None = None
    _focus: ElementFacts | None = None
    _menu_open: bool = False
    _menu_hover: ElementFacts | None = None
    _seen_apps: set[str] = field(default_factory=set)
    _recent: deque[ElementEvent] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    _titles: dict[tuple[str, tuple[int, int]], set[str]] = field(default_factory=dict)

    def feed(self, event: RecordedEvent) -> list[Step]:
        """The steps finished by this event (usually none or one)."""
        before = len(self.steps)
        if not isinstance(event, KeyEvent) and event.element is not None:
            self._note_title(event.element)
        if isinstance(event, PointerEvent):
            self._pointer(event)
        elif isinstance(event, KeyEvent):
            self._key(event)
        else:
            self._element_event(event)
        return self.steps[before:]

    def feed_all(self, events: Iterable[RecordedEvent]) -> list[Step]:
        for event in events:
            self.feed(event)
        self.finish()
        return self.steps

    def settle(self, now: float) -> list[Step]:
        """Finish a click, choice or chord whose results have had time to show."""
        before = len(self.steps)
        pending = self._pending
        if (
            pending is not None
            and pending.action != "set_text"
            and now - pending.started > SETTLE_S
        ):
            self._finish()
        return self.steps[before:]

    def finish(self) -> list[Step]:
        """Finish the last step, and take titles that changed while recording out of every
        step's window (they would not be found again)."""
        before = len(self.steps)
        self._finish()
        changing = {
            title for titles in self._titles.values() if len(titles) > 1 for title in titles
        }
        if changing:
            self.steps[:] = [without_titles(step, changing) for step in self.steps]
        return self.steps[before:]

    def _note_title(self, facts: ElementFacts) -> None:
        """Titles seen per window (app and where it is): more than one means it changes."""
        title = facts.name if facts.role in ("window", "dialog") else facts.window_title
        title = stable_title(title, facts.app)
        box = facts.box if facts.role in ("window", "dialog") else facts.window_box
        if title and box is not None:
            self._titles.setdefault((facts.app, (box.x, box.y)), set()).add(title)

    # Events ----------------------------------------------------------------------------

    def _wanted(self, facts: ElementFacts) -> bool:
        if self.only_app is None:
            return True
        wanted = self.only_app.lower()
        return facts.app.lower() == wanted or wanted in facts.app.lower()

    def _note_app(self, facts: ElementFacts, time: float) -> None:
        if facts.app in self._seen_apps:
            return
        self._seen_apps.add(facts.app)
        self.apps.append(facts.app)
        if facts.app not in self.apps_at_start and self.apps_at_start:
            self._finish()
            self.steps.append(
                Step(
                    action="open_app",
                    intent=f"open app {facts.app}",
                    app=facts.app,
                    text=facts.app,
                    postcondition=Postcondition(
                        "window", stable_title(facts.window_title, facts.app)
                    )
                    if facts.window_title
                    else None,
                )
            )

    def _pointer(self, event: PointerEvent) -> None:
        facts = event.element
        if event.kind != "press" or event.button != 1 or facts is None or not self._wanted(facts):
            return
        self._note_app(facts, event.time)
        menu_item = self._menu_choice(facts)
        if facts.role == "menu" and not any(role == "menu" for role, _ in facts.path):
            self._finish()
            self._menu_open = True  # a title in a menu bar: the choice comes next
            self._menu_hover = None
            return
        if menu_item is not None:
            self._finish()
            path = (*tuple(name for role, name in menu_item.path if role == "menu"), menu_item.name)
            self._pending = _Pending("menu", event.time, menu_item, menu_path=path)
            self._menu_open = False
            self._menu_hover = None
            return
        self._menu_open = False
        self._menu_hover = None
        if facts.role in TEXT_ROLES or "editable" in facts.states:
            pending = self._pending
            if not (
                pending
                and pending.action == "set_text"
                and pending.element
                and identity(pending.element) == identity(facts)
            ):
                self._finish()
            self._focus = facts
            return
        if facts.role in SELECT_ROLES:
            self._finish()
            self._pending = _Pending("select", event.time, facts)
            self._apply_recent(self._pending)
            return
        if facts.role in CLICK_ROLES or (facts.name and facts.role not in CONTAINERS):
            self._finish()
            self._pending = _Pending("click", event.time, facts)
            self._apply_recent(self._pending)

    def _menu_choice(self, facts: ElementFacts) -> ElementFacts | None:
        """The menu item a press chose: the one under it, else the one last highlighted
        (the menu may have closed before the press could be looked up)."""
        if facts.role == "menuitem" or (
            facts.role == "menu" and any(r == "menu" for r, _ in facts.path)
        ):
            return facts
        if self._menu_open and self._menu_hover is not None:
            return self._menu_hover
        return None

    def _key(self, event: KeyEvent) -> None:
        focus = self._focus
        if focus is not None and not self._wanted(focus):
            return
        chord = chord_of(event)
        in_field = focus is not None and (focus.role in TEXT_ROLES or "editable" in focus.states)
        commands = event.modifiers & {"ctrl", "alt", "super"}
        if not commands:
            if event.text or event.key in EDITING_KEYS or event.key.startswith("shift"):
                return  # typing: the text events make the step
            if (
                event.key in ("Return", "KP_Enter")
                and in_field
                and focus is not None
                and "multiline" in focus.states
            ):
                return
        if in_field and chord.lower() in EDITING_CHORDS:
            return
        if not commands and not event.key.startswith(("F", "Return", "Escape", "KP_Enter", "Menu")):
            return
        self._finish()
        self._pending = _Pending("keys", event.time, focus, chord=chord)

    def _element_event(self, event: ElementEvent) -> None:
        facts = event.element
        if not self._wanted(facts):
            return
        kind = event.kind
        if kind in ("text_inserted", "text_deleted"):
            self._text_changed(event)
            return
        pending = self._pending
        if kind in ("checked", "unchecked", "selected", "window_opened"):
            self._recent.append(event)
        if kind in ("checked", "unchecked", "selected") and facts.role not in MENU_ROLES:
            if pending is not None:
                _apply_state(pending, event)
        elif kind == "selected" and facts.role == "menuitem":
            self._menu_hover = facts
        elif kind in ("window_activated", "window_opened"):
            self._note_app(facts, event.time)
            title = stable_title(facts.name or facts.window_title, facts.app)
            if (
                pending is not None
                and pending.action != "set_text"
                and pending.postcondition is None
                and title
                and (
                    pending.element is None
                    or title != stable_title(pending.element.window_title, facts.app)
                    or facts.app != pending.element.app
                )
            ):
                pending.postcondition = Postcondition("window", title)
        elif (
            kind == "focused"
            and facts.role not in ("window", "dialog")
            and facts.role not in MENU_ROLES
        ):
            if (
                pending is not None
                and pending.action == "set_text"
                and pending.element is not None
                and identity(pending.element) != identity(facts)
            ):
                self._finish()
            self._focus = facts

    def _apply_recent(self, pending: _Pending) -> None:
        """The app may answer a click before the click's lookup is done (the press comes
        through X, the answer through D-Bus): results heard just before count too."""
        for event in self._recent:
            if event.time >= pending.started - EARLY_S:
                _apply_state(pending, event)

    def _text_changed(self, event: ElementEvent) -> None:
        facts = event.element
        focus = self._focus
        focused = "focused" in facts.states or (
            focus is not None and identity(focus) == identity(facts)
        )
        if not focused:
            return  # a mirror or a status line changing: not what the person typed into
        self._note_app(facts, event.time)
        pending = self._pending
        if (
            pending is not None
            and pending.action == "keys"
            and event.time - pending.started < SETTLE_S
        ):
            self._pending = pending = None  # a paste or an undo: part of the field's text
        if (
            pending is None
            or pending.action != "set_text"
            or pending.element is None
            or identity(pending.element) != identity(facts)
        ):
            self._finish()
            pending = self._pending = _Pending("set_text", event.time, facts)
        pending.element = facts
        pending.field_edits += 1
        if facts.secret:
            pending.text = ""
        elif facts.value is not None:
            pending.text = facts.value
        elif event.kind == "text_inserted":
            pending.text += event.detail
        self._focus = facts

    # Steps -----------------------------------------------------------------------------

    def _finish(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        step = _build(pending)
        if step is not None:
            self.steps.append(step)


def _apply_state(pending: _Pending, event: ElementEvent) -> None:
    """A checked, unchecked or selected event about the pending step's element."""
    facts = pending.element
    if facts is None or pending.action not in ("click", "select"):
        return
    same = identity(facts) == identity(event.element)
    if event.kind in ("checked", "unchecked") and same:
        pending.postcondition = Postcondition(event.kind)
    elif event.kind == "selected" and (
        same or (pending.action == "select" and _same_row(facts, event.element))
    ):
        pending.postcondition = Postcondition("selected")


def _same_row(pressed: ElementFacts | None, selected: ElementFacts) -> bool:
    """A press on one cell selects the whole row: its cells share the row's box top."""
    if pressed is None or pressed.box is None or selected.box is None:
        return False
    return pressed.app == selected.app and pressed.box.y == selected.box.y


def _window_of(facts: ElementFacts) -> str:
    return stable_title(facts.window_title, facts.app) or facts.app


def _build(pending: _Pending) -> Step | None:
    facts = pending.element
    if pending.action == "keys":
        return Step(
            action="keys",
            intent=f"press {chord_words(pending.chord)}",
            app=facts.app if facts else "",
            window=_window_of(facts) if facts else "",
            text=pending.chord,
            postcondition=pending.postcondition,
        )
    if facts is None:
        return None
    where = f" in window {quoted(_window_of(facts))}"
    # "check box 'Bold'"; unnamed: "entry number 2", or just "text area" for the first.
    named = quoted(facts.name) if facts.name else f"number {facts.index + 1}"
    what = "text area" if facts.role == "entry" and "multiline" in facts.states else facts.role
    what = "password" if facts.secret else what
    label = f"{role_word(what)} {named}" if facts.name or facts.index > 0 else role_word(what)
    step = Step(
        action=pending.action,
        intent="",
        app=facts.app,
        window=_window_of(facts),
        locators=locators_for(facts),
        postcondition=pending.postcondition,
    )
    if pending.action == "menu":
        words = " > ".join(pending.menu_path)
        return replace(
            step,
            intent=f"choose menu {words}{where}",
            menu_path=pending.menu_path,
            risk=_risk(*pending.menu_path),
        )
    if pending.action == "set_text":
        if facts.secret:
            secret = secret_name(facts.name)
            return replace(
                step,
                intent=f"type the secret {quoted(secret)} into {label}{where}",
                secret=secret,
                postcondition=None,
            )
        return replace(
            step,
            intent=f"set text of {label} to {quoted(pending.text)}{where}",
            text=pending.text,
            postcondition=Postcondition("text", pending.text),
        )
    if pending.action == "select":
        return replace(step, intent=f"select {label}{where}")
    return replace(step, intent=f"click {label}{where}", risk=_risk(facts.name))
