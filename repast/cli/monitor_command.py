"""`repast stats`, `repast drift`, `repast skew`: the monitoring checks (repast/monitoring/, docs/monitoring.md).

`drift` and `skew` exit with DRIFT_EXIT when a threshold is crossed (1 stays "the command failed"),
so a CronJob or a pipeline step fails on it.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from repast.cli.common import console, open_store, user_errors
from repast.errors import InputError

DRIFT_EXIT = 3  # a threshold was crossed: distinct from 1 (an error) and 2 (bad usage)
stats_app = typer.Typer(help="Feature statistics, computed in the offline engine and kept by day in the registry.",
                        no_args_is_help=True)
_VIEWS = typer.Option(None, "--views", "-v", metavar="VIEW[,VIEW...]",
                      help="Only these feature views: repeat the option or separate names with commas.")


def _names(values: list[str] | None) -> list[str] | None:
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return names or None


def _number(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


@stats_app.command("compute")
@user_errors
def stats_compute(views: list[str] = _VIEWS,
                  start: str = typer.Option(None, "--start", help="Range start (ISO 8601; UTC if no zone)."),
                  end: str = typer.Option(None, "--end", help="End of the time range, exclusive ('now' allowed)."),
                  window: str = typer.Option(None, "--window",
                                             help="Instead of --start: the window before --end (default now), "
                                                  "e.g. 1d for the last day."),
                  dataset: str = typer.Option(None, "--dataset", help="Measure this saved dataset instead."),
                  served_log: bool = typer.Option(False, "--served-log",
                                                   help="Measure the served-feature log of every logged service."),
                  as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON lines.")) -> None:
    """Compute per feature and UTC day: count, null rate, min/max/mean/stddev, quantiles, histogram or
    top values, distinct count; keep them in the registry (a re-run replaces its days)."""
    from repast.types.timestamps import parse_duration, parse_time

    start_ts, end_ts = parse_time(start, "--start") if start else None, parse_time(end, "--end") if end else None
    if window is not None:
        if start_ts is not None:
            raise InputError("give --start or --window, not both")
        end_ts = end_ts or parse_time("now", "--end")
        start_ts = end_ts - parse_duration(window, "--window")
    frame = open_store().compute_feature_statistics(_names(views), start_ts, end_ts, dataset=dataset,
                                                    served_log=served_log)
    _print_statistics(frame, as_json)


@stats_app.command("show")
@user_errors
def stats_show(views: list[str] = _VIEWS,
               scope: str = typer.Option(None, "--scope", help="source, dataset:NAME or served_log:SERVICE."),
               as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON lines.")) -> None:
    """Print the kept statistics."""
    _print_statistics(open_store().get_feature_statistics(_names(views), scope=scope), as_json)


@stats_app.command("freshness")
@user_errors
def stats_freshness() -> None:
    """Keep today's freshness sample of every online view: the age of its newest online value and of
    its materialization watermark (the web UI draws them over time)."""
    open_store().record_freshness()


def _print_statistics(frame: Any, as_json: bool) -> None:
    if as_json:
        for row in frame.to_dict("records"):
            print(json.dumps(row, default=str))
        return
    table = Table("scope", "view", "feature", "day", "rows", "null rate", "distinct", "min", "mean", "max")
    for r in frame.itertuples():
        table.add_row(r.scope, r.view, r.feature, r.day, str(r.rows), _number(r.null_rate), _number(r.distinct_count),
                      _number(r.min), _number(r.mean), _number(r.max))
    console.print(table)


@user_errors
def drift(reference: str = typer.Option(..., "--reference",
                                        help="dataset:NAME (a saved dataset) or START..END (ISO dates)."),
          window: str = typer.Option("1d", "--window", help="The current window: 30m, 12h, 1d, 2w."),
          end: str = typer.Option("now", "--end", help="End of the current window (ISO 8601 or 'now')."),
          views: list[str] = _VIEWS,
          as_json: bool = typer.Option(False, "--json", help="Print the results as JSON lines.")) -> None:
    """Each feature's drift in the window against the reference: PSI and a KS (numeric) or chi-square
    (categorical) test. Exits 3 when a feature crosses its threshold."""
    from repast.types.timestamps import parse_duration, parse_time

    length, end_ts = parse_duration(window, "--window"), parse_time(end, "--end")
    report = open_store().check_drift(reference, length, end_ts, _names(views))
    rows = [f.to_dict() for f in report.features]
    if as_json:
        for row in rows:
            print(json.dumps({k: v for k, v in row.items() if k not in ("reference", "current")}))
    else:
        table = Table("view", "feature", "test", "PSI", "p-value", "threshold", "rows", "drift")
        for f in report.features:
            table.add_row(f.view, f.feature, f.test, _number(f.psi), _number(f.p_value), _number(f.psi_threshold),
                          str(f.current_rows), "[bold red]DRIFT[/]" if f.drifted else "ok")
        console.print(table)
    if report.drifted:
        console.print(f"{len(report.drifted)} feature(s) drifted against {reference}", highlight=False)
        raise typer.Exit(DRIFT_EXIT)


@user_errors
def skew(sample: int = typer.Option(10_000, "--sample", "-n", min=1, help="Served rows to replay offline."),
         window: str = typer.Option("1d", "--window", help="Served rows of this window: 30m, 12h, 1d."),
         end: str = typer.Option("now", "--end", help="End of the window (ISO 8601 or 'now')."),
         services: list[str] = typer.Option(None, "--services", "-s", metavar="SERVICE[,SERVICE...]",
                                            help="Only these logged feature services."),
         as_json: bool = typer.Option(False, "--json", help="Print the results as JSON lines.")) -> None:
    """Training/serving skew: sample the served-feature log by key hash, recompute the features at the
    logged times offline, compare. Exits 3 when a feature's mismatch rate is above its threshold."""
    from repast.types.timestamps import parse_duration, parse_time

    length, end_ts = parse_duration(window, "--window"), parse_time(end, "--end")
    report = open_store().check_skew(sample, length, end_ts, _names(services))
    if as_json:
        for f in report.features:
            print(json.dumps(f.to_dict()))
    else:
        table = Table("service", "view", "feature", "sampled", "mismatch rate", "mean abs diff", "missing", "extra",
                      "skew")
        for f in report.features:
            table.add_row(f.service, f.view, f.feature, str(f.sampled), _number(f.mismatch_rate),
                          _number(f.mean_abs_diff), str(f.missing), str(f.extra),
                          "[bold red]SKEW[/]" if f.skewed else "ok")
        console.print(table)
    if report.skewed:
        console.print(f"{len(report.skewed)} feature(s) differ between serving and training", highlight=False)
        raise typer.Exit(DRIFT_EXIT)
