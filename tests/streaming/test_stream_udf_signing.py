"""A stream feature view's udf follows the on-demand views' rule (docs/security.md): signed at apply
when `registry.signing_key` is set; `repast stream` with the key refuses an unsigned or altered udf
with one error line, before deserializing it; nothing but the consumer ever deserializes it.

A tampered payload (a pickle that touches a marker file when deserialized) is written into the
registry database as an attacker with write access to it would.
"""

from __future__ import annotations

import base64
import json
import pickle
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from repast import Entity, FeatureStore
from repast.definitions.signing import udf_signature
from tests.e2e.test_on_demand_code import Payload
from tests.streaming.broker import Broker
from tests.streaming.repo import SIGNING_KEY, T0, encode, events, expected_online, online_values, run_cli, write_repo

FAST = ["--metrics-port", "0", "--kafka-option", "session.timeout.ms=6000"]
NO_BROKER = "127.0.0.1:1"  # the refusals come before any connection
VIEW = "driver_trips"


def _add_key(repo: Path) -> None:
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text().replace(
        "registry: data/registry.db", "registry:\n  path: data/registry.db\n  signing_key: ${REPAST_SIGNING_KEY}"))


def _stored(repo: Path) -> dict[str, Any]:
    with sqlite3.connect(repo / "data" / "registry.db") as conn:
        (spec,) = conn.execute("SELECT spec FROM repast_objects WHERE kind = 'feature_view' AND name = ?",
                               (VIEW,)).fetchone()
    return json.loads(spec)  # type: ignore[no-any-return]


def _rewrite(repo: Path, **fields: Any) -> None:
    spec = {**_stored(repo), **fields}
    with sqlite3.connect(repo / "data" / "registry.db") as conn:
        conn.execute("UPDATE repast_objects SET spec = ? WHERE kind = 'feature_view' AND name = ?",
                     (json.dumps(spec), VIEW))


def _tamper(repo: Path, marker: Path) -> None:
    _rewrite(repo, udf_pickle=base64.b64encode(pickle.dumps(Payload(marker))).decode())


def _refused(repo: Path, why: str) -> None:
    result = run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST, env=SIGNING_KEY, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"stream feature view '{VIEW}'" in errors[0] and why in errors[0], result.stderr


def test_a_signed_udf_runs_with_the_key(kafka_broker: Broker, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    topic = f"trips-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, udf=True, signed=True)
    assert _stored(repo)["udf_signature"].startswith("v2:")
    rows = events(200)
    kafka_broker.produce(topic, *encode(rows))
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST, env=SIGNING_KEY)
    monkeypatch.setenv(*next(iter(SIGNING_KEY.items())))
    assert online_values(repo, 20) == expected_online(rows, trips_plus=1)


def test_a_tampered_udf_is_refused_with_the_key_and_never_loaded(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", NO_BROKER, "trips", udf=True, signed=True)
    marker = tmp_path / "code-ran"
    _tamper(repo, marker)
    _refused(repo, "does not match registry.signing_key")
    assert not marker.exists()


def test_an_unsigned_udf_is_refused_with_the_key(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", NO_BROKER, "trips", udf=True)  # applied before a key was configured
    _add_key(repo)
    _refused(repo, "is not signed")


def test_a_rewritten_source_text_is_refused_with_the_key(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", NO_BROKER, "trips", udf=True, signed=True)
    stream = {**_stored(repo)["stream_feature_view"], "udf_source": "def add_one(df):\n    return df\n"}
    _rewrite(repo, stream_feature_view=stream)
    _refused(repo, "does not match registry.signing_key")


def test_an_on_demand_views_signature_does_not_sign_a_stream_udf(tmp_path: Path) -> None:
    """A signature made for an on-demand view of the same name (what a key holder applied there)
    cannot be copied onto the stream view."""
    repo = write_repo(tmp_path / "repo", NO_BROKER, "trips", udf=True, signed=True)
    spec = _stored(repo)
    _rewrite(repo, udf_signature=udf_signature(SIGNING_KEY["REPAST_SIGNING_KEY"], VIEW, spec["udf_pickle"],
                                               spec["stream_feature_view"]["udf_source"]))
    _refused(repo, "does not match registry.signing_key")


def test_apply_with_the_key_signs_a_udf_applied_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = write_repo(tmp_path / "repo", NO_BROKER, "trips", udf=True)
    assert "udf_signature" not in _stored(repo)
    _add_key(repo)
    monkeypatch.setenv(*next(iter(SIGNING_KEY.items())))
    store = FeatureStore(repo)
    assert [(c.op, c.name, c.fields) for c in store.plan_repo()] == [("update", VIEW, ("udf_signature",))]
    store.apply_repo()
    assert store.plan_repo() == []
    udf = FeatureStore(repo).registry.contents().feature_views[VIEW].udf  # type: ignore[attr-defined]
    assert callable(udf)


def _cli_commands() -> list[list[str]]:
    return [["validate"], ["plan"], ["registry-dump"], ["history"], ["feature-views", "list"],
            ["feature-views", "describe", VIEW], ["feature-views", "list-versions", VIEW],
            ["stream-feature-views", "list"], ["stream-feature-views", "describe", VIEW], ["data-sources", "list"],
            ["materialize", "2020-01-01T00:00:00", "2030-01-01T00:00:00"], ["apply"]]


def _sdk_calls() -> list[Any]:
    other = Entity(name="unrelated", join_keys=["unrelated_id"])
    return [lambda s: s.plan([other]), lambda s: s.apply([other]), lambda s: s.list_stream_feature_views(),
            lambda s: s.get_feature_view(VIEW).to_dict(), lambda s: s.list_all_feature_views(),
            lambda s: s.get_online_features([f"{VIEW}:rate"], {"driver_id": [1]}).to_dict()]


def _batch_file(repo: Path) -> None:
    """Rows in the batch source, so that materialize has something to read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (repo / "data" / "trips").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"driver_id": [1], "event_timestamp": pa.array([T0], pa.timestamp("us", "UTC")),
                             "rate": [0.5], "trips": [3]}), repo / "data" / "trips" / "part-0.parquet")


@pytest.mark.parametrize("signed", [False, True], ids=["no-key", "signing-key"])
def test_nothing_but_the_consumer_deserializes_the_udf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       signed: bool) -> None:
    from typer.testing import CliRunner

    from repast.cli.main import app

    repo = write_repo(tmp_path / "repo", NO_BROKER, "trips", udf=True, signed=signed)
    if signed:
        monkeypatch.setenv(*next(iter(SIGNING_KEY.items())))
    _batch_file(repo)
    marker = tmp_path / "code-ran"
    _tamper(repo, marker)
    for call in _sdk_calls():
        call(FeatureStore(repo))
        assert not marker.exists()
    for command in _cli_commands():  # `apply` last: it stores the repo's own udf again
        result = CliRunner().invoke(app, ["--repo", str(repo), *command])
        assert result.exit_code == 0, (command, result.output)
        assert not marker.exists(), f"repast {' '.join(command)} ran the stored udf"
    if not signed:  # the marker does work: the consumer's read of the view loads the (tampered) udf
        _tamper(repo, marker)
        FeatureStore(repo).registry.contents().feature_views[VIEW].udf  # type: ignore[attr-defined]  # noqa: B018
        assert marker.exists()
