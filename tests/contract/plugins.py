"""Which backends each contract suite runs on, taken from the one plugin table (repast/plugins/table.py).

Every class of a kind runs its kind's suite (once, whatever its names in the table), once per
variant (a SQL registry on SQLite and on PostgreSQL), unless NOT_IN_SUITE says why not: a new
backend added to the table gets the whole suite, or must state here why it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from repast.plugins.table import OFFLINE, ONLINE, PLUGINS, REGISTRY

# (kind, type) -> why that type does not run the kind's contract suite.
NOT_IN_SUITE = {
    (ONLINE, "remote"): "not implemented, because a thin client of the feature server is read-only: it cannot "
                        "write the rows the suite reads (tests/kubeflow/test_remote_stores.py covers it)",
    (REGISTRY, "remote"): "not implemented, because a thin client of the feature server is read-only: it cannot "
                          "apply (tests/kubeflow/test_remote_stores.py covers it)",
}
# (kind, type) -> the variants the suite runs, each a fixture id the suite knows how to set up.
VARIANTS = {
    (REGISTRY, "sql"): ["sqlite", "postgres"],
    (REGISTRY, "object"): ["s3", "gcs"],
    (OFFLINE, "duckdb"): ["duckdb", "duckdb-s3", "duckdb-gcs"],
}
# A variant that needs a server is marked with it, so it skips (or, in CI, fails) without it.
SERVER_MARKS = {"postgres": pytest.mark.postgres, "redis": pytest.mark.redis}


def suite_params(kind: str) -> list[Any]:
    """pytest params for the contract suite of `kind`: every registered type, or why not."""
    params = []
    seen: set[str] = set()
    for type_name, target in PLUGINS[kind].items():
        if target in seen:  # another name for a class already in the suite (Feast's `file`)
            continue
        seen.add(target)
        reason = NOT_IN_SUITE.get((kind, type_name))
        if reason is not None:
            params.append(pytest.param(type_name, marks=pytest.mark.skip(reason=reason), id=type_name))
            continue
        for variant in VARIANTS.get((kind, type_name), [type_name]):
            marks = [SERVER_MARKS[variant]] if variant in SERVER_MARKS else []
            params.append(pytest.param(variant, marks=marks, id=variant))
    return params


H = TypeVar("H")


def harness_for(harnesses: dict[str, H], variant: str, where: str) -> H:
    """The suite's set-up for `variant`; a variant without one fails loudly (never another backend)."""
    try:
        return harnesses[variant]
    except KeyError:
        raise LookupError(f"no contract-suite harness for '{variant}': add one to {where}") from None


def suite_variants(kind: str) -> set[str]:
    """Every variant the suite of `kind` runs (skipped types included: they still name themselves)."""
    return {p.values[0] for p in suite_params(kind) if not any(m.name == "skip" for m in p.marks)}


Harness = Callable[..., Any]
