"""The server's get-online-features answer is, byte for byte, Feast's JSON shape of what the SDK
returns: the serving path's shortcuts (hand-checked bodies, shared timestamp lists, metrics added
up per second) change nothing a client sees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest

from repast.cli.scaffold import init_repo
from repast.jobs.online_read import OnlineResponse
from repast.store import FeatureStore
from tests.e2e.test_server_harness import ServerProcess, run_repast

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(microsecond=0)


def feast_body(response: OnlineResponse) -> bytes:
    """Feast's response JSON, built the plain way: every value, status and timestamp in turn."""
    statuses, stamps = response.statuses(), response.event_timestamps()
    results = [{"values": values, "statuses": [str(s) for s in statuses[name]],
                "event_timestamps": ["1970-01-01T00:00:00Z" if t is None else t.isoformat().replace("+00:00", "Z")
                                     for t in stamps[name]]}
               for name, values in response.to_dict().items()]
    return orjson.dumps({"metadata": {"feature_names": response.feature_names}, "results": results},
                        option=orjson.OPT_SERIALIZE_NUMPY)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeatureStore, httpx.Client]]:
    repo: Path = init_repo(tmp_path_factory.mktemp("bytes") / "repo", "bytes")
    assert run_repast(repo, "apply").returncode == 0
    store = FeatureStore(repo)
    store.materialize(NOW - timedelta(days=8), NOW, ["driver_hourly_stats"])
    # A row with a null value and one older than the view's ttl, next to fresh complete rows.
    store.write_to_online_store("driver_hourly_stats", pd.DataFrame({
        "driver_id": [7001, 7002], "conv_rate": pd.Series([None, 0.5], dtype="float32"),
        "acc_rate": pd.Series([0.25, 0.75], dtype="float32"), "avg_daily_trips": [3, 4],
        "event_timestamp": [NOW, NOW - timedelta(days=3)], "created": [NOW, NOW]}))
    with ServerProcess(repo, "--no-access-log") as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield store, http


REQUESTS: list[dict[str, Any]] = [
    {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}},
    {"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips",
                  "driver_hourly_stats:acc_rate"], "entities": {"driver_id": [1001, 9999, 7001, 7002, 1003]}},
    {"features": ["driver_hourly_stats:acc_rate"], "entities": {"driver_id": [7002, 7001]},
     "full_feature_names": True},
    {"feature_service": "driver_activity_v1",
     "entities": {"driver_id": [1002, 7001], "val_to_add": [1, 2], "val_to_add_2": [10, 20]}},
]


@pytest.mark.parametrize("body", REQUESTS, ids=["one", "mixed", "full-names", "service"])
def test_the_answer_is_feasts_shape_of_the_sdk_response_byte_for_byte(
        served: tuple[FeatureStore, httpx.Client], body: dict[str, Any]) -> None:
    store, http = served
    answer = http.post("/get-online-features", json=body)
    assert answer.status_code == 200, answer.text
    features: Any = body.get("features") or store.get_feature_service(body["feature_service"])
    expected = feast_body(store.get_online_features(features, body["entities"],
                                                    body.get("full_feature_names", False)))
    assert answer.content == expected
