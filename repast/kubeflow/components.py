"""Kubeflow Pipelines v2 components: apply, materialize, and training data from an entity Dataset.

Each is a lightweight Python component whose body calls `repast.kubeflow.tasks`, run in the
repast image (which has repast and kfp installed, so nothing is pip-installed at run time). The
image is `$REPAST_KFP_IMAGE` when this module is imported, else DEFAULT_IMAGE.

The store's configuration reaches a step as `feature_store_yaml` (text; `${VAR}` filled from
the step's environment), `config_path` (a file or repo directory), or neither: then the step
finds it like a notebook does ($REPAST_FEATURE_STORE_YAML, the Secret mounted at
/etc/repast/feature_store.yaml). Never pass credentials as parameters: they would be stored in
the pipeline spec and the run history.
"""

# No `from __future__ import annotations`: kfp reads the annotations of component functions.
import os

from repast.errors import require_module

require_module("kfp", "kubeflow")

from kfp import dsl  # noqa: E402
from kfp.dsl import Dataset, Input, Output  # noqa: E402

DEFAULT_IMAGE = "repast:0.1.0"
IMAGE = os.environ.get("REPAST_KFP_IMAGE", DEFAULT_IMAGE)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def apply_repo(repo_path: str, feature_store_yaml: str = "", config_path: str = "") -> str:
    """Make the registry match the definition files under repo_path; returns the changes (JSON)."""
    from repast.kubeflow.tasks import apply_repo as run

    return run(repo_path=repo_path, feature_store_yaml=feature_store_yaml, config_path=config_path)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def materialize(start_date: str, end_date: str = "", feature_views: list[str] = [],  # noqa: B006
                feature_store_yaml: str = "", config_path: str = "", repo_path: str = "") -> None:
    """Load the latest rows with start_date <= event time < end_date (ISO-8601; empty = now) online."""
    from repast.kubeflow.tasks import materialize as run

    run(start_date=start_date, end_date=end_date, feature_views=feature_views,
        feature_store_yaml=feature_store_yaml, config_path=config_path, repo_path=repo_path)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def materialize_incremental(end_date: str = "", feature_views: list[str] = [],  # noqa: B006
                            feature_store_yaml: str = "", config_path: str = "", repo_path: str = "") -> None:
    """Materialize every view (or those named) from where its last run ended up to end_date."""
    from repast.kubeflow.tasks import materialize_incremental as run

    run(end_date=end_date, feature_views=feature_views, feature_store_yaml=feature_store_yaml,
        config_path=config_path, repo_path=repo_path)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_drift(reference: str, window: str = "1d", end_date: str = "", feature_views: list[str] = [],  # noqa: B006
                fail_on_drift: bool = True, feature_store_yaml: str = "", config_path: str = "",
                repo_path: str = "") -> str:
    """Drift of the last `window` against `reference` (dataset:NAME or START..END); the step fails on
    drift unless fail_on_drift is false. Returns the per-feature results (JSON)."""
    from repast.kubeflow.tasks import check_drift as run

    return run(reference=reference, window=window, end_date=end_date, feature_views=feature_views,
               fail_on_drift=fail_on_drift, feature_store_yaml=feature_store_yaml, config_path=config_path,
               repo_path=repo_path)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def get_historical_features(entities: Input[Dataset], training_data: Output[Dataset],
                            features: list[str] = [], feature_service: str = "",  # noqa: B006
                            full_feature_names: bool = False, feature_store_yaml: str = "",
                            config_path: str = "", repo_path: str = "") -> None:
    """Point-in-time correct training data: the entity Parquet joined with the features asked for.

    `entities` has the join keys and an `event_timestamp` column (plus any labels, kept as they
    are); pass either `features` ("view:feature" references) or `feature_service`.
    """
    from repast.kubeflow.tasks import get_historical_features as run

    meta = run(entity_path=entities.path, output_path=training_data.path, features=features,
               feature_service=feature_service, full_feature_names=full_feature_names,
               feature_store_yaml=feature_store_yaml, config_path=config_path, repo_path=repo_path)
    training_data.metadata.update(meta)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def spark_training_data(entity_path: str, output_path: str, namespace: str, features: list[str] = [],  # noqa: B006
                        feature_service: str = "", image: str = "repast-spark:0.1.0",
                        service_account: str = "repast-spark", executors: int = 2,
                        timeout_seconds: int = 3600) -> str:
    """Training data on the Spark Operator: a SparkApplication joins the entity Parquet at
    entity_path (s3a://, gs://, ...) and writes output_path; returns the application's name."""
    from repast.kubeflow.spark_launch import launch_and_wait, training_data_application

    app = training_data_application(entity_path, output_path, features, feature_service, image=image,
                                    service_account=service_account, executors=executors)
    return launch_and_wait(app, namespace, timeout_seconds)


__all__ = ["DEFAULT_IMAGE", "IMAGE", "apply_repo", "get_historical_features", "materialize",
           "materialize_incremental", "spark_training_data"]
