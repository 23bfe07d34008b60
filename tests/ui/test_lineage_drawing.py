"""The lineage drawing says what the JSON API says (issue 27): every edge drawn joins the nodes the API
names, with an arrowhead at its target, passes under no node, and each kind has its own column."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from tests.ui.conftest import PROJECT, ROOT, api

SVG = "{http://www.w3.org/2000/svg}"
KIND_ORDER = ["data_source", "feature_view", "on_demand_feature_view", "feature_service"]
GRAPHS = ["", "/feature-services/driver_activity_v1", "/feature-views/driver_hourly_stats",
          "/data-sources/driver_stats_push_source", "/entities/driver", "/features/driver_hourly_stats:conv_rate",
          "/on-demand-feature-views/transformed_conv_rate"]


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    def strictly_inside(self, px: float, py: float) -> bool:
        return self.x + 1 < px < self.x + self.w - 1 and self.y + 1 < py < self.y + self.h - 1


def drawing(client: TestClient, path: str) -> tuple[dict[str, Box], list[tuple[str, str, str, str | None]]]:
    # The project's lineage page, or an object's page (which draws the graph around it).
    page = client.get(f"{ROOT}/projects/{PROJECT}{path or '/lineage'}")
    assert page.status_code == 200
    svg = ET.fromstring(re.search(r"<svg class=\"lineage\".*?</svg>", page.text, re.S).group(0))  # type: ignore[union-attr]
    nodes = {}
    for link in svg.iter(f"{SVG}a"):
        rect = link.find(f"{SVG}rect")
        assert rect is not None
        nodes[link.get("data-id", "")] = Box(*(float(rect.get(k, "0")) for k in ("x", "y", "width", "height")))
    edges = [(p.get("data-from", ""), p.get("data-to", ""), p.get("d", ""), p.get("marker-end"))
             for p in svg.iter(f"{SVG}path") if p.get("class") == "edge"]
    return nodes, edges


def points_along(d: str) -> list[tuple[float, float]]:
    """Points every few pixels along an SVG path of M, L and C commands."""
    out: list[tuple[float, float]] = []
    pos = (0.0, 0.0)
    for cmd, args in re.findall(r"([MLC])([^MLC]*)", d):
        nums = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if cmd == "M":
            pos = (nums[0], nums[1])
            out.append(pos)
        elif cmd == "L":
            end = (nums[0], nums[1])
            out += [(pos[0] + (end[0] - pos[0]) * t / 50, pos[1] + (end[1] - pos[1]) * t / 50) for t in range(51)]
            pos = end
        else:
            (c1x, c1y, c2x, c2y, ex, ey) = nums
            for i in range(51):
                t = i / 50
                u = 1 - t
                out.append((u**3 * pos[0] + 3 * u * u * t * c1x + 3 * u * t * t * c2x + t**3 * ex,
                            u**3 * pos[1] + 3 * u * u * t * c1y + 3 * u * t * t * c2y + t**3 * ey))
            pos = (ex, ey)
    return out


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p or "project")
def test_every_drawn_edge_joins_the_nodes_the_api_names(client: TestClient, path: str) -> None:
    graph = api(client, f"/projects/{PROJECT}{path}/lineage")
    nodes, edges = drawing(client, path)
    assert set(nodes) == {n["id"] for n in graph["nodes"]}
    assert sorted((a, b) for a, b, _, _ in edges) == sorted((e["from"], e["to"]) for e in graph["edges"])
    for a, b, d, marker in edges:
        points = points_along(d)
        (sx, sy), (ex, ey) = points[0], points[-1]
        src, dst = nodes[a], nodes[b]
        assert sx == pytest.approx(src.x + src.w) and src.y < sy < src.y + src.h, f"{a} -> {b} starts off {a}"
        assert dst.x - 10 <= ex < dst.x and dst.y < ey < dst.y + dst.h, f"{a} -> {b} ends off {b}"
        assert marker == "url(#arrow)", f"{a} -> {b} has no arrowhead"


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p or "project")
def test_no_edge_passes_under_a_node(client: TestClient, path: str) -> None:
    nodes, edges = drawing(client, path)
    for a, b, d, _ in edges:
        for node, box in nodes.items():
            hit = [p for p in points_along(d) if box.strictly_inside(*p)]
            assert not hit, f"edge {a} -> {b} runs under {node} at {hit[0]}"


def test_each_kind_has_its_own_column_left_to_right(client: TestClient) -> None:
    nodes, _ = drawing(client, "")
    xs: dict[str, set[float]] = {}
    for node, box in nodes.items():
        xs.setdefault(node.split("/")[0], set()).add(box.x)
    for kind in ("feature_view", "on_demand_feature_view", "feature_service"):
        assert len(xs[kind]) == 1, f"{kind} nodes in several columns: {xs[kind]}"
    ordered = [xs[k] for k in KIND_ORDER]
    for left, right in zip(ordered, ordered[1:], strict=False):
        assert max(left) < min(right)
    pushed = nodes["data_source/driver_stats_push_source"]
    assert pushed.x < min(xs["feature_view"])  # a push source is a source: never in the feature-view column
