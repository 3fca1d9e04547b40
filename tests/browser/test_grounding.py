"""The browser tools' refs are grounded like screen ids: an enum of the latest snapshot's."""

from __future__ import annotations

from deskloop.agent.grounding import ground_refs
from deskloop.tools.browser import browser_tools

BROWSER_TOOLS = frozenset(tool.name for tool in browser_tools())


def definitions() -> list[dict[str, object]]:
    return [tool.definition() for tool in browser_tools()]


def test_ref_parameters_become_an_enum_of_the_latest_refs() -> None:
    grounded = {d["name"]: d["input_schema"] for d in ground_refs(definitions(), ("e3", "e7"), BROWSER_TOOLS)}  # type: ignore[index]
    for name in ("browser_click", "browser_type", "browser_wait_for"):
        ref = grounded[name]["properties"]["ref"]  # type: ignore[index]
        assert ref["enum"] == ["e3", "e7"] and ref["type"] == "string"
    assert "enum" not in str(grounded["browser_navigate"])


def test_before_any_snapshot_the_schemas_stay_as_they_are() -> None:
    plain = definitions()
    assert ground_refs(plain, (), BROWSER_TOOLS) == plain
    # Another family's `ref` parameter is not the browser's to ground.
    assert ground_refs(plain, ("e3",), frozenset()) == plain
