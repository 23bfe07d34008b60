"""Code stored in the registry runs only where a view is run, and with a signing key only if signed.

A tampered function payload (a pickle that touches a marker file when deserialized) is written
into the registry database as an attacker with write access to it would. Listing, describing,
dumping and starting the server must not run it; serving the view does (no key) or refuses it
naming the view (with `registry.signing_key`).
"""

from __future__ import annotations

import base64
import json
import pathlib
import pickle
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from repast import FeatureStore
from repast.errors import DefinitionError
from tests.e2e.test_server_harness import ServerProcess, run_repast

ODFV = "transformed_conv_rate"
FEATURES = [f"{ODFV}:conv_rate_plus_val1"]
ENTITIES = {"driver_id": [1001], "val_to_add": [1], "val_to_add_2": [2]}


class Payload:
    """Unpickling this touches `marker`: the stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return pathlib.Path(self.marker).touch, ()  # type: ignore[return-value]


def _tamper(repo: Path, marker: Path) -> None:
    payload = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    with sqlite3.connect(repo / "data" / "registry.db") as conn:
        (spec,) = conn.execute("SELECT spec FROM repast_objects WHERE kind = 'on_demand_feature_view'").fetchone()
        spec = json.loads(spec)
        spec["udf_pickle"] = payload
        conn.execute("UPDATE repast_objects SET spec = ? WHERE kind = 'on_demand_feature_view'", (json.dumps(spec),))


def _use_signing_key(repo: Path) -> dict[str, str]:
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text().replace(
        "registry: data/registry.db", "registry:\n  path: data/registry.db\n  signing_key: ${REPAST_SIGNING_KEY}"))
    return {"REPAST_SIGNING_KEY": "s3cret-key"}


@pytest.fixture
def tampered(sample_repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    assert run_repast(sample_repo, "apply").returncode == 0
    marker = tmp_path / "code-ran"
    _tamper(sample_repo, marker)
    return sample_repo, marker


@pytest.mark.parametrize("command", [["feature-views", "list"], ["on-demand-feature-views", "list"],
                                     ["on-demand-feature-views", "list", "--json"],
                                     ["on-demand-feature-views", "describe", ODFV], ["registry-dump"],
                                     ["feature-services", "describe", "driver_activity_v1"], ["plan"]])
def test_listing_describing_and_dumping_never_run_stored_code(tampered: tuple[Path, Path],
                                                              command: list[str]) -> None:
    repo, marker = tampered
    result = run_repast(repo, *command)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_describe_shows_the_stored_source(tampered: tuple[Path, Path]) -> None:
    repo, _ = tampered
    described = json.loads(run_repast(repo, "on-demand-feature-views", "describe", ODFV).stdout)
    assert "def transformed_conv_rate" in described["udf_source"] and "udf_pickle" not in described


@pytest.mark.slow
def test_server_start_does_not_run_stored_code(tampered: tuple[Path, Path]) -> None:
    repo, marker = tampered
    with ServerProcess(repo, "--no-access-log") as server:
        assert httpx.get(server.url + "/health").status_code == 200
        assert httpx.post(server.url + "/get-online-features", json={
            "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}).status_code == 200
    assert not marker.exists()


def test_without_a_key_the_process_that_runs_the_view_loads_it(tampered: tuple[Path, Path]) -> None:
    repo, marker = tampered
    with pytest.raises(Exception):  # noqa: B017  (the payload is not a function: calling it fails)
        FeatureStore(repo).get_online_features(FEATURES, ENTITIES)
    assert marker.exists()


def test_a_signed_function_runs_with_the_key(sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    store = FeatureStore(sample_repo)
    store.apply_repo()
    store.write_to_online_store("driver_hourly_stats", {
        "driver_id": [1001], "conv_rate": [0.5], "acc_rate": [0.5], "avg_daily_trips": [1],
        "event_timestamp": [datetime.now(UTC)]})
    assert FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES).to_dict()["conv_rate_plus_val1"] \
        == [1.5]


def test_a_tampered_function_is_refused_with_the_key_naming_the_view(sample_repo: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    FeatureStore(sample_repo).apply_repo()
    marker = tmp_path / "code-ran"
    _tamper(sample_repo, marker)
    with pytest.raises(DefinitionError, match=f"on-demand feature view '{ODFV}'.*does not match"):
        FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES)
    assert not marker.exists()


def test_an_unsigned_function_is_refused_with_the_key(sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FeatureStore(sample_repo).apply_repo()  # applied before a key was configured
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DefinitionError, match=f"on-demand feature view '{ODFV}'.*not signed"):
        FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES)


def test_apply_with_the_key_signs_functions_applied_without_it(sample_repo: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    FeatureStore(sample_repo).apply_repo()
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    store = FeatureStore(sample_repo)
    assert [(c.op, c.name, c.fields) for c in store.plan_repo()] == [("update", ODFV, ("udf_signature",))]
    store.apply_repo()
    assert store.plan_repo() == []
    assert FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES).to_dict()["conv_rate_plus_val1"] \
        == [None]  # runs (no stored driver row: conv_rate is null)
