"""`repast aggregations check VIEW --sample N`: online tiles against training data (docs/aggregations.md)."""

from __future__ import annotations

import typer

from repast.cli.common import console, open_store, user_errors
from repast.errors import InputError

aggregations_app = typer.Typer(help="Windowed aggregations: check that online values equal training data.",
                               no_args_is_help=True)


@aggregations_app.command("check")
@user_errors
def check(view: str = typer.Argument(..., help="Name of a feature view with aggregations."),
          sample: int = typer.Option(100, "--sample", "-n", help="How many entity keys to sample (those with "
                                                                  "events in the windows ending at the time)."),
          at: str = typer.Option(None, "--at", help="Compare at this time (ISO 8601, UTC if no zone; default now)."),
          seed: int = typer.Option(None, "--seed", help="Seed of the key sample (default: a new sample each run).")
          ) -> None:
    """Compare online values of VIEW's aggregated features with the offline computation at the same time, for
    a sample of entity keys; print the mismatch rate per feature. Exits 1 when any value differs."""
    from repast.jobs.aggregation_check import check_aggregations
    from repast.types.timestamps import parse_time

    store = open_store()
    when = parse_time(at, "--at") if at else None
    report = check_aggregations(store.registry, store.offline_engine, store.online_store, view, sample, when, seed)
    console.print(f"feature view {report.view} at {report.at.isoformat()}: {report.keys} entity key(s) sampled")
    if report.keys == 0:
        console.print("no entity has events in the windows ending then: nothing to compare")
        return
    width = max(len(f.feature) for f in report.features)
    for f in report.features:
        line = f"  {f.feature:<{width}}  {f.mismatches}/{f.compared} mismatched ({f.mismatch_rate:.1%})"
        console.print(line + (f"  e.g. {f.example}" if f.example else ""), markup=False, highlight=False,
                      soft_wrap=True)
    if not report.consistent:
        bad = sum(1 for f in report.features if f.mismatches)
        raise InputError(f"{bad} aggregated feature(s) of '{view}' differ between online and offline")

