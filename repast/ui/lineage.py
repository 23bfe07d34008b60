"""Lineage: sources -> feature views -> on-demand views -> feature services, as data and as SVG.

The graph is laid out here, server-side, by grandalf's layered (Sugiyama) layout with one column
per kind, and drawn as an SVG whose nodes are links to the objects' pages: no JavaScript graph
library to ship or keep.
Entities and single features appear only in the graph around themselves, so the project graph
stays readable.
"""

from __future__ import annotations

import sys
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


# Columns left to right, one band per kind: sources (and entities), feature views, their features,
# on-demand views, their features, services. A chain within a kind (a push source's batch source, an
# on-demand view reading another) takes one more column of its band, so every edge runs rightwards.
BANDS = [("data_source", "entity"), ("feature_view",), ("feature@feature_view",), ("on_demand_feature_view",),
         ("feature@on_demand_feature_view",), ("feature_service",)]
PLURALS = {"data_source": "sources", "entity": "entities", "feature_view": "feature views", "feature": "features",
           "on_demand_feature_view": "on-demand views", "feature_service": "services"}
TITLE_H = 24


@dataclass
class Layout:
    """Where each node sits (its column and the y of its centre) and, per edge, the y at which it
    crosses each column between its ends (columns with nodes in the way get a slot of their own)."""

    column: dict[Ref, int]
    y: dict[Ref, float]
    crossings: dict[tuple[Ref, Ref], dict[int, float]]
    height: float
    titles: dict[int, str]


def _band(node: Ref, parents: dict[Ref, list[Ref]]) -> int:
    kind = node.kind
    if kind == "feature":
        odfv = any(p.kind == "on_demand_feature_view" for p in parents[node])
        kind = "feature@" + ("on_demand_feature_view" if odfv else "feature_view")
    return next(i for i, kinds in enumerate(BANDS) if kind in kinds)


def _columns(graph: Graph) -> tuple[dict[Ref, int], dict[int, str]]:
    parents: dict[Ref, list[Ref]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        parents[b].append(a)
    band = {n: _band(n, parents) for n in graph.nodes}
    depth: dict[Ref, int] = {}

    def depth_of(node: Ref, trail: frozenset[Ref] = frozenset()) -> int:
        if node not in depth:
            same = [p for p in parents[node] if band[p] == band[node] and p not in trail]
            depth[node] = 1 + max((depth_of(p, trail | {node}) for p in same), default=-1)
        return depth[node]

    column: dict[Ref, int] = {}
    titles: dict[int, str] = {}
    start = 0
    for index in range(len(BANDS)):
        members = [n for n in graph.nodes if band[n] == index]
        if not members:
            continue
        column.update({n: start + depth_of(n) for n in members})
        titles[start] = ", ".join(sorted({PLURALS[n.kind] for n in members}))
        start += 1 + max(depth[n] for n in members)
    return column, titles


def layout(graph: Graph) -> Layout:
    """A layered (Sugiyama) layout by grandalf with the layers fixed to the kind columns: crossings
    reduced by its ordering, long edges routed through slots in the columns they cross. Connected
    components are stacked top to bottom."""
    from grandalf.graphs import Edge, Vertex, graph_core

    column, titles = _columns(graph)
    drawn = [(a, b) for a, b in graph.edges if column[a] < column[b]]
    result = Layout(column, {}, {}, 0.0, titles)
    for nodes in _components(graph.nodes, drawn):
        vertices = {n: Vertex(n) for n in nodes}
        edges = {(a, b): Edge(vertices[a], vertices[b]) for a, b in drawn if a in vertices}
        # graph_core directly: grandalf's Graph() finds components in time quadratic in the graph's size.
        _layout_component(graph_core(list(vertices.values()), list(edges.values())), column, edges, result)
        result.height += ROW_GAP
    result.height -= ROW_GAP if graph.nodes else 0
    return result


def _components(nodes: list[Ref], edges: list[tuple[Ref, Ref]]) -> list[list[Ref]]:
    """Connected components (edges taken both ways), each in `nodes` order, in order of first node."""
    root = {n: n for n in nodes}

    def find(n: Ref) -> Ref:
        while root[n] != n:
            root[n] = root[root[n]]
            n = root[n]
        return n

    for a, b in edges:
        root[find(a)] = find(b)
    groups: dict[Ref, list[Ref]] = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _layout_component(component: Any, column: dict[Ref, int], edges: dict[tuple[Ref, Ref], Any],
                      result: Layout) -> None:
    from grandalf.layouts import Layer, SugiyamaLayout, VertexViewer

    for v in component.sV:
        v.view = VertexViewer(w=NODE_H, h=NODE_W)  # grandalf lays layers top-down: its width is our height
    sugiyama = SugiyamaLayout(component)
    sugiyama.xspace, sugiyama.yspace, sugiyama.alt_e = ROW_GAP, COL_GAP, []
    used = sorted({column[v.data] for v in component.sV})
    rank = {c: i for i, c in enumerate(used)}
    sugiyama.layers = [Layer([]) for _ in used]
    for v in component.sV:
        sugiyama.grx[v].rank = rank[column[v.data]]
        sugiyama.layers[rank[column[v.data]]].append(v)
    for e in component.sE:
        sugiyama.setdummies(e)
    for layer in sugiyama.layers:
        layer.setup(sugiyama)
    sugiyama.initdone = True
    # Its coordinate assignment recurses once per vertex of a column (dummies included).
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * len(sugiyama.grx) + 1000))
    sugiyama.draw(1.5)
    points = [v.view.xy[0] for layer in sugiyama.layers for v in layer]
    offset = result.height - min(points) + NODE_H / 2
    for v in component.sV:
        result.y[v.data] = v.view.xy[0] + offset
    for key, e in edges.items():
        if e in sugiyama.ctrls:
            result.crossings[key] = {used[r]: d.view.xy[0] + offset for r, d in sugiyama.ctrls[e].items()
                                     if r not in (rank[column[key[0]]], rank[column[key[1]]])}
    result.height = max(points) + offset + NODE_H / 2


def _column_x(c: int, columns: list[int]) -> int:
    return PAD + columns.index(c) * (NODE_W + COL_GAP)


def _edge_path(a: Ref, b: Ref, lay: Layout, columns: list[int]) -> str:
    """Right side of `a` to left side of `b`: curves in the gaps between columns, straight through
    each column crossed (at the slot the layout gave the edge there, clear of that column's nodes)."""
    x = _column_x(lay.column[a], columns) + NODE_W
    y = lay.y[a] + TITLE_H
    d = f"M{x},{y:.1f}"
    slots = lay.crossings.get((a, b), {})
    for c in [c for c in columns if lay.column[a] < c < lay.column[b]]:
        nx, ny = _column_x(c, columns), slots.get(c, y - TITLE_H) + TITLE_H
        mid = (x + nx) / 2
        d += f" C{mid:.1f},{y:.1f} {mid:.1f},{ny:.1f} {nx},{ny:.1f} L{nx + NODE_W},{ny:.1f}"
        x, y = nx + NODE_W, ny
    tx, ty = _column_x(lay.column[b], columns) - ARROW, lay.y[b] + TITLE_H
    mid = (x + tx) / 2
    return d + f" C{mid:.1f},{y:.1f} {mid:.1f},{ty:.1f} {tx},{ty:.1f}"


ARROW = 6  # the arrowhead's length: edges end that far before the node, the head reaches it


def render_svg(graph: Graph, href: Any) -> str:
    """The graph as an inline SVG (columns by kind, arrowheads, edges drawn before and so under no
    node they do not join); `href(ref)` gives each node's page URL."""
    lay = layout(graph)
    columns = sorted(set(lay.column.values()))
    width = PAD * 2 + len(columns) * (NODE_W + COL_GAP) - COL_GAP
    height = int(lay.height + TITLE_H + PAD * 2)
    parts = [f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">'
             f'<defs><marker id="arrow" viewBox="0 0 {ARROW} {ARROW}" refX="0" refY="{ARROW / 2}" '
             f'markerWidth="{ARROW}" markerHeight="{ARROW}" markerUnits="userSpaceOnUse" orient="auto">'
             f'<path class="arrowhead" d="M0,0 L{ARROW},{ARROW / 2} L0,{ARROW} z"/></marker></defs>']
    for c, title in lay.titles.items():
        parts.append(f'<text class="column-title" x="{_column_x(c, columns)}" y="{PAD + 8}">{title}</text>')
    for a, b in graph.edges:
        if lay.column[a] < lay.column[b]:
            parts.append(f'<path class="edge" data-from="{escape(a.id)}" data-to="{escape(b.id)}" '
                         f'd="{_edge_path(a, b, lay, columns)}" marker-end="url(#arrow)"/>')
    for node in graph.nodes:
        x, y = _column_x(lay.column[node], columns), int(lay.y[node] + TITLE_H - NODE_H / 2)
        label = node.name if len(node.name) <= 30 else node.name[:29] + "…"
        focus = " focus" if node == graph.focus else ""
        parts.append(
            f'<a href="{escape(href(node))}" class="node-link" data-id="{escape(node.id)}">'
            f'<title>{escape(KIND_SLUGS[node.kind])}: {escape(node.name)}</title>'
            f'<rect class="node kind-{node.kind}{focus}" x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 10}" y="{y + 20}">{escape(label)}</text></a>')
    parts.append("</svg>")
    return "".join(parts)
