"""Lineage: sources -> feature views -> on-demand views -> feature services, as data and as SVG.

The graph is laid out here, server-side, in columns by longest path from a source, and drawn as
an SVG whose nodes are links to the objects' pages: no JavaScript graph library to ship or keep.
Entities and single features appear only in the graph around themselves, so the project graph
stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from repast.ui.catalog import KIND_SLUGS, Catalog, Ref

GRAPH_KINDS = frozenset({"data_source", "feature_view", "on_demand_feature_view", "feature_service"})
NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 220, 30, 80, 12, 10


@dataclass
class Graph:
    nodes: list[Ref]
    edges: list[tuple[Ref, Ref]]
    focus: Ref | None = None

    def to_json(self) -> dict[str, Any]:
        return {"nodes": [{"id": n.id, **n.to_json()} for n in self.nodes],
                "edges": [{"from": a.id, "to": b.id} for a, b in self.edges],
                "focus": self.focus.id if self.focus else None}


def lineage(catalog: Catalog, focus: Ref | None = None) -> Graph:
    """The whole project's graph, or everything upstream and downstream of `focus`."""
    if focus is None:
        nodes = {r for kind in GRAPH_KINDS for r in (e.ref for e in catalog.entries.get(kind, []))}
    else:
        catalog.spec(focus)  # FeatureNotFound for an unknown object
        nodes = {focus} | _reach(catalog.upstream, focus) | _reach(catalog.downstream, focus)
    edges = [(a, b) for a, b in catalog.edges if a in nodes and b in nodes]
    ordered = sorted(nodes, key=lambda r: (r.kind, r.name))
    return Graph(ordered, edges, focus)


def _reach(adjacent: dict[Ref, list[Ref]], start: Ref) -> set[Ref]:
    seen: set[Ref] = set()
    todo = [start]
    while todo:
        for nxt in adjacent.get(todo.pop(), []):
            if nxt not in seen and nxt.kind in GRAPH_KINDS:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _columns(graph: Graph) -> list[list[Ref]]:
    """Longest-path layering; within a column, nodes sit near the mean row of their parents."""
    parents: dict[Ref, list[Ref]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        parents[b].append(a)
    depth: dict[Ref, int] = {}

    def depth_of(node: Ref, trail: frozenset[Ref] = frozenset()) -> int:
        if node not in depth:
            ps = [p for p in parents[node] if p not in trail]
            depth[node] = 1 + max((depth_of(p, trail | {node}) for p in ps), default=-1)
        return depth[node]

    columns: list[list[Ref]] = [[] for _ in range(1 + max((depth_of(n) for n in graph.nodes), default=0))]
    for node in graph.nodes:
        columns[depth[node]].append(node)
    row: dict[Ref, float] = {}
    for col in columns:
        col.sort(key=lambda n: (sum(row[p] for p in parents[n]) / len(parents[n]) if parents[n] else 0.0,
                                n.kind, n.name))
        row.update({n: float(i) for i, n in enumerate(col)})
    return columns


def render_svg(graph: Graph, href: Any) -> str:
    """The graph as an inline SVG; `href(ref)` gives each node's page URL."""
    columns = _columns(graph)
    pos: dict[Ref, tuple[int, int]] = {}
    for c, col in enumerate(columns):
        for r, node in enumerate(col):
            pos[node] = (PAD + c * (NODE_W + COL_GAP), PAD + r * (NODE_H + ROW_GAP))
    width = PAD * 2 + len(columns) * (NODE_W + COL_GAP) - COL_GAP
    height = PAD * 2 + max((len(c) for c in columns), default=1) * (NODE_H + ROW_GAP)
    parts = [f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">']
    for a, b in graph.edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H // 2, y2 + NODE_H // 2
        mid = (x1 + x2) // 2
        parts.append(f'<path class="edge" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"/>')
    for node, (x, y) in pos.items():
        label = node.name if len(node.name) <= 30 else node.name[:29] + "…"
        focus = " focus" if node == graph.focus else ""
        parts.append(
            f'<a href="{escape(href(node))}" class="node-link" data-id="{escape(node.id)}">'
            f'<title>{escape(KIND_SLUGS[node.kind])}: {escape(node.name)}</title>'
            f'<rect class="node kind-{node.kind}{focus}" x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 10}" y="{y + 20}">{escape(label)}</text></a>')
    parts.append("</svg>")
    return "".join(parts)
