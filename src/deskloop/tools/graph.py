"""`save_knowledge_graph` and `query_knowledge_graph`: what the agent learns about people,
places and things, kept as nodes with aliases and labelled edges."""

from __future__ import annotations

from typing import Any

from deskloop.store import EdgeInput, NodeInput
from deskloop.tools.contract import (
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROUTING = "Facts about the user's people, places and things: save and query the knowledge graph."

_TEXT = {"type": "string"}
SAVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": _TEXT,
                    "type": _TEXT,
                    "aliases": {"type": "array", "items": _TEXT},
                },
                "required": ["label"],
                "additionalProperties": False,
            },
        },
        "edges": {
            "type": "array",
            "items": {"type": "array", "items": _TEXT, "minItems": 3, "maxItems": 3},
            "description": "[from, relation, to]",
        },
    },
    "additionalProperties": False,
}
QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": _TEXT, "type": _TEXT},
    "additionalProperties": False,
}


async def save_knowledge_graph(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    nodes = [
        NodeInput(str(node["label"]), str(node.get("type", "")), tuple(node.get("aliases", ())))
        for node in tool_input.get("nodes", [])
    ]
    edges = [EdgeInput(*map(str, edge)) for edge in tool_input.get("edges", [])]
    report = context.store.save_graph(nodes, edges)
    said = [
        f"nodes: {len(report.added)} added, {len(report.merged)} merged with known ones",
        f"edges: {report.edges_added} added, {report.edges_known} already known",
    ]
    if report.dropped:
        said.append("dropped: " + "; ".join(report.dropped))
    return "\n".join(said)


async def query_knowledge_graph(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    nodes, edges = context.store.query_graph(
        str(tool_input.get("text", "")),
        str(tool_input.get("type", "")),
    )
    if not nodes:
        return "no matching nodes"
    lines = []
    for node in nodes:
        kind = f" ({node.type})" if node.type else ""
        aliases = f" aka {', '.join(node.aliases)}" if node.aliases else ""
        lines.append(f"{node.label}{kind}{aliases}")
    lines.extend(f"{edge.source} -{edge.relation}-> {edge.target}" for edge in edges)
    return "\n".join(lines)


def build_graph_tools(context: ToolContext) -> list[Tool]:
    return [
        Tool(
            "save_knowledge_graph",
            "Save facts: nodes (merged by label/alias) and edges.",
            SAVE_SCHEMA,
            "act",
            TimeoutTier.INTERNAL,
            save_knowledge_graph,
        ),
        Tool(
            "query_knowledge_graph",
            "Find nodes by text or type, with their edges.",
            QUERY_SCHEMA,
            "read",
            TimeoutTier.INTERNAL,
            query_knowledge_graph,
        ),
    ]


GRAPH_FAMILY = ToolFamily("graph", ROUTING, build_graph_tools)
