"""The monitoring overlay: the checks CronJob runs commands the CLI accepts with the config it needs,
and every metric the PrometheusRule's alerts read is one the feature server exports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from repast.config.repo_config import MOUNTED_CONFIG_PATH
from tests.deploy.test_manifests import CONFIG_SECRET, K8S_VERSION, MOUNT_DIR, config_vars, one, render, secret_config

CRONJOB = "repast-monitoring-checks"


def containers() -> list[dict[str, Any]]:
    cron = one(render("monitoring"), "CronJob", CRONJOB)
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_the_overlay_validates_and_keeps_everything_in_its_namespace() -> None:
    import kubernetes_validate

    docs = render("monitoring")
    assert {d["metadata"].get("namespace") for d in docs} == {"repast"}
    for doc in docs:
        if doc["kind"] != "PrometheusRule":
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert one(docs, "PrometheusRule")["apiVersion"] == "monitoring.coreos.com/v1"


def test_the_checks_run_once_a_day_without_retrying_a_drift() -> None:
    cron = one(render("monitoring"), "CronJob", CRONJOB)
    job = cron["spec"]["jobTemplate"]["spec"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert (job["backoffLimit"], job["template"]["spec"]["restartPolicy"]) == (0, "Never")
    assert [c["name"] for c in containers()] == ["statistics", "freshness", "drift", "skew"]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_each_check_mounts_the_config_and_sets_every_variable_it_uses(index: int) -> None:
    docs = render("monitoring")
    container = containers()[index]
    assert container["command"][:3] == ["repast", "--repo", MOUNTED_CONFIG_PATH]
    assert any(m["mountPath"] == MOUNT_DIR and m["readOnly"] for m in container["volumeMounts"])
    volumes = one(docs, "CronJob", CRONJOB)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "secret": {"secretName": CONFIG_SECRET}} in volumes
    env = {e["name"] for e in container["env"]}
    assert config_vars(secret_config(docs, CONFIG_SECRET)) <= env
    for variable in re.findall(r"\$\((\w+)\)", " ".join(container["command"])):
        assert variable in env


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_each_check_is_a_command_the_cli_accepts(index: int) -> None:
    import typer.main

    from repast.cli.main import app

    command: Any = typer.main.get_command(app)
    words = containers()[index]["command"][3:]
    while hasattr(command, "commands"):  # a group: descend by the next word
        command, words = command.commands[words[0]], words[1:]
    known = {opt for p in command.params for opt in p.opts}
    assert {w for w in words if w.startswith("--")} <= known


def test_every_metric_the_alerts_read_is_exported_by_the_feature_server(tmp_path: Path) -> None:
    from tests.monitoring.test_metrics import scrape
    from tests.monitoring.test_skew import RIDERS, serve, serving_store

    store = serving_store(tmp_path)
    serve(store, RIDERS)
    store.check_skew(window=timedelta(hours=1))
    now = datetime.now(UTC)
    store.check_drift(f"{now - timedelta(days=1):%Y-%m-%dT%H:%M}..{now:%Y-%m-%dT%H:%M}", timedelta(hours=3), now)
    exported = {name for name, _ in scrape(store)}
    rules = one(render("monitoring"), "PrometheusRule")["spec"]["groups"][0]["rules"]
    read = {m for r in rules for m in re.findall(r"\b(repast_\w+)", r["expr"])}
    assert read and read <= exported, read - exported


def test_the_feature_server_and_the_skew_check_share_the_served_log_on_a_read_write_many_claim() -> None:
    docs = render("monitoring")
    claim = one(docs, "PersistentVolumeClaim", "repast-feature-log")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # several server pods, and the CronJob's, on any node

    def log_mount(pod: dict[str, Any], container: str) -> str:
        volumes = {v["name"] for v in pod["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName")
                   == "repast-feature-log"}
        mounts = [m for c in pod["containers"] if c["name"] == container for m in c["volumeMounts"]
                  if m["name"] in volumes]
        assert len(mounts) == 1 and not mounts[0].get("readOnly"), mounts  # both write: spools, then Parquet
        return mounts[0]["mountPath"]  # type: ignore[no-any-return]

    server = one(docs, "Deployment", "repast-feature-server")["spec"]["template"]["spec"]
    checks = one(docs, "CronJob", CRONJOB)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert log_mount(server, "feature-server") == log_mount(checks, "skew") == "/var/lib/repast/feature-log"
