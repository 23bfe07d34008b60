"""Kubeflow pipeline on the sample repo: training data -> train a small model -> evaluate.

    python examples/kubeflow/pipeline.py --output driver_training_pipeline.yaml \
        --config-secret repast-feature-store

compiles it to pipeline YAML for the Kubeflow Pipelines UI or `kfp run create`. With
--config-secret, every step that opens the feature store mounts that Secret (the one the
kustomize manifests under deploy/ create) at /etc/repast, where repast finds feature_store.yaml;
without it, pass the `config_path` or `feature_store_yaml` pipeline parameter at run time.

The label is synthetic (the sample repo's statistics are random), so expect accuracy near 0.5:
the pipeline shows the wiring, not a model worth deploying.
"""

# No `from __future__ import annotations`: kfp reads the annotations of component functions.
import argparse

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from repast.kubeflow.components import IMAGE, get_historical_features

FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
            "driver_hourly_stats:avg_daily_trips"]
# Already in the image when built with the `kubeflow` extra; pip finds it and downloads nothing.
SKLEARN = ["scikit-learn>=1.3"]
SECRET_MOUNT = "/etc/repast"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def make_entities(entities: Output[Dataset], rows: int = 400, days: int = 5, seed: int = 7):
    """The entity frame: sample drivers 1001-1005 at past hours, with a (synthetic) label."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    now = pd.Timestamp.now(tz="UTC").floor("h")
    pd.DataFrame({
        "driver_id": rng.integers(1001, 1006, rows),
        "event_timestamp": now - pd.to_timedelta(rng.integers(1, days * 24, rows), unit="h"),
        "trip_completed": rng.integers(0, 2, rows),
    }).to_parquet(entities.path)


@dsl.component(base_image=IMAGE, install_kfp_package=False, packages_to_install=SKLEARN)
def train_model(training_data: Input[Dataset], model: Output[Model], label: str = "trip_completed",
                test_fraction: float = 0.25, seed: int = 7):
    """A logistic regression on every feature column; the test rows are held out."""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    df = pd.read_parquet(training_data.path)
    features = [c for c in df.columns if c not in (label, "driver_id", "event_timestamp")]
    df = df.dropna(subset=features).reset_index(drop=True)
    test = df.sample(frac=test_fraction, random_state=seed)
    train = df.drop(test.index)
    clf = LogisticRegression(max_iter=1000).fit(train[features], train[label])
    joblib.dump(clf, model.path)
    model.metadata.update({"features": features, "label": label, "train_rows": len(train),
                           "framework": "scikit-learn"})


@dsl.component(base_image=IMAGE, install_kfp_package=False, packages_to_install=SKLEARN)
def evaluate_model(training_data: Input[Dataset], model: Input[Model], metrics: Output[Metrics],
                   test_fraction: float = 0.25, seed: int = 7):
    """Accuracy (and ROC AUC when both classes occur) on the rows train_model held out."""
    import joblib
    import pandas as pd
    from sklearn.metrics import accuracy_score, roc_auc_score

    features, label = model.metadata["features"], model.metadata["label"]
    df = pd.read_parquet(training_data.path).dropna(subset=features).reset_index(drop=True)
    test = df.sample(frac=test_fraction, random_state=seed)
    clf = joblib.load(model.path)
    metrics.log_metric("accuracy", float(accuracy_score(test[label], clf.predict(test[features]))))
    if test[label].nunique() == 2:
        metrics.log_metric("roc_auc", float(roc_auc_score(test[label], clf.predict_proba(test[features])[:, 1])))
    metrics.log_metric("test_rows", len(test))


def build_pipeline(config_secret: str = ""):  # type: ignore[no-untyped-def]
    """The pipeline; with `config_secret`, the feature store step mounts that Secret at /etc/repast."""

    @dsl.pipeline(name="repast-driver-training",
                  description="Point-in-time training data from repast, a scikit-learn model, and its metrics.")
    def driver_training(features: list[str] = FEATURES, feature_store_yaml: str = "",  # noqa: B006
                        config_path: str = "", rows: int = 400):
        entities = make_entities(rows=rows)
        training = get_historical_features(entities=entities.outputs["entities"], features=features,
                                           feature_store_yaml=feature_store_yaml, config_path=config_path)
        if config_secret:
            from kfp import kubernetes

            kubernetes.use_secret_as_volume(training, secret_name=config_secret, mount_path=SECRET_MOUNT)
        trained = train_model(training_data=training.outputs["training_data"])
        evaluate_model(training_data=training.outputs["training_data"], model=trained.outputs["model"])

    return driver_training


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compile the repast training pipeline to YAML.")
    parser.add_argument("--output", default="driver_training_pipeline.yaml", help="where to write the YAML")
    parser.add_argument("--config-secret", default="",
                        help="Secret holding feature_store.yaml to mount at /etc/repast (e.g. repast-feature-store)")
    args = parser.parse_args(argv)
    compiler.Compiler().compile(build_pipeline(args.config_secret), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
