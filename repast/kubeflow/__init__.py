"""repast on Kubeflow Pipelines (`pip install "repast[kubeflow]"`).

`repast.kubeflow.components` holds the kfp v2 components (apply_repo, materialize,
materialize_incremental, get_historical_features, and check_drift, which fails the step on drift);
`repast.kubeflow.tasks` the plain functions they run. The components are importable from here
too; importing them needs kfp.
"""

from __future__ import annotations

from typing import Any

_COMPONENTS = ("apply_repo", "materialize", "materialize_incremental", "get_historical_features",
               "spark_training_data", "check_drift")


def __getattr__(name: str) -> Any:
    # Lazy, so `repast.kubeflow.tasks` works without kfp installed.
    if name in _COMPONENTS:
        from repast.kubeflow import components

        return getattr(components, name)
    raise AttributeError(f"module 'repast.kubeflow' has no attribute {name!r}")


__all__ = list(_COMPONENTS)
