"""What the Kubeflow Pipelines components do, as plain functions that need no kfp.

A component body is one call into this module, so the logic is tested without kfp and the
source kfp ships to the cluster stays a few lines. Every function takes the store's
configuration the same three ways (see `open_store`), never credentials as parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from repast.config.repo_config import load_config, parse_config
from repast.errors import ConfigError, InputError
from repast.store import FeatureStore
from repast.types.timestamps import parse_duration, parse_time


def open_store(feature_store_yaml: str = "", config_path: str = "", repo_path: str = "") -> FeatureStore:
    """The feature store a pipeline step works on.

    - `feature_store_yaml`: the text of a feature_store.yaml (`${VAR}` placeholders are filled
      from the step's environment, so secrets come from a Kubernetes Secret, not the pipeline);
    - else `config_path`: a feature_store.yaml file or a feature repo directory;
    - else discovery as in a notebook: $REPAST_FEATURE_STORE_YAML, the mounted Secret at
      /etc/repast/feature_store.yaml, then the current directory.

    `repo_path`, when given, is the feature repo directory: where `apply` finds the definition
    files and where relative paths in the configuration resolve.
    """
    if feature_store_yaml.strip() and config_path:
        raise ConfigError("pass either feature_store_yaml (the text) or config_path (a file), not both")
    if feature_store_yaml.strip():
        try:
            data = yaml.safe_load(feature_store_yaml)
        except yaml.YAMLError as e:
            raise ConfigError(f"feature_store_yaml parameter: malformed YAML: {e}") from None
        base = Path(repo_path or ".").resolve()
        return FeatureStore(config=parse_config(data, "feature_store_yaml parameter", base))
    if config_path:
        config = load_config(config_path)
        if repo_path:
            config = config.model_copy(update={"repo_path": Path(repo_path).resolve()})
        return FeatureStore(config=config)
    return FeatureStore(repo_path=repo_path or None)


def apply_repo(repo_path: str, feature_store_yaml: str = "", config_path: str = "") -> str:
    """Make the registry match the definitions under `repo_path`; returns the changes as JSON."""
    if not repo_path:
        raise InputError("repo_path: the feature repo directory holding the definition files is required")
    store = open_store(feature_store_yaml, config_path, repo_path)
    changes = store.apply_repo()
    return json.dumps([c.to_dict() for c in changes])


def materialize(start_date: str, end_date: str = "", feature_views: list[str] | None = None,
                feature_store_yaml: str = "", config_path: str = "", repo_path: str = "") -> None:
    """Load the latest rows with start_date <= event time < end_date into the online store."""
    start = parse_time(start_date or "now", "start_date")
    end = parse_time(end_date or "now", "end_date")
    if start >= end:
        raise InputError(f"start_date ({start:%Y-%m-%dT%H:%M:%SZ}) must be before end_date ({end:%Y-%m-%dT%H:%M:%SZ})")
    store = open_store(feature_store_yaml, config_path, repo_path)
    store.materialize(start, end, feature_views or None)


def materialize_incremental(end_date: str = "", feature_views: list[str] | None = None,
                            feature_store_yaml: str = "", config_path: str = "", repo_path: str = "") -> None:
    """Materialize each view from where its last run ended (or end - ttl) up to end_date."""
    store = open_store(feature_store_yaml, config_path, repo_path)
    store.materialize_incremental(parse_time(end_date or "now", "end_date"), feature_views or None)


def get_historical_features(entity_path: str, output_path: str, features: list[str] | None = None,
                            feature_service: str = "", full_feature_names: bool = False,
                            feature_store_yaml: str = "", config_path: str = "",
                            repo_path: str = "") -> dict[str, Any]:
    """Point-in-time join of the entity Parquet at `entity_path`; writes Parquet to `output_path`.

    Exactly one of `features` (references such as "driver_hourly_stats:conv_rate") and
    `feature_service` (a registered service's name). Returns metadata for the artifact.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    if bool(features) == bool(feature_service):
        raise InputError("pass either features (a list of 'view:feature' references) or feature_service "
                         "(a registered FeatureService name), exactly one of them")
    store = open_store(feature_store_yaml, config_path, repo_path)
    wanted: Any = store.get_feature_service(feature_service) if feature_service else list(features or [])
    entity_df = pd.read_parquet(entity_path)
    result = store.get_historical_features(entity_df, wanted, full_feature_names=full_feature_names)
    table = result.to_arrow()
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, output_path)
    return {"rows": table.num_rows, "columns": table.column_names,
            "features": feature_service or ",".join(features or []), "project": store.project}


def check_drift(reference: str, window: str = "1d", end_date: str = "", feature_views: list[str] | None = None,
                fail_on_drift: bool = True, feature_store_yaml: str = "", config_path: str = "",
                repo_path: str = "") -> str:
    """Drift of the window before end_date against `reference` (dataset:NAME or START..END); returns
    the per-feature results as JSON. With `fail_on_drift`, a crossed threshold raises ThresholdCrossed
    (the step fails, so a retraining pipeline can gate on it)."""
    from repast.errors import ThresholdCrossed

    length, end = parse_duration(window, "window"), parse_time(end_date or "now", "end_date")
    store = open_store(feature_store_yaml, config_path, repo_path)
    report = store.check_drift(reference, length, end, feature_views or None)
    results = [{k: v for k, v in f.to_dict().items() if k not in ("reference", "current")} for f in report.features]
    if fail_on_drift and report.drifted:
        named = ", ".join(f"{f.view}:{f.feature} (PSI {f.psi:.3f}, threshold {f.psi_threshold})"
                          for f in report.drifted)
        raise ThresholdCrossed(f"{len(report.drifted)} feature(s) drifted against {reference}: {named}")
    return json.dumps(results)
