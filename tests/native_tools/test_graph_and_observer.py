"""The knowledge graph merges what it is told, and observer cards keep their status."""

from __future__ import annotations

import pytest

from deskloop.store import Store
from deskloop.tools import BadToolArguments, Tool, ToolContext
from deskloop.tools.graph import build_graph_tools
from deskloop.tools.observer import build_observer_tools


def _tools(context: ToolContext) -> dict[str, Tool]:
    return {
        tool.name: tool for tool in [*build_graph_tools(context), *build_observer_tools(context)]
    }


async def test_nodes_merge_by_lowercase_label_and_alias_and_bad_edges_are_dropped_and_said(
    context: ToolContext,
) -> None:
    tools = _tools(context)
    save, query = tools["save_knowledge_graph"], tools["query_knowledge_graph"]
    first = await save.run(
        {
            "nodes": [
                {"label": "Alice Martin", "type": "person", "aliases": ["Ali"]},
                {"label": "Acme", "type": "company"},
            ],
            "edges": [["Alice Martin", "works at", "Acme"]],
        },
        context,
    )
    assert first == "nodes: 2 added, 0 merged with known ones\nedges: 1 added, 0 already known"
    second = str(
        await save.run(
            {
                "nodes": [
                    {"label": "alice  martin", "aliases": ["A. Martin"]},
                    {"label": "ALI"},
                    {"label": "Lyon", "type": "place"},
                ],
                "edges": [
                    ["ali", "works at", "acme"],
                    ["A. Martin", "lives in", "Lyon"],
                    ["Acme", "is", "acme"],
                    ["Alice Martin", "knows", "Bob"],
                ],
            },
            context,
        )
    )
    assert second.splitlines()[:2] == [
        "nodes: 1 added, 2 merged with known ones",
        "edges: 1 added, 1 already known",
    ]
    assert "edge Acme -is-> acme: a self-loop" in second
    assert "edge Alice Martin -knows-> Bob: no node 'Bob'" in second
    found = str(await query.run({"text": "martin"}, context))
    assert found.splitlines() == [
        "Alice Martin (person) aka A. Martin, Ali",
        "Alice Martin -works at-> Acme",
        "Alice Martin -lives in-> Lyon",
    ]
    assert str(await query.run({"type": "place"}, context)).splitlines()[0] == "Lyon (place)"
    assert await query.run({"text": "nobody"}, context) == "no matching nodes"


async def test_an_alias_naming_another_node_is_not_stolen(context: ToolContext) -> None:
    save = _tools(context)["save_knowledge_graph"]
    await save.run({"nodes": [{"label": "Paris"}, {"label": "Texas"}]}, context)
    said = str(await save.run({"nodes": [{"label": "Texas", "aliases": ["Paris"]}]}, context))
    assert "alias 'Paris' of 'Texas': it names another node" in said
    found = str(await _tools(context)["query_knowledge_graph"].run({"text": "paris"}, context))
    assert found == "Paris"


async def test_observer_cards_are_saved_pending_and_change_status_on_the_users_side(
    store: Store, context: ToolContext
) -> None:
    card = _tools(context)["save_observer_card"]
    said = await card.run(
        {"kind": "pattern", "title": "You export the report every Friday", "body": "A routine?"},
        context,
    )
    assert said == "saved card 1 (pattern, pending)"
    with pytest.raises(BadToolArguments, match="title is empty"):
        await card.run({"kind": "insight", "title": "  "}, context)
    assert store.set_card_status(1, "dismissed") is not None
    assert store.set_card_status(7, "shown") is None
    (saved,) = store.observer_cards()
    assert store.observer_cards("pending") == []
    assert (saved.kind, saved.title, saved.status) == (
        "pattern",
        "You export the report every Friday",
        "dismissed",
    )
    # After the refusal a real card still saves.
    assert (
        await card.run({"kind": "insight", "title": "t"}, context)
        == "saved card 2 (insight, pending)"
    )
