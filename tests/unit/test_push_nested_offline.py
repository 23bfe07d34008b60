"""A push of Python dicts into Map and Struct features appends to a batch source whose files were
written by pandas from dicts (Map columns are then structs), as Feast's templates push."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import FeatureStore, PushMode
from repast.errors import InputError

DEFINITIONS = '''
from datetime import timedelta
from repast import Entity, FeatureView, Field, FileSource, PushSource
from repast.types import Map, String, Struct

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="trips_source", path="data/trips.parquet", timestamp_field="event_timestamp")
push_source = PushSource(name="trips_push", batch_source=source)
trips = FeatureView(name="trips", entities=[driver], ttl=timedelta(days=1), source=push_source,
                    schema=[Field(name="trip_counts", dtype=Map),
                            Field(name="profile", dtype=Struct({"name": String, "age": String}))])
'''
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    (tmp_path / "data").mkdir()
    (tmp_path / "feature_store.yaml").write_text("project: nested\nregistry: data/registry.db\n")
    (tmp_path / "definitions.py").write_text(DEFINITIONS)
    frame = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [NOW - timedelta(hours=2)] * 2,
                          "trip_counts": [{"berlin": "3", "paris": None}, {"berlin": None, "paris": "4"}],
                          "profile": [{"name": "a", "age": "30"}, {"name": "b", "age": "40"}]})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "data" / "trips.parquet")
    fs = FeatureStore(repo_path=tmp_path)
    fs.apply_repo()
    return fs


def pushed(trip_counts: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW - timedelta(hours=1)],
                         "trip_counts": [trip_counts], "profile": [{"name": "pushed", "age": "41"}]})


def test_dicts_pushed_online_and_offline_are_read_back_from_both(store: FeatureStore) -> None:
    store.push("trips_push", pushed({"berlin": "7"}), to=PushMode.ONLINE_AND_OFFLINE)
    online = store.get_online_features(["trips:trip_counts", "trips:profile"], {"driver_id": [1]}).to_dict()
    assert online["profile"] == [{"name": "pushed", "age": "41"}]
    entity = pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]})
    training = store.get_historical_features(entity, ["trips:trip_counts", "trips:profile"]).to_df()
    assert training["profile"][0] == {"name": "pushed", "age": "41"}
    counts = training["trip_counts"][0]
    assert {k: v for k, v in dict(counts).items() if v is not None} == {"berlin": "7"}


def test_a_map_key_the_files_struct_has_no_field_for_is_refused_not_dropped(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="london"):
        store.push("trips_push", pushed({"london": "1"}), to=PushMode.OFFLINE)
