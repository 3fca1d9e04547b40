"""`deskloop observe` speaks the command's language, not the model's tool names."""

from __future__ import annotations

from deskloop.screen.commands import for_people


def test_tool_names_become_what_a_person_types() -> None:
    missing = for_people(
        "no application matches app 'gedit' in the accessibility tree. Apps visible now: "
        "mousepad. Use open_app to start it, or pick one of these",
    )
    assert "open_app" not in missing
    assert missing.endswith("Start it first, or pick one of these")
