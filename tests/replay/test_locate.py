"""Finding a step's element from its locators, on snapshots built from plain node data."""

from __future__ import annotations

import pytest

from deskloop.recordings.locate import Found, NotFound, locate, locators_for, untrusted_name
from deskloop.recordings.recording import Locator, PathPart, Recording, Step
from deskloop.recordings.replay import Replayer, ReplayError
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backend import AppInfo
from deskloop.screen.tree import Box, IdAllocator, NodeData, Snapshot, WindowRead, build_snapshot

WINDOW = Box(100, 100, 400, 300)


def node(ref: str, parent: str | None, role: str, name: str = "", y: int = 0) -> NodeData:
    box = Box(110, 110 + y, 80, 20) if role not in ("window", "panel") else WINDOW
    return NodeData(ref, parent, role, name, box=box)


def editor() -> Snapshot:
    """A window with a named toolbar of buttons, two unnamed check boxes and a counted label."""
    nodes = (
        node("w", None, "window", "notes.txt - Editor"),
        node("tb", "w", "panel", "Formatting"),
        node("b1", "tb", "button", "Bold", 0),
        node("b2", "tb", "button", "Italic", 20),
        node("p", "w", "panel", ""),
        node("c1", "p", "check", "option", 40),
        node("c2", "p", "check", "option", 60),
        node("n", "p", "label", "12 items", 80),
        node("s", "p", "button", "Save", 100),
        node("s2", "tb", "button", "Save", 120),
    )
    return build_snapshot(
        WindowRead("editor", 7, "notes.txt - Editor", WINDOW, nodes), IdAllocator()
    )


def step(*locators: Locator) -> Step:
    return Step("click", "click it", app="editor", locators=locators)


def test_role_and_name_find_the_one_element() -> None:
    found = locate(editor(), step(Locator("role_name", role="button", name="Bold")))
    assert isinstance(found, Found) and found.element.ref == "b1"


def test_a_locator_matching_several_elements_is_never_guessed() -> None:
    result = locate(editor(), step(Locator("role_name", role="check", name="option")))
    assert isinstance(result, NotFound)
    assert "ambiguous, 2 elements match" in result.reason


def test_the_next_locator_settles_an_ambiguous_one() -> None:
    window = (PathPart("window", ""),)
    found = locate(
        editor(),
        step(
            Locator("role_name", role="check", name="option"),
            Locator("index", role="check", path=window, index=1),
        ),
    )
    assert isinstance(found, Found) and found.element.ref == "c2"


def test_a_named_ancestor_picks_between_two_of_the_same_name() -> None:
    path = (PathPart("window", "Editor"), PathPart("panel", "Formatting"))
    found = locate(editor(), step(Locator("path", role="button", name="Save", path=path)))
    assert isinstance(found, Found) and found.element.ref == "s2"


def test_a_window_title_part_that_changed_still_matches_its_stable_part() -> None:
    path = (PathPart("window", "Editor"),)
    found = locate(editor(), step(Locator("path", role="button", name="Italic", path=path)))
    assert isinstance(found, Found)


@pytest.mark.parametrize(
    "name", ["3 hours ago", "12 items", "(4)", "10:45", "yesterday", "2 min ago", "1,024 files"]
)
def test_times_and_counts_are_not_trusted_as_names(name: str) -> None:
    assert untrusted_name(name)


@pytest.mark.parametrize("name", ["Bold", "Save as…", "Page 2", "Assistant", "mp3 player"])
def test_ordinary_names_are_trusted(name: str) -> None:
    assert not untrusted_name(name)


def test_a_count_as_a_locator_name_is_skipped() -> None:
    result = locate(editor(), step(Locator("role_name", role="label", name="12 items")))
    assert isinstance(result, NotFound) and "a time or a count" in result.reason


def test_locators_for_an_element_find_it_again() -> None:
    snapshot = editor()
    target = next(e for e in snapshot if e.ref == "c2")
    locators = locators_for(snapshot, target)
    assert [loc.kind for loc in locators] == ["role_name", "index", "bounds"]
    found = locate(snapshot, step(*locators))
    assert isinstance(found, Found) and found.element.ref == "c2"


def test_bounds_find_the_innermost_element_at_the_recorded_spot() -> None:
    found = locate(editor(), step(Locator("bounds", role="button", box=(10, 30, 80, 20))))
    assert isinstance(found, Found) and found.element.ref == "b2"


class FakeBackend:
    """A test fake: a desktop where only `running` apps run; it never acts."""

    name = "fake"

    def __init__(self, running: list[str]) -> None:
        self.running = running

    async def list_apps(self) -> list[AppInfo]:
        return [AppInfo(name, 100 + i) for i, name in enumerate(self.running)]


async def test_an_app_that_is_not_installed_is_refused_before_acting() -> None:
    backend = FakeBackend(["editor"])
    replayer = Replayer(ScreenSession(backend))  # type: ignore[arg-type]
    missing = Recording(
        "missing",
        (
            Step(
                "click",
                "click Bold",
                app="editor",
                locators=(Locator("role_name", "button", "Bold"),),
            ),
            Step("open_app", "open app no-such-app-here", text="no-such-app-here --new"),
        ),
    )
    with pytest.raises(
        ReplayError, match="step 2 opens 'no-such-app-here --new', which is not installed"
    ):
        await replayer.replay(missing)
