"""The monitoring page's pictures, from the results kept in the registry (repast/monitoring/).

Per feature: its distribution now against the reference (the last drift check's bins), the drift
score (PSI) over time, the null rate over time (statistics of the view's source by day) and the last
skew check; per view: the age of its newest online value over time (freshness samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repast.registry import MonitoringRecord, Registry
from repast.ui.charts import distribution_svg, series_svg

KINDS = ("statistics", "drift", "skew", "freshness")


@dataclass
class FeaturePictures:
    view: str
    feature: str
    drift: dict[str, Any] | None = None  # the last drift check's scores
    distribution: str = ""  # SVG
    drift_over_time: str = ""
    null_rate_over_time: str = ""
    skew: list[dict[str, Any]] = field(default_factory=list)  # the last check, per logged service

    @property
    def anchor(self) -> str:
        return f"f-{self.view}-{self.feature}"


@dataclass
class ViewPictures:
    view: str
    freshness_over_time: str
    latest_age_hours: float | None


def _bins(values: dict[str, Any]) -> tuple[list[str], list[float], list[float]]:
    """(bin labels, reference counts, current counts) of a drift record's distributions."""
    ref, cur = values["reference"], values["current"]
    if "histogram" in ref:
        h, c = ref["histogram"], cur
        edges = h["edges"]
        labels = [f"<{edges[0]:.3g}"] + [f"{edges[i]:.3g}" for i in range(len(h["counts"]))] + [f">{edges[-1]:.3g}"]
        return (labels, [h["below"], *h["counts"], h["above"]], [c.get("below", 0), *c["counts"], c.get("above", 0)])
    labels = [str(v) for v, _ in ref["top_values"]] + ["other"]
    return (labels, [n for _, n in ref["top_values"]] + [ref.get("other_count", 0)],
            [n for _, n in cur["top_values"]] + [cur.get("other_count", 0)])


def _latest(records: list[MonitoringRecord]) -> MonitoringRecord:
    return max(records, key=lambda r: (r.day, r.computed_at))


def _feature_pictures(view: str, feature: str, by_kind: dict[str, list[MonitoringRecord]]) -> FeaturePictures:
    pictures = FeaturePictures(view, feature)
    drift = [r for r in by_kind["drift"] if r.view == view and r.feature == feature]
    if drift:
        last = _latest(drift)
        pictures.drift = {k: last.values[k] for k in ("psi", "test", "p_value", "psi_threshold", "drifted",
                                                      "current_rows", "reference_rows")}
        pictures.drift.update(reference=last.scope, day=last.day)
        labels, reference, current = _bins(last.values)
        pictures.distribution = distribution_svg(f"{view}:{feature} now vs {last.scope}", labels, reference, current)
        same = sorted((r for r in drift if r.scope == last.scope), key=lambda r: r.day)
        pictures.drift_over_time = series_svg(f"{view}:{feature} drift over time", [
            (r.day, float(r.values["psi"])) for r in same], "PSI", float(last.values["psi_threshold"]))
    nulls = sorted((r for r in by_kind["statistics"] if r.view == view and r.feature == feature
                    and r.scope == "source" and r.day != "all"), key=lambda r: r.day)
    if nulls:
        pictures.null_rate_over_time = series_svg(f"{view}:{feature} null rate over time", [
            (r.day, float(r.values["null_rate"])) for r in nulls], "null rate")
    skew = [r for r in by_kind["skew"] if r.view == view and r.feature == feature]
    for scope in sorted({r.scope for r in skew}):
        pictures.skew.append(_latest([r for r in skew if r.scope == scope]).values)
    return pictures


def monitoring_pictures(registry: Registry, project: str) -> dict[str, Any]:
    """`features` and `views` with their pictures, for the monitoring page."""
    by_kind = {kind: registry.monitoring_records(kind, project) for kind in KINDS}
    measured = sorted({(r.view, r.feature) for kind in ("statistics", "drift", "skew") for r in by_kind[kind]})
    features = [_feature_pictures(v, f, by_kind) for v, f in measured]
    views = []
    for view in sorted({r.view for r in by_kind["freshness"]}):
        samples = sorted((r for r in by_kind["freshness"] if r.view == view), key=lambda r: r.day)
        points = [(r.day, r.values["newest_value_age_seconds"] / 3600) for r in samples
                  if r.values.get("newest_value_age_seconds") is not None]
        ttl = samples[-1].values.get("ttl_seconds") or 0
        views.append(ViewPictures(view, series_svg(f"{view} freshness over time", points, "age (h)",
                                                   ttl / 3600 if ttl else None) if points else "",
                                  points[-1][1] if points else None))
    return {"features": [f for f in features if f.distribution or f.null_rate_over_time or f.skew],
            "views": views}
