"""The knowledge graph: nodes found by lowercase label or alias, and labelled edges between them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from deskloop.store._connection import Connected


@dataclass(frozen=True)
class NodeInput:
    label: str
    type: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class EdgeInput:
    source: str
    relation: str
    target: str


@dataclass(frozen=True)
class GraphNode:
    id: int
    label: str
    type: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class GraphEdge:
    source: str
    relation: str
    target: str


@dataclass
class GraphSaveReport:
    """What one save did; `dropped` says, for the model, what was left out and why."""

    added: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    edges_added: int = 0
    edges_known: int = 0
    dropped: list[str] = field(default_factory=list)


def name_key(name: str) -> str:
    """How labels and aliases are compared: case-folded, inner whitespace collapsed."""
    return " ".join(name.split()).casefold()


def _find(db: sqlite3.Connection, name: str) -> int | None:
    row = db.execute(
        "SELECT node_id FROM kg_names WHERE name_key = ?", (name_key(name),)
    ).fetchone()
    return None if row is None else int(row[0])


def _add_name(db: sqlite3.Connection, node_id: int, name: str) -> None:
    db.execute(
        "INSERT OR IGNORE INTO kg_names (name_key, node_id, name) VALUES (?, ?, ?)",
        (name_key(name), node_id, " ".join(name.split())),
    )


def _save_graph(
    db: sqlite3.Connection, nodes: Sequence[NodeInput], edges: Sequence[EdgeInput]
) -> GraphSaveReport:
    """Merge `nodes` (by label or alias) and add `edges`; call inside one transaction."""
    report = GraphSaveReport()
    now = time.time()
    for node in nodes:
        if not name_key(node.label):
            report.dropped.append("a node with an empty label")
            continue
        # The label decides which node this is; failing that, the first alias already known.
        node_id = _find(db, node.label)
        if node_id is None:
            node_id = next((n for a in node.aliases if (n := _find(db, a)) is not None), None)
        if node_id is not None:
            if node.type:
                db.execute(
                    "UPDATE kg_nodes SET type = ?, updated_at = ? WHERE id = ?",
                    (node.type, now, node_id),
                )
            report.merged.append(node.label)
        else:
            cursor = db.execute(
                "INSERT INTO kg_nodes (label, type, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (" ".join(node.label.split()), node.type, now, now),
            )
            node_id = int(cursor.lastrowid or 0)
            report.added.append(node.label)
        for name in (node.label, *node.aliases):
            owner = _find(db, name)
            if owner is None and name_key(name):
                _add_name(db, node_id, name)
            elif owner is not None and owner != node_id:
                report.dropped.append(f"alias {name!r} of {node.label!r}: it names another node")
    for edge in edges:
        source, target = _find(db, edge.source), _find(db, edge.target)
        described = f"{edge.source} -{edge.relation}-> {edge.target}"
        if source is None or target is None:
            missing = edge.source if source is None else edge.target
            report.dropped.append(f"edge {described}: no node {missing!r} (save the node first)")
        elif source == target:
            report.dropped.append(f"edge {described}: a self-loop")
        elif not edge.relation.strip():
            report.dropped.append(f"edge {described}: no relation")
        else:
            cursor = db.execute(
                "INSERT OR IGNORE INTO kg_edges (source_id, target_id, relation, created_at)"
                " VALUES (?, ?, ?, ?)",
                (source, target, edge.relation.strip(), now),
            )
            if cursor.rowcount:
                report.edges_added += 1
            else:
                report.edges_known += 1
    return report


def _node(db: sqlite3.Connection, node_id: int) -> GraphNode:
    label, kind = db.execute("SELECT label, type FROM kg_nodes WHERE id = ?", (node_id,)).fetchone()
    aliases = tuple(
        name
        for (name,) in db.execute(
            "SELECT name FROM kg_names WHERE node_id = ? ORDER BY name", (node_id,)
        )
        if name_key(name) != name_key(label)
    )
    return GraphNode(node_id, label, kind, aliases)


def _query_graph(
    db: sqlite3.Connection, text: str = "", node_type: str = "", limit: int = 20
) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Nodes whose label or alias contains `text` (and of `node_type`), with their edges."""
    pattern = (
        "%" + name_key(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    )
    rows = db.execute(
        "SELECT DISTINCT n.id FROM kg_nodes n JOIN kg_names a ON a.node_id = n.id"
        " WHERE a.name_key LIKE ? ESCAPE '\\' AND (? = '' OR lower(n.type) = lower(?))"
        " ORDER BY n.updated_at DESC, n.id LIMIT ?",
        (pattern, node_type, node_type, limit),
    ).fetchall()
    ids = [int(row[0]) for row in rows]
    nodes = [_node(db, node_id) for node_id in ids]
    edges: list[GraphEdge] = []
    if ids:
        marks = ",".join("?" * len(ids))
        edges = [
            GraphEdge(*row)
            for row in db.execute(
                "SELECT s.label, e.relation, t.label FROM kg_edges e"
                " JOIN kg_nodes s ON s.id = e.source_id JOIN kg_nodes t ON t.id = e.target_id"
                f" WHERE e.source_id IN ({marks}) OR e.target_id IN ({marks})"
                " ORDER BY e.id LIMIT 200",
                (*ids, *ids),
            )
        ]
    return nodes, edges


class GraphAccess(Connected):
    def save_graph(self, nodes: Sequence[NodeInput], edges: Sequence[EdgeInput]) -> GraphSaveReport:
        """Merge `nodes` by label or alias, then add `edges`, in one transaction."""
        with self.transaction() as db:
            return _save_graph(db, nodes, edges)

    def query_graph(
        self, text: str = "", node_type: str = "", limit: int = 20
    ) -> tuple[list[GraphNode], list[GraphEdge]]:
        """Nodes whose label or alias contains `text` (and of `node_type`), with their edges."""
        return _query_graph(self._db, text, node_type, limit)
