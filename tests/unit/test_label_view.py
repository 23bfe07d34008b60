"""LabelView: labels from several labellers, read online and point-in-time offline like a feature view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import ConflictPolicy, Entity, FeatureStore, Field, FileSource, LabelView, PushSource
from repast.data_source import PushMode
from repast.errors import DefinitionError
from repast.types import Int64, String

T0 = datetime(2024, 5, 1, tzinfo=UTC)
driver = Entity(name="driver", join_keys=["driver_id"])


def label_view(repo: Path, **kwargs: object) -> LabelView:
    path = repo / "data" / "labels.parquet"
    pq.write_table(pa.table({"driver_id": pa.array([], pa.int64()), "is_safe": pa.array([], pa.int64()),
                             "labeler": pa.array([], pa.string()),
                             "event_timestamp": pa.array([], pa.timestamp("us", tz="UTC"))}), path)
    source = PushSource(name="label_push", batch_source=FileSource(name="labels", path=str(path),
                                                                   timestamp_field="event_timestamp"))
    args: dict[str, object] = {"name": "safety_labels", "entities": [driver], "source": source,
                               "schema": [Field(name="is_safe", dtype=Int64), Field(name="labeler", dtype=String)],
                               "labeler_field": "labeler", "conflict_policy": ConflictPolicy.LAST_WRITE_WINS, **kwargs}
    return LabelView(**args)  # type: ignore[arg-type]


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    fs.apply([driver, label_view(sample_repo)])
    return fs


def labels(rows: list[tuple[int, int, str, datetime]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["driver_id", "is_safe", "labeler", "event_timestamp"])


def test_the_latest_label_wins_online_whoever_wrote_it(store: FeatureStore) -> None:
    store.push("label_push", labels([(1001, 1, "human", T0), (1001, 0, "llm_judge", T0 + timedelta(minutes=5))]))
    store.push("label_push", labels([(1001, 1, "scanner", T0 - timedelta(minutes=5))]))  # older: ignored
    out = store.get_online_features(["safety_labels:is_safe", "safety_labels:labeler"], {"driver_id": [1001]})
    assert out.to_dict() == {"driver_id": [1001], "is_safe": [0], "labeler": ["llm_judge"]}


def test_labels_are_point_in_time_correct_offline(store: FeatureStore) -> None:
    store.push("label_push", labels([(1001, 1, "human", T0), (1001, 0, "llm_judge", T0 + timedelta(hours=1))]),
               to=PushMode.ONLINE_AND_OFFLINE)
    entity_df = pd.DataFrame({"driver_id": [1001, 1001, 1001],
                              "event_timestamp": [T0 - timedelta(minutes=1), T0 + timedelta(minutes=30),
                                                  T0 + timedelta(hours=2)]})
    joined = store.get_historical_features(entity_df, ["safety_labels:is_safe", "safety_labels:labeler"]).to_arrow()
    assert joined.column("labeler").to_pylist() == [None, "human", "llm_judge"]


def test_a_label_view_is_registered_and_read_back_as_one(store: FeatureStore) -> None:
    view = store.get_label_view("safety_labels")
    assert (view.labeler_field, view.conflict_policy) == ("labeler", ConflictPolicy.LAST_WRITE_WINS)
    assert [v.name for v in store.list_label_views()] == ["safety_labels"]


def test_conflict_policies_repast_does_not_resolve_are_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(DefinitionError, match="MAJORITY_VOTE is not supported by repast"):
        label_view(tmp_path, conflict_policy=ConflictPolicy.MAJORITY_VOTE)


def test_the_labeler_field_must_be_in_the_schema(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(DefinitionError, match="labeler_field 'annotator' is not a field"):
        label_view(tmp_path, labeler_field="annotator")
