"""Drift: each feature's distribution in a current window against a reference.

The reference is a saved dataset (`dataset:NAME`, typically the training set) or a fixed time range
of the views' sources (`2024-01-01..2024-02-01`); its statistics come from the registry when kept,
else they are computed (and kept). The current window is measured in the offline engine on the
reference's own bins: a numeric feature's counts between the reference's histogram edges (plus the
values below and above them), a categorical feature's counts of the reference's top values (plus
all others together). From the two binned distributions:

- PSI = sum((cur - ref) * ln(cur / ref)) over the bins' shares (each floored at 1e-4);
- numeric: the two-sample Kolmogorov-Smirnov statistic at the bin edges (a lower bound of the
  unbinned one) with its asymptotic p-value; categorical: the chi-square test of the 2 x k table.

A feature drifts when its PSI reaches `drift_psi_threshold`, or, when `drift_p_value_threshold`
is set, when the test's p-value is below it. Each threshold is read from the feature's Field tags,
then its view's tags, then feature_store.yaml's `monitoring:` section.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from repast.errors import InputError, MissingExtra
from repast.monitoring.sources import file_engine, saved_dataset
from repast.monitoring.statistics import (
    STATISTICS,
    Measured,
    category_counts,
    compute,
    histogram_counts,
    sql_engine,
    view_features,
)
from repast.monitoring.statistics_sql import OTHER
from repast.registry import MonitoringRecord, Registry
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.config.repo_config import MonitoringConfig, RepoConfig
    from repast.definitions import FeatureView, RepoContents
    from repast.offline.base import OfflineEngine
    from repast.offline.sql_base import SQLOfflineEngine

DRIFT = "drift"
_FLOOR = 1e-4


def psi(reference: list[float], current: list[float]) -> float:
    """Population stability index of two binned distributions (counts, same bins)."""
    ref_total, cur_total = sum(reference) or 1.0, sum(current) or 1.0
    total = 0.0
    for r, c in zip(reference, current, strict=True):
        p, q = max(r / ref_total, _FLOOR), max(c / cur_total, _FLOOR)
        total += (q - p) * math.log(q / p)
    return total


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:
        raise MissingExtra('the drift tests need scipy: pip install "repast[monitoring]"') from None
    return stats


def ks_binned(reference: list[float], current: list[float]) -> tuple[float, float]:
    """(KS statistic at the bin edges, asymptotic p-value) of two binned samples."""
    n, m = sum(reference), sum(current)
    if not n or not m:
        return 0.0, 1.0
    d = fr = fc = 0.0
    for r, c in zip(reference, current, strict=True):
        fr, fc = fr + r / n, fc + c / m
        d = max(d, abs(fr - fc))
    return d, float(_scipy_stats().kstwobign.sf(math.sqrt(n * m / (n + m)) * d))


def chi_square(reference: list[float], current: list[float]) -> tuple[float, float]:
    """(chi-square statistic, p-value) of the 2 x k table, empty categories left out."""
    kept = [(r, c) for r, c in zip(reference, current, strict=True) if r or c]
    if len(kept) < 2 or not sum(r for r, _ in kept) or not sum(c for _, c in kept):
        return 0.0, 1.0
    result = _scipy_stats().chi2_contingency([[r for r, _ in kept], [c for _, c in kept]])
    return float(result[0]), float(result[1])


def thresholds(view: FeatureView | None, feature: str, settings: MonitoringConfig) -> tuple[float, float | None]:
    """(PSI threshold, p-value threshold or None): the field's tags, then the view's, then the config."""
    tags: list[dict[str, str]] = []
    if view is not None:
        tags = [f.tags for f in view.features if f.name == feature] + [view.tags]

    def read(name: str, default: float | None) -> float | None:
        for t in tags:
            if name in t:
                try:
                    return float(t[name])
                except ValueError:
                    raise InputError(f"feature view '{view.name if view else ''}': tag {name}={t[name]!r} is not a "
                                     "number") from None
        return default

    psi_threshold = read("drift_psi_threshold", settings.drift_psi_threshold)
    assert psi_threshold is not None
    return psi_threshold, read("drift_p_value_threshold", settings.drift_p_value_threshold)


@dataclass(frozen=True)
class Reference:
    label: str  # "dataset:NAME" or "START..END"
    records: dict[tuple[str, str], MonitoringRecord]  # (view, feature) -> statistics


def parse_range(text: str) -> tuple[datetime, datetime]:
    start, sep, end = text.partition("..")
    try:
        if not sep:
            raise ValueError
        bounds = as_utc(datetime.fromisoformat(start)), as_utc(datetime.fromisoformat(end))
    except ValueError:
        raise InputError(f"reference {text!r} is neither dataset:NAME nor a time range START..END "
                         "(ISO dates, e.g. 2024-01-01..2024-02-01)") from None
    if bounds[1] <= bounds[0]:
        raise InputError(f"reference {text!r}: the range's start must be before its end")
    return bounds


def _in_range(engine: SQLOfflineEngine, view: FeatureView, start: datetime, end: datetime) -> Callable[[], str]:
    return lambda: engine.in_range_sql(view, start, end)


def load_reference(registry: Registry, engine: SQLOfflineEngine, config: RepoConfig, reference: str,
                   views: list[FeatureView]) -> Reference:
    """The reference's statistics: kept ones for a saved dataset, else computed now (and kept)."""
    contents = registry.contents()
    if reference.startswith("dataset:"):
        kept = {(r.view, r.feature): r for r in registry.monitoring_records(STATISTICS) if r.scope == reference}
        if not kept:
            reader = file_engine(engine, config)
            records = compute(reader, saved_dataset(reader, reference[len("dataset:"):], contents,
                                                    str(config.repo_path)), config.monitoring)
            registry.record_monitoring(records)
            kept = {(r.view, r.feature): r for r in records}
        return Reference(reference, kept)
    start, end = parse_range(reference)
    records = []
    for view in views:
        measured = Measured(f"range:{reference}", _in_range(engine, view, start, end), "event_timestamp",
                            view_features(view), by_day=False)
        records += compute(engine, measured, config.monitoring)
    registry.record_monitoring(records)
    return Reference(reference, {(r.view, r.feature): r for r in records})


@dataclass(frozen=True)
class FeatureDrift:
    view: str
    feature: str
    numeric: bool
    psi: float
    test: str  # "ks" | "chi2"
    statistic: float
    p_value: float
    psi_threshold: float
    p_value_threshold: float | None
    reference_rows: int
    current_rows: int
    drifted: bool
    reference: dict[str, Any]  # the binned distributions compared (for the web UI)
    current: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class DriftReport:
    reference: str
    start: datetime
    end: datetime
    features: list[FeatureDrift]

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.drifted]


def _binned(ref: dict[str, Any], current: dict[tuple[str, int], Any], i: int) -> tuple[list[float], list[float],
                                                                                         dict[str, Any]]:
    """(reference counts, current counts, the current distribution) on the reference's bins."""
    if ref["numeric"]:
        h = ref["histogram"]
        cur = current.get(("all", i)) or {"edges": h["edges"], "counts": [0] * len(h["counts"]), "below": 0,
                                          "above": 0}
        return ([h["below"], *h["counts"], h["above"]], [cur["below"], *cur["counts"], cur["above"]], cur)
    values = [v for v, _ in ref["top_values"]]
    seen = dict((v, n) for v, n in current.get(("all", i), []))
    cur_top = [[v, seen.get(v, 0)] for v in values]
    return ([n for _, n in ref["top_values"]] + [ref["other_count"]], [n for _, n in cur_top] + [seen.get(OTHER, 0)],
            {"top_values": cur_top, "other_count": seen.get(OTHER, 0)})


def _measure_window(engine: SQLOfflineEngine, view: FeatureView, refs: list[MonitoringRecord], start: datetime,
                    end: datetime) -> tuple[Measured, dict[tuple[str, int], Any], dict[tuple[str, int], Any], int]:
    wanted = {r.feature for r in refs}
    features = [f for f in view_features(view) if f.feature in wanted]
    measured = Measured("window", lambda: engine.in_range_sql(view, start, end), "event_timestamp", features,
                        by_day=False)
    by_name = {r.feature: r.values for r in refs}
    numeric = [i for i, f in enumerate(features) if by_name[f.feature]["numeric"] and "histogram" in by_name[f.feature]]
    edges = {i: (by_name[features[i].feature]["histogram"]["edges"][0],
                 by_name[features[i].feature]["histogram"]["edges"][-1]) for i in numeric}
    bins = {len(by_name[features[i].feature]["histogram"]["counts"]) for i in numeric}
    histograms: dict[tuple[str, int], Any] = {}
    for b in bins:  # one scan per bin count (one, unless the config changed between runs)
        chosen = [i for i in numeric if len(by_name[features[i].feature]["histogram"]["counts"]) == b]
        histograms.update(histogram_counts(engine, measured, chosen, edges, b))
    categorical = [i for i, f in enumerate(features) if "top_values" in by_name[f.feature]]
    categories = [[v for v, _ in by_name[features[i].feature]["top_values"]] for i in categorical]
    counts = category_counts(engine, measured, categorical, 0, categories) if categorical else {}
    rows = engine.run_query(lambda: f"SELECT count(*) AS n FROM ({engine.in_range_sql(view, start, end)}) AS __w")
    return measured, histograms, counts, int(rows.column(0)[0].as_py())


def check_drift(registry: Registry, engine: OfflineEngine, config: RepoConfig, reference: str,
                window: timedelta, end: datetime | None = None, views: list[str] | None = None) -> DriftReport:
    """Drift of every measured feature of `views` (default: every view) over [end - window, end)
    against `reference`; the results are kept in the registry (kind "drift", day of `end`)."""
    registry.check_writable("record drift results")
    sql = sql_engine(engine)
    contents: RepoContents = registry.contents()
    end = as_utc(end or datetime.now(UTC))
    start = end - window
    chosen = [contents.get("feature_view", n) for n in views] if views else \
        [v for _, v in sorted(contents.feature_views.items()) if v.features]
    ref = load_reference(registry, sql, config, reference, chosen)
    results = []
    for view in chosen:
        refs = [r for (v, _), r in sorted(ref.records.items()) if v == view.name and r.rows]
        if not refs:
            continue
        measured, histograms, counts, rows = _measure_window(sql, view, refs, start, end)
        for i, f in enumerate(measured.features):
            r = next(x for x in refs if x.feature == f.feature)
            results.append(_feature_drift(view, r, i, histograms if r.values["numeric"] else counts, rows, config))
    registry.record_monitoring([MonitoringRecord(DRIFT, reference, d.view, d.feature, f"{end:%Y-%m-%d}", start, end,
                                                 d.current_rows, d.to_dict(), datetime.now(UTC)) for d in results])
    return DriftReport(reference, start, end, results)


def _feature_drift(view: FeatureView, ref: MonitoringRecord, i: int, current: dict[tuple[str, int], Any],
                   rows: int, config: RepoConfig) -> FeatureDrift:
    values = ref.values
    reference_counts, current_counts, distribution = _binned(values, current, i)
    score = psi(reference_counts, current_counts)
    test, (statistic, p_value) = ("ks", ks_binned(reference_counts, current_counts)) if values["numeric"] else \
        ("chi2", chi_square(reference_counts, current_counts))
    psi_threshold, p_threshold = thresholds(view, ref.feature, config.monitoring)
    drifted = sum(current_counts) > 0 and (score >= psi_threshold
                                           or (p_threshold is not None and p_value < p_threshold))
    shown: dict[str, Any] = {k: values[k] for k in ("histogram", "top_values", "other_count") if k in values}
    return FeatureDrift(view.name, ref.feature, bool(values["numeric"]), score, test, statistic, p_value, psi_threshold,
                        p_threshold, ref.rows, rows, drifted, shown, distribution)
