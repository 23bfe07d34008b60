"""The KServe transformer: entity ids in, the predictor's feature tensor out.

The logic (repast.kserve.transformer) runs in-process on the sample repo. kserve itself is not
in the test extra (it pins pandas<3); the `kserve.Model` wrapper is tested only where kserve is
installed (the last test), by the same requests.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from repast.kserve import OnlineFeatureEnricher, TransformerInputError
from repast.store import FeatureStore

FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]


class FixedResponse:
    def __init__(self, values: dict[str, list[Any]]) -> None:
        self.values = values

    def to_dict(self) -> dict[str, list[Any]]:
        return self.values


class FixedSource:
    """Known values for drivers 1 and 2, nothing for any other id."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def get_online_features(self, features: Any, entity_rows: Any, full_feature_names: bool = False) -> Any:
        self.calls.append((features, entity_rows))
        table = {1: (0.5, 0.25, 100), 2: (0.75, 0.5, 200)}
        rows = [table.get(i, (None, None, None)) for i in entity_rows["driver_id"]]
        return FixedResponse({"driver_id": entity_rows["driver_id"],
                              **{n: [r[j] for r in rows] for j, n in enumerate(("conv_rate", "acc_rate",
                                                                                "avg_daily_trips"))}})


@pytest.fixture
def enricher() -> OnlineFeatureEnricher:
    return OnlineFeatureEnricher(FixedSource(), FEATURES, ["driver_id"])


def test_v1_instances_become_feature_rows_in_model_order(enricher: OnlineFeatureEnricher) -> None:
    out = enricher.enrich({"instances": [{"driver_id": 2}, {"driver_id": 1}]})
    assert out == {"instances": [[0.75, 0.5, 200.0], [0.5, 0.25, 100.0]]}


def test_v1_bare_ids_are_accepted_with_one_entity_key(enricher: OnlineFeatureEnricher) -> None:
    assert enricher.enrich({"instances": [1]}) == {"instances": [[0.5, 0.25, 100.0]]}


def test_v2_inputs_become_one_tensor_and_keep_the_request_id(enricher: OnlineFeatureEnricher) -> None:
    out = enricher.enrich({"id": "r-1", "inputs": [{"name": "driver_id", "shape": [2, 1], "datatype": "INT64",
                                                    "data": [[1], [2]]}]})
    assert out == {"id": "r-1", "inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64",
                                            "data": [0.5, 0.25, 100.0, 0.75, 0.5, 200.0]}]}


def test_float_encoded_ids_are_looked_up_as_integers(enricher: OnlineFeatureEnricher) -> None:
    enricher.enrich({"inputs": [{"name": "driver_id", "shape": [1], "datatype": "FP32", "data": [1.0]}]})
    assert enricher.source.calls[-1][1] == {"driver_id": [1]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "message"), [
    ({"instances": [{"driver_id": 1}, {"driver_id": 77}]}, r"instance 1 \(driver_id=77\) has no online features"),
    ({"instances": [{"rider_id": 1}]}, r"instance 0 lacks field\(s\) \['driver_id'\]"),
    ({"instances": []}, "'instances' must be a non-empty list"),
    ({"inputs": [{"name": "rider_id", "data": [1]}]}, r"no input named \['driver_id'\]; its inputs are \['rider_id'\]"),
    ({"inputs": [{"name": "driver_id", "data": 1}]}, "input 'driver_id': 'data' must be a list"),
    ({"instances": [{"driver_id": None}]}, "'driver_id' must be an id"),
    ({"data": [1]}, "neither 'instances' .* nor 'inputs'"),
])
def test_unusable_requests_are_refused_with_the_reason(enricher: OnlineFeatureEnricher, body: dict[str, Any],
                                                      message: str) -> None:
    with pytest.raises(TransformerInputError, match=message):
        enricher.enrich(body)


def test_input_errors_are_4xx_errors_of_the_server_table() -> None:
    from repast.server.errors import status_and_kind

    assert status_and_kind(TransformerInputError("x")) == (400, "invalid_input")


@pytest.fixture
def sample_store(sample_repo: Path) -> FeatureStore:
    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    store.materialize(datetime.now(UTC) - timedelta(days=2), datetime.now(UTC))
    return store


def test_in_process_on_the_sample_repo(sample_store: FeatureStore) -> None:
    enricher = OnlineFeatureEnricher(sample_store, FEATURES, ["driver_id"])
    out = enricher.enrich({"instances": [{"driver_id": 1001}, {"driver_id": 1005}]})
    online = sample_store.get_online_features(FEATURES, {"driver_id": [1001, 1005]}).to_dict()
    assert out["instances"] == [[pytest.approx(float(online[c.split(":")[1]][i])) for c in FEATURES] for i in (0, 1)]
    with pytest.raises(TransformerInputError, match=r"driver_id=4242\) has no online features"):
        enricher.enrich({"instances": [{"driver_id": 4242}]})


def test_request_fields_feed_on_demand_features(sample_store: FeatureStore) -> None:
    enricher = OnlineFeatureEnricher(sample_store, ["driver_hourly_stats:conv_rate",
                                                    "transformed_conv_rate:conv_rate_plus_val1"],
                                     ["driver_id"], request_fields=["val_to_add", "val_to_add_2"])
    (row,) = enricher.enrich({"instances": [{"driver_id": 1002, "val_to_add": 10, "val_to_add_2": 20}]})["instances"]
    assert row[1] == pytest.approx(row[0] + 10)


def test_kserve_model_wraps_the_enricher(enricher: OnlineFeatureEnricher) -> None:
    pytest.importorskip("kserve", reason='not in the test extra (pins pandas<3): pip install "repast[kserve]"')
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput, InferRequest

    from repast.kserve.model import RepastTransformer

    model = RepastTransformer("driver-model", enricher)
    assert asyncio.run(model.preprocess({"instances": [{"driver_id": 1}]})) == {"instances": [[0.5, 0.25, 100.0]]}
    request = InferRequest("driver-model", [InferInput("driver_id", [2], "INT64", [1, 2])], request_id="r")
    out = asyncio.run(model.preprocess(request))
    assert isinstance(out, InferRequest) and out.id == "r"
    assert out.inputs[0].shape == [2, 3] and list(out.inputs[0].data) == [0.5, 0.25, 100.0, 0.75, 0.5, 200.0]
    with pytest.raises(InvalidInput, match="driver_id=3"):
        asyncio.run(model.preprocess({"instances": [{"driver_id": 3}]}))
