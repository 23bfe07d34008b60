"""Launch a training-data job on the Kubeflow Spark Operator and wait for it: what the
`spark_training_data` pipeline component does, as plain functions (the manifest is built and
checked without a cluster; only `launch_and_wait` talks to the Kubernetes API).

The SparkApplication runs `python -m repast.spark training-data` in the repast-spark image
(Dockerfile.spark), with the feature_store.yaml Secret mounted at /etc/repast on the driver and
the executors, as deploy/overlays/spark does.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from repast.config.repo_config import MOUNTED_CONFIG_PATH
from repast.errors import InputError, RepastError

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
DONE_STATES = {"COMPLETED"}
FAILED_STATES = {"FAILED", "SUBMISSION_FAILED", "FAILING", "INVALIDATING"}


def training_data_application(entity_path: str, output_path: str, features: list[str] | None = None,
                              feature_service: str = "", image: str = "repast-spark:0.1.0",
                              service_account: str = "repast-spark", config_secret: str = "repast-feature-store",
                              executors: int = 2, memory: str = "2g", name: str = "") -> dict[str, Any]:
    """The SparkApplication writing the training set of `entity_path` (Parquet) to `output_path`."""
    if bool(features) == bool(feature_service):
        raise InputError("pass either features (a list of 'view:feature' references) or feature_service, "
                         "exactly one of them")
    wanted = ["--feature-service", feature_service] if feature_service else ["--features", ",".join(features or [])]
    secret = {"name": config_secret, "path": MOUNTED_CONFIG_PATH.rsplit("/", 1)[0], "secretType": "Generic"}
    pod = {"cores": 1, "memory": memory, "labels": {"app.kubernetes.io/name": "repast-spark"}, "secrets": [secret]}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SparkApplication",
        "metadata": {"name": name or f"repast-training-{uuid.uuid4().hex[:8]}"},
        "spec": {
            "type": "Python", "pythonVersion": "3", "mode": "cluster", "image": image,
            "imagePullPolicy": "IfNotPresent", "sparkVersion": "4.0.0",
            "mainApplicationFile": "local:///opt/repast/job.py",
            "arguments": ["training-data", "--entity-path", entity_path, *wanted, "--output", output_path],
            "restartPolicy": {"type": "Never"},
            "driver": {**pod, "serviceAccount": service_account},
            "executor": {**pod, "instances": executors},
        },
    }


def launch_and_wait(application: dict[str, Any], namespace: str, timeout_seconds: float = 3600,
                    poll_seconds: float = 10) -> str:
    """Create the SparkApplication in `namespace` and wait until the operator reports it done;
    returns its name. Raises RepastError naming the state and the operator's message on failure."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    name = application["metadata"]["name"]
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, application)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status") or {}
        state = (status.get("applicationState") or {}).get("state", "")
        if state in DONE_STATES:
            return str(name)
        if state in FAILED_STATES:
            message = (status.get("applicationState") or {}).get("errorMessage", "")
            raise RepastError(f"SparkApplication {namespace}/{name} ended in state {state}: {message}".strip())
        time.sleep(poll_seconds)
    raise RepastError(f"SparkApplication {namespace}/{name} did not finish within {timeout_seconds:.0f} s")
