"""The Kubernetes manifests: every overlay renders with `kubectl kustomize`, every built-in
resource validates against Kubernetes 1.30 (offline, kubernetes-validate), and the wiring holds:
the Secret each pod mounts exists, holds a feature_store.yaml repast accepts, every ${VAR} in it
is set in the pod, probes and security settings are there, and the PodDefault is what a Kubeflow
notebook needs."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from repast.config.repo_config import ENV_CONFIG_PATH, MOUNTED_CONFIG_PATH, parse_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ["embedded", "postgres", "redis-online", "kubeflow", "s3-redis", "gcs-redis", "stream"]
K8S_VERSION = "1.30.0"
CONFIG_SECRET = "repast-feature-store"
MOUNT_DIR = str(Path(MOUNTED_CONFIG_PATH).parent)
CUSTOM_KINDS = {"PodDefault", "InferenceService", "VirtualService"}
SERVER = "repast-feature-server"
UI = "repast-ui"
UI_PREFIX = "/repast/"


@cache
def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    done = subprocess.run([kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    workload = one(docs, kind, name or (SERVER if kind == "Deployment" else None))
    spec = workload["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else workload["spec"]
    return spec["template"]["spec"]  # type: ignore[no-any-return]


def secret_config(docs: list[dict[str, Any]], secret_name: str) -> str:
    import base64

    secret = one(docs, "Secret", secret_name)
    if "stringData" in secret:
        return secret["stringData"]["feature_store.yaml"]  # type: ignore[no-any-return]
    return base64.b64decode(secret["data"]["feature_store.yaml"]).decode()


def config_vars(text: str) -> set[str]:
    """The ${VAR} placeholders in the values of a feature_store.yaml (comments aside)."""
    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    return {m for s in strings(yaml.safe_load(text)) for m in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", s)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_builtin_resource_validates_against_kubernetes_1_30(overlay: str) -> None:
    import kubernetes_validate

    docs = render(overlay)
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret", "CronJob"}
    for doc in docs:
        if doc["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_lands_in_the_overlay_namespace(overlay: str) -> None:
    namespaces = {d["metadata"].get("namespace") for d in render(overlay)}
    assert len(namespaces) == 1 and None not in namespaces


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_feature_server_has_probes_resources_and_runs_non_root_read_only(overlay: str) -> None:
    spec = pod_spec(render(overlay), "Deployment")
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["command"][:1] == ["repast"] and "serve" in container["command"]
    assert {"name": "http", "containerPort": 6566} in container["ports"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_mount_the_config_secret_and_set_every_variable_it_uses(overlay: str, kind: str) -> None:
    docs = render(overlay)
    spec = pod_spec(docs, kind)
    volumes = {v["name"]: v for v in spec["volumes"]}
    (container,) = spec["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == MOUNT_DIR)
    assert volumes[mount["name"]]["secret"]["secretName"] == CONFIG_SECRET
    assert container["command"][:3] == ["repast", "--repo", MOUNTED_CONFIG_PATH]
    env = {e["name"] for e in container.get("env", [])}
    assert config_vars(secret_config(docs, CONFIG_SECRET)) <= env
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert "/tmp" in writable


def test_the_cronjob_runs_materialize_incremental_one_at_a_time() -> None:
    cron = one(render("postgres"), "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pod_spec(render("postgres"), "CronJob")["containers"]
    assert container["command"][-1] == "materialize-incremental"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_secret_is_a_feature_store_yaml_repast_accepts(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = secret_config(render(overlay), CONFIG_SECRET)
    for var in config_vars(text):
        monkeypatch.setenv(var, "secret-value")
    config = parse_config(yaml.safe_load(text), f"{overlay} Secret", Path("/"))
    assert config.project == "driver_ranking"
    assert "secret-value" not in text


def test_overlays_choose_their_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    def backends(overlay: str) -> tuple[str, str, str]:
        text = secret_config(render(overlay), CONFIG_SECRET)
        for var in config_vars(text):
            monkeypatch.setenv(var, "x")
        c = parse_config(yaml.safe_load(text), overlay, Path("/"))
        return c.registry_url().split(":")[0], c.offline_store.type, c.online_store.type

    assert backends("embedded") == ("sqlite", "duckdb", "sqlite")
    assert backends("postgres") == ("postgresql+psycopg", "postgres", "postgres")
    assert backends("redis-online") == ("postgresql+psycopg", "postgres", "redis")
    assert backends("s3-redis") == ("s3", "duckdb", "redis")
    assert backends("gcs-redis") == ("gs", "duckdb", "redis")


@pytest.mark.parametrize(("overlay", "annotation"), [("s3-redis", "eks.amazonaws.com/role-arn"),
                                                     ("gcs-redis", "iam.gke.io/gcp-service-account")])
def test_cloud_overlays_get_storage_access_from_workload_identity_not_keys(overlay: str, annotation: str) -> None:
    docs = render(overlay)
    account = one(docs, "ServiceAccount", "repast")
    assert account["metadata"]["annotations"][annotation]
    for kind in ("Deployment", "CronJob"):
        assert pod_spec(docs, kind)["serviceAccountName"] == "repast"
    text = yaml.safe_dump_all(docs)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "private_key"):
        assert key not in text


def test_embedded_data_lives_on_the_claim_and_does_not_scale_out() -> None:
    docs = render("embedded")
    claim = one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    for kind in ("Deployment", "CronJob"):
        data = next(v for v in pod_spec(docs, kind)["volumes"] if v["name"] == "data")
        assert data == {"name": "data", "persistentVolumeClaim": {"claimName": claim}}
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_and_autoscaler_point_at_the_feature_server(overlay: str) -> None:
    docs = render(overlay)
    deployment = one(docs, "Deployment", SERVER)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(docs, "Service", SERVER)
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_kubeflow_poddefault_mounts_the_config_secret_into_notebooks() -> None:
    docs = render("kubeflow")
    pod_default = one(docs, "PodDefault", "repast-feature-store")
    assert pod_default["apiVersion"] == "kubeflow.org/v1alpha1"
    spec = pod_default["spec"]
    assert spec["selector"]["matchLabels"] == {"repast-feature-store": "true"}
    assert spec["desc"]
    (volume,) = spec["volumes"]
    assert volume["secret"]["secretName"] == CONFIG_SECRET
    one(docs, "Secret", CONFIG_SECRET)  # the Secret exists in the notebooks' namespace
    (mount,) = spec["volumeMounts"]
    assert (mount["name"], mount["mountPath"], mount["readOnly"]) == (volume["name"], MOUNT_DIR, True)
    env = {e["name"]: e for e in spec["env"]}
    assert env[ENV_CONFIG_PATH]["value"] == MOUNTED_CONFIG_PATH
    assert config_vars(secret_config(docs, CONFIG_SECRET)) <= set(env)


def test_kubeflow_client_poddefault_mounts_a_config_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render("kubeflow")
    spec = one(docs, "PodDefault", "repast-online-client")["spec"]
    (volume,) = spec["volumes"]
    text = secret_config(docs, volume["secret"]["secretName"])
    config = parse_config(yaml.safe_load(text), "client config", Path("/"))
    assert config.registry_config.registry_type == "remote"
    assert config.online_store.type == "remote"
    service = one(docs, "Service", SERVER)
    url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert config.registry_config.path == url and config.online_store.path == url
    assert not config_vars(text) and "postgresql" not in text
    assert {e["name"]: e.get("value") for e in spec["env"]} == {ENV_CONFIG_PATH: MOUNTED_CONFIG_PATH}
    assert spec["volumeMounts"][0]["mountPath"] == MOUNT_DIR


def test_kserve_inference_service_runs_the_transformer_with_the_client_config() -> None:
    docs = [d for d in yaml.safe_load_all((DEPLOY / "kserve" / "inferenceservice.yaml").read_text()) if d]
    isvc = one(docs, "InferenceService")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] == "sklearn"
    (container,) = isvc["spec"]["transformer"]["containers"]
    assert container["command"] == ["python", "-m", "repast.kserve"]
    args = dict(zip(container["args"][::2], container["args"][1::2], strict=True))
    assert args["--entity_keys"] == "driver_id"
    assert args["--features"].split(",") == ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
                                             "driver_hourly_stats:avg_daily_trips"]
    volumes = {v["name"]: v for v in isvc["spec"]["transformer"]["volumes"]}
    volume = volumes[container["volumeMounts"][0]["name"]]
    assert volume["secret"]["secretName"] == "repast-client-config"
    assert {"name": ENV_CONFIG_PATH, "value": MOUNTED_CONFIG_PATH} in container["env"]
    assert container["securityContext"]["runAsNonRoot"] is True


def test_dockerfile_runs_repast_serve_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["repast", "serve"]' in text
    assert f"REPAST_FEATURE_STORE_YAML={MOUNTED_CONFIG_PATH}" in text


# ---- the web UI in the kubeflow overlay --------------------------------------------------------

def test_kubeflow_ui_runs_repast_ui_read_only_under_the_prefix() -> None:
    docs = render("kubeflow")
    spec = pod_spec(docs, "Deployment", UI)
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["command"] == ["repast", "--repo", MOUNTED_CONFIG_PATH, "ui"]
    args = dict(zip(container["args"][::2], container["args"][1::2], strict=False))
    assert args["--root-path"] == UI_PREFIX.rstrip("/")
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == MOUNT_DIR)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mount["name"]]["secret"]["secretName"] == CONFIG_SECRET
    env = {e["name"] for e in container["env"]}
    assert config_vars(secret_config(docs, CONFIG_SECRET)) <= env


def test_kubeflow_ui_service_selects_the_ui_pods() -> None:
    docs = render("kubeflow")
    labels = one(docs, "Deployment", UI)["spec"]["template"]["metadata"]["labels"]
    service = one(docs, "Service", UI)
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_istio_routes_the_prefix_on_the_kubeflow_gateway_to_the_ui_service() -> None:
    docs = render("kubeflow")
    vs = one(docs, "VirtualService", UI)
    assert vs["apiVersion"].startswith("networking.istio.io/")
    assert vs["spec"]["gateways"] == ["kubeflow/kubeflow-gateway"]
    (route,) = vs["spec"]["http"]
    assert route["match"] == [{"uri": {"prefix": UI_PREFIX}}]
    assert route["rewrite"] == {"uri": "/"}
    (dest,) = route["route"]
    service = one(docs, "Service", UI)
    namespace = service["metadata"]["namespace"]
    assert dest["destination"]["host"] == f"{UI}.{namespace}.svc.cluster.local"
    assert dest["destination"]["port"]["number"] == service["spec"]["ports"][0]["port"]


def test_the_dashboard_menu_link_opens_the_ui_prefix() -> None:
    import json

    link = json.loads((DEPLOY / "overlays" / "kubeflow" / "dashboard-menu-link.json").read_text())
    assert link["type"] == "item" and link["link"] == UI_PREFIX
    assert link["text"] and link["icon"].startswith("icons:")


OFFLINE_SERVER = "repast-offline-server"


def test_kubeflow_offline_server_serves_flight_with_the_full_config_and_a_probe() -> None:
    docs = render("kubeflow")
    spec = pod_spec(docs, "Deployment", OFFLINE_SERVER)
    (container,) = spec["containers"]
    assert container["command"] == ["repast", "--repo", MOUNTED_CONFIG_PATH, "serve-offline"]
    assert {"name": "flight", "containerPort": 8815} in container["ports"]
    assert container["readinessProbe"]["tcpSocket"] == {"port": "flight"}
    assert container["livenessProbe"]["tcpSocket"] == {"port": "flight"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == MOUNT_DIR)
    assert volumes[mount["name"]]["secret"]["secretName"] == CONFIG_SECRET
    assert config_vars(secret_config(docs, CONFIG_SECRET)) <= {e["name"] for e in container["env"]}
    service = one(docs, "Service", OFFLINE_SERVER)
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": OFFLINE_SERVER}
    assert service["spec"]["ports"][0]["targetPort"] == "flight"


def test_kubeflow_remote_client_poddefault_mounts_an_all_remote_config(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render("kubeflow")
    spec = one(docs, "PodDefault", "repast-remote-client")["spec"]
    (volume,) = spec["volumes"]
    text = secret_config(docs, volume["secret"]["secretName"])
    config = parse_config(yaml.safe_load(text), "all-remote client config", Path("/"))
    assert config.registry_config.registry_type == "remote"
    assert config.offline_store.type == "remote" and config.online_store.type == "remote"
    offline = one(docs, "Service", OFFLINE_SERVER)
    assert (config.offline_store.host, config.offline_store.port) == (offline["metadata"]["name"],
                                                                      offline["spec"]["ports"][0]["port"])
    server = one(docs, "Service", SERVER)
    assert config.registry_config.path == f"{SERVER}:{server['spec']['ports'][0]['port']}"  # Feast's shape
    assert not config_vars(text) and "postgresql" not in text
    assert spec["volumeMounts"][0]["mountPath"] == MOUNT_DIR


@pytest.mark.parametrize("kustomization", sorted(DEPLOY.glob("**/kustomization.yaml")), ids=lambda p: p.parent.name)
def test_no_overlay_uses_a_deprecated_kustomize_field(kustomization: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    assert "patchesStrategicMerge" not in yaml.safe_load(kustomization.read_text())
    done = subprocess.run([kubectl, "kustomize", str(kustomization.parent)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "deprecated" not in done.stderr.lower(), done.stderr


STREAM = "repast-stream"


def test_stream_consumer_replicas_share_partitions_with_ready_probes_and_a_grace_period() -> None:
    docs = render("stream")
    deployment = one(docs, "Deployment", STREAM)
    assert deployment["spec"]["replicas"] >= 2  # one consumer group: the replicas share the partitions
    spec = pod_spec(docs, "Deployment", STREAM)
    (container,) = spec["containers"]
    assert container["command"] == ["repast", "--repo", MOUNTED_CONFIG_PATH, "stream"]
    args = container["args"]
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0"
    port = int(args[args.index("--metrics-port") + 1])
    assert {"name": "metrics", "containerPort": port} in container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert spec["terminationGracePeriodSeconds"] >= 30  # SIGTERM: finish the batch, commit, leave
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    dead = args[args.index("--dead-letters") + 1]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert any(dead.startswith(path + "/") for path in writable)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == MOUNT_DIR)
    assert volumes[mount["name"]]["secret"]["secretName"] == CONFIG_SECRET
    assert config_vars(secret_config(docs, CONFIG_SECRET)) <= {e["name"] for e in container["env"]}
