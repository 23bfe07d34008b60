"""The rest of Feast's FeatureStore surface on the sample repo (real DuckDB, SQLite, registry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from repast import FeatureStore, Project
from repast.errors import (
    DefinitionError,
    FeatureServiceNotFoundException,
    FeatureViewNotFoundException,
    InputError,
    SavedDatasetNotFound,
)
from repast.infra.offline_stores.file_source import SavedDatasetFileStorage

VIEW = "driver_hourly_stats"


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    return fs


def test_list_methods_take_allow_cache_and_filter_by_tags(store: FeatureStore) -> None:
    tagged = store.list_feature_views(allow_cache=True, tags={"team": "driver_performance"})
    assert [v.name for v in tagged] == ["driver_hourly_stats"]
    assert store.list_feature_views(tags={"team": "nobody"}) == []
    assert [e.name for e in store.list_entities(allow_cache=False)] == ["driver"]


def test_get_methods_take_allow_registry_cache(store: FeatureStore) -> None:
    assert store.get_feature_view(VIEW, allow_registry_cache=True).name == VIEW


def test_an_unknown_keyword_argument_is_a_type_error_naming_it(store: FeatureStore) -> None:
    with pytest.raises(TypeError, match="colour"):
        store.list_feature_views(colour="red")  # type: ignore[call-arg]


def test_feature_store_opens_from_fs_yaml_file(store: FeatureStore) -> None:
    other = FeatureStore(fs_yaml_file=store.repo_path / "feature_store.yaml")
    assert other.project == store.project and [v.name for v in other.list_feature_views()]


def test_apply_is_partial_by_default_and_partial_false_keeps_only_the_named_objects(store: FeatureStore) -> None:
    view = store.get_feature_view(VIEW)
    entity = store.get_entity("driver")
    store.apply([view])
    assert len(store.list_feature_views()) == 2
    store.apply([entity, view], partial=False)
    assert [v.name for v in store.list_feature_views()] == [VIEW]
    assert store.list_feature_services() == [] and store.list_on_demand_feature_views() == []


def test_delete_feature_view_and_feature_service(store: FeatureStore) -> None:
    store.delete_feature_service("driver_activity_v1")
    store.delete_feature_view("transformed_conv_rate")
    store.delete_feature_view("driver_hourly_stats_fresh")
    assert [v.name for v in store.list_all_feature_views()] == [VIEW]
    with pytest.raises(FeatureServiceNotFoundException):
        store.get_feature_service("driver_activity_v1")
    with pytest.raises(FeatureViewNotFoundException):
        store.delete_feature_view("driver_hourly_stats_fresh")


def test_views_by_kind(store: FeatureStore) -> None:
    assert sorted(v.name for v in store.list_batch_feature_views()) == [VIEW, "driver_hourly_stats_fresh"]
    assert store.list_stream_feature_views() == []
    assert sorted(v.name for v in store.list_all_feature_views()) == [
        VIEW, "driver_hourly_stats_fresh", "transformed_conv_rate"]


def test_project_is_registered_listed_and_described(store: FeatureStore) -> None:
    store.apply([Project(name=store.project, description="drivers", tags={"team": "ops"})])
    assert store.get_project(store.project).description == "drivers"
    assert [p.name for p in store.list_projects(tags={"team": "ops"})] == [store.project]


def test_a_project_without_a_project_object_is_still_listed(store: FeatureStore) -> None:
    assert [p.name for p in store.list_projects()] == [store.project]


def test_a_project_object_that_disagrees_with_feature_store_yaml_is_refused(store: FeatureStore) -> None:
    with pytest.raises(DefinitionError, match=r"Project 'other' does not match feature_store\.yaml's project"):
        store.apply([Project(name="other")])


def _training_job(store: FeatureStore) -> object:
    entity_df = pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": [datetime.now(UTC)] * 2})
    return store.get_historical_features(entity_df, features=[f"{VIEW}:conv_rate"])


def test_saved_dataset_records_what_it_was_built_from_and_reads_back(store: FeatureStore) -> None:
    job = _training_job(store)
    storage = SavedDatasetFileStorage("data/train.parquet")
    saved = store.create_saved_dataset(from_=job, name="train_v1", storage=storage, tags={"model": "ranker"})
    assert saved.features == [f"{VIEW}:conv_rate"] and saved.join_keys == ["driver_id"]
    assert saved.registry_version == 1 and len(saved.entity_fingerprint) == 64 and saved.row_count == 2
    again = store.get_saved_dataset("train_v1")
    assert again.to_df().equals(job.to_df())  # type: ignore[attr-defined]
    assert [d.name for d in store.list_saved_datasets(tags={"model": "ranker"})] == ["train_v1"]


def test_saved_datasets_survive_an_apply_of_the_repo(store: FeatureStore) -> None:
    store.create_saved_dataset(from_=_training_job(store), name="train_v1",
                               storage=SavedDatasetFileStorage("data/train.parquet"))
    store.apply_repo()
    assert [d.name for d in store.list_saved_datasets()] == ["train_v1"]


def test_persist_refuses_to_overwrite_unless_allowed(store: FeatureStore) -> None:
    job = _training_job(store)
    storage = SavedDatasetFileStorage("data/out.parquet")
    job.persist(storage)  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="already exists"):
        job.persist(storage)  # type: ignore[attr-defined]
    job.persist(storage, allow_overwrite=True)  # type: ignore[attr-defined]


def test_unknown_saved_dataset_is_saved_dataset_not_found(store: FeatureStore) -> None:
    with pytest.raises(SavedDatasetNotFound):
        store.get_saved_dataset("nope")


def test_to_dict_with_event_timestamps_adds_seconds_per_value(store: FeatureStore) -> None:
    end = datetime.now(UTC)
    store.materialize(end - timedelta(days=30), end, [VIEW])
    response = store.get_online_features([f"{VIEW}:conv_rate"], {"driver_id": [1001, 999]})
    out = response.to_dict(include_event_timestamps=True)
    stamp = response.event_timestamps()["conv_rate"][0]
    assert out["conv_rate__ts"] == [int(stamp.timestamp()), 0]
    assert out["driver_id__ts"] == [0, 0] and out["conv_rate"] == response.to_dict()["conv_rate"]


# ---- enable_validation ---------------------------------------------------------------------------

def _validated_fresh_view(store: FeatureStore) -> None:
    from repast import FeatureView

    fresh = store.get_feature_view("driver_hourly_stats_fresh")
    store.apply([FeatureView(name=fresh.name, entities=fresh.entity_objects, source=fresh.source,
                             schema=fresh.schema, ttl=fresh.ttl, enable_validation=True)])


def _push_frame(event_timestamp: object) -> pd.DataFrame:
    return pd.DataFrame({"driver_id": [1001, 1002], "conv_rate": pd.Series([0.5, 0.6], dtype="float32"),
                         "acc_rate": pd.Series([0.5, 0.6], dtype="float32"), "avg_daily_trips": [3, 4],
                         "event_timestamp": pd.Series([datetime.now(UTC), event_timestamp]),
                         "created": [datetime.now(UTC)] * 2})


def test_without_validation_a_pushed_row_without_event_time_is_skipped(store: FeatureStore) -> None:
    store.push("driver_stats_push_source", _push_frame(None))
    values = store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], {"driver_id": [1001, 1002]})
    assert values.to_dict()["conv_rate"] == [pytest.approx(0.5), None]


def test_with_validation_a_pushed_row_without_event_time_is_refused_before_writing(store: FeatureStore) -> None:
    _validated_fresh_view(store)
    with pytest.raises(InputError, match=r"enable_validation.*1 row\(s\) have no 'event_timestamp'"):
        store.push("driver_stats_push_source", _push_frame(None))
    values = store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], {"driver_id": [1001, 1002]})
    assert values.to_dict()["conv_rate"] == [None, None]


def test_with_validation_materialize_refuses_a_source_column_that_cannot_hold_the_type(store: FeatureStore) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _validated_fresh_view(store)
    path = store.repo_path / "data" / "driver_stats.parquet"
    table = pq.read_table(path)
    index = table.schema.get_field_index("avg_daily_trips")
    pq.write_table(table.set_column(index, "avg_daily_trips", table.column(index).cast(pa.float64())), path)
    end = datetime.now(UTC)
    with pytest.raises(InputError, match=r"column 'avg_daily_trips' .* is double, which does not hold Int64"):
        store.materialize(end - timedelta(days=30), end, ["driver_hourly_stats_fresh"])
