"""The spark overlay: SparkApplication resources valid against the documented fields of the
Spark Operator's sparkoperator.k8s.io/v1beta2 API (no CRD server here, so the schema is written
below from the operator's API documentation), running `python -m repast.spark` with the config
Secret mounted, the service account allowed to create executors, and a config repast accepts."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from repast.config.repo_config import MOUNTED_CONFIG_PATH, parse_config
from repast.spark.__main__ import parser
from tests.deploy.test_manifests import one, render

MOUNT_DIR = MOUNTED_CONFIG_PATH.rsplit("/", 1)[0]


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}


_QUANTITY = {"type": ["string", "integer"]}
_ENV = {"type": "array", "items": {"type": "object", "required": ["name"]}}
_SECRETS = {"type": "array", "items": _obj({"name": {"type": "string"}, "path": {"type": "string"},
                                            "secretType": {"enum": ["GCPServiceAccount", "HadoopDelegationToken",
                                                                    "Generic"]}}, ["name", "path", "secretType"])}
_POD = {"cores": {"type": "integer", "minimum": 1}, "coreLimit": {"type": "string"}, "memory": {"type": "string"},
        "memoryOverhead": {"type": "string"}, "labels": {"type": "object"}, "annotations": {"type": "object"},
        "env": _ENV, "envFrom": {"type": "array"}, "secrets": _SECRETS, "volumeMounts": {"type": "array"},
        "serviceAccount": {"type": "string"}, "nodeSelector": {"type": "object"}, "image": {"type": "string"}}
SPARK_APPLICATION_SPEC = _obj({
    "type": {"enum": ["Java", "Scala", "Python", "R"]},
    "pythonVersion": {"enum": ["2", "3"]},
    "mode": {"enum": ["cluster", "client", "in-cluster-client"]},
    "image": {"type": "string"}, "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "imagePullSecrets": {"type": "array"},
    "mainClass": {"type": "string"}, "mainApplicationFile": {"type": "string"},
    "arguments": {"type": "array", "items": {"type": "string"}},
    "sparkVersion": {"type": "string"},
    "sparkConf": {"type": "object", "additionalProperties": {"type": "string"}},
    "hadoopConf": {"type": "object", "additionalProperties": {"type": "string"}},
    "deps": {"type": "object"}, "volumes": {"type": "array"}, "nodeSelector": {"type": "object"},
    "timeToLiveSeconds": {"type": "integer"},
    "restartPolicy": _obj({"type": {"enum": ["Never", "Always", "OnFailure"]},
                           "onFailureRetries": {"type": "integer"}, "onFailureRetryInterval": {"type": "integer"},
                           "onSubmissionFailureRetries": {"type": "integer"},
                           "onSubmissionFailureRetryInterval": {"type": "integer"}}, ["type"]),
    "driver": _obj(_POD), "executor": _obj({**_POD, "instances": {"type": "integer", "minimum": 1}}),
}, ["type", "mode", "sparkVersion", "mainApplicationFile", "driver", "executor"])
SCHEDULED_SPEC = _obj({
    "schedule": {"type": "string"}, "template": SPARK_APPLICATION_SPEC,
    "suspend": {"type": "boolean"}, "concurrencyPolicy": {"enum": ["Allow", "Forbid", "Replace"]},
    "successfulRunHistoryLimit": {"type": "integer"}, "failedRunHistoryLimit": {"type": "integer"},
}, ["schedule", "template"])


def _resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _obj({"apiVersion": {"const": "sparkoperator.k8s.io/v1beta2"}, "kind": {"const": kind},
                 "metadata": {"type": "object"}, "spec": spec}, ["apiVersion", "kind", "metadata", "spec"])


SCHEMAS = {"SparkApplication": _resource("SparkApplication", SPARK_APPLICATION_SPEC),
           "ScheduledSparkApplication": _resource("ScheduledSparkApplication", SCHEDULED_SPEC)}


def applications() -> list[tuple[str, dict[str, Any]]]:
    """(kind, application spec) of the overlay's Spark resources."""
    docs = render("spark")
    return [("SparkApplication", one(docs, "SparkApplication")["spec"]),
            ("ScheduledSparkApplication", one(docs, "ScheduledSparkApplication")["spec"]["template"])]


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_spark_resources_match_the_documented_v1beta2_fields(kind: str) -> None:
    jsonschema.validate(one(render("spark"), kind), SCHEMAS[kind])


def test_schema_rejects_a_field_the_operator_does_not_document() -> None:
    app = one(render("spark"), "SparkApplication")
    app["spec"]["driver"]["serviceAccountName"] = "repast-spark"  # a Pod field, not a driver field
    with pytest.raises(jsonschema.ValidationError, match="serviceAccountName"):
        jsonschema.validate(app, SCHEMAS["SparkApplication"])


@pytest.mark.parametrize("index", [0, 1], ids=["training-data", "materialize-incremental"])
def test_spark_jobs_run_a_repast_spark_command_with_valid_arguments(index: int) -> None:
    _, spec = applications()[index]
    assert spec["type"] == "Python" and spec["mainApplicationFile"].endswith("/repast/job.py")
    args = parser().parse_args(spec["arguments"])
    assert args.command == ("training-data" if index == 0 else "materialize-incremental")


@pytest.mark.parametrize("index", [0, 1], ids=["training-data", "materialize-incremental"])
def test_driver_and_executors_mount_the_config_secret_and_the_driver_may_create_executors(index: int) -> None:
    docs = render("spark")
    _, spec = applications()[index]
    for pod in ("driver", "executor"):
        assert {"name": "repast-feature-store", "path": MOUNT_DIR, "secretType": "Generic"} in spec[pod]["secrets"]
    account = spec["driver"]["serviceAccount"]
    one(docs, "ServiceAccount", account)
    binding = one(docs, "RoleBinding", "repast-spark-driver")
    assert account in [s["name"] for s in binding["subjects"] if s["kind"] == "ServiceAccount"]
    rules = one(docs, "Role", binding["roleRef"]["name"])["rules"]
    assert any("pods" in r["resources"] and "create" in r["verbs"] for r in rules)


def test_spark_overlay_config_selects_the_spark_engine_and_replaces_the_cronjob(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPAST_PG_PASSWORD", "x")
    monkeypatch.setenv("REPAST_REDIS_PASSWORD", "y")
    docs = render("spark")
    secret = one(docs, "Secret", "repast-feature-store")
    text = secret["stringData"]["feature_store.yaml"] if "stringData" in secret else \
        base64.b64decode(secret["data"]["feature_store.yaml"]).decode()
    config = parse_config(yaml.safe_load(text), "spark overlay Secret", Path("/"))
    assert config.offline_store.type == "spark"
    assert not [d for d in docs if d["kind"] == "CronJob"]


def test_kubeflow_spark_component_builds_a_valid_training_application() -> None:
    from repast.kubeflow.spark_launch import training_data_application

    app = training_data_application("s3a://b/entities/", "s3a://b/out.parquet", feature_service="driver_activity")
    jsonschema.validate(app, SCHEMAS["SparkApplication"])
    args = parser().parse_args(app["spec"]["arguments"])
    assert (args.entity_path, args.feature_service, args.output) == \
        ("s3a://b/entities/", "driver_activity", "s3a://b/out.parquet")

