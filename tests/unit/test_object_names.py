"""One rule for object names (repast/definitions/names.py): apply refuses any other name, naming
the object and the rule, so every registered name is usable in `view:feature` references and URLs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from repast.errors import DefinitionError
from repast.types import Int64

ALLOWED = ["driver_stats", "driver-stats", "driver.stats.v2", "Stats2", "_x", "...", "ünïcode_names"]
REFUSED = ["c:d", "a/b", ".", "..", "has space", "x'$(touch PWNED)'x", "a@v2", "tab\tname", ""]


def _view(name: str, source: FileSource, entity: Entity) -> FeatureView:
    return FeatureView(name=name, entities=[entity], schema=[Field(name="avg_daily_trips", dtype=Int64)], source=source)


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    store = FeatureStore(sample_repo)
    store.apply_repo()
    return store


def _objects(store: FeatureStore, name: str) -> dict[str, object]:
    source = store.get_data_source("driver_hourly_stats_source")
    driver = store.get_entity("driver")
    return {"FeatureView": _view(name, source, driver), "Entity": Entity(name=name, join_keys=["driver_id"]),
            "FeatureService": FeatureService(name=name, features=[store.get_feature_view("driver_hourly_stats")])}


@pytest.mark.parametrize("name", [n for n in REFUSED if n])
def test_apply_refuses_a_name_outside_the_rule_naming_the_object_and_the_rule(store: FeatureStore,
                                                                               name: str) -> None:
    for label, obj in _objects(store, name).items():
        rule = r"letters, digits, '_', '-' and '\.'"
        with pytest.raises(DefinitionError, match=rf"{label} name {re.escape(repr(name))}.*{rule}"):
            store.apply([obj])
        assert name not in [o.name for o in store.list_feature_views() + store.list_entities()
                            + store.list_feature_services()]


@pytest.mark.parametrize("name", ALLOWED)
def test_a_view_with_an_allowed_name_is_applied_and_read_by_reference(store: FeatureStore, name: str) -> None:
    store.apply([_objects(store, name)["FeatureView"]])
    response = store.get_online_features([f"{name}:avg_daily_trips"], {"driver_id": [1001]})
    assert response.to_dict()["avg_daily_trips"] == [None]


def test_an_unnamed_file_source_keeps_its_path_as_its_name(store: FeatureStore) -> None:
    source = FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp")
    store.apply([_view("by_path", source, store.get_entity("driver"))])
    assert store.get_data_source("data/driver_stats.parquet").name == "data/driver_stats.parquet"


@pytest.mark.parametrize("name", [".", ".."])
def test_a_data_source_may_not_be_named_dot_or_dot_dot(store: FeatureStore, name: str) -> None:
    source = FileSource(name=name, path="data/driver_stats.parquet", timestamp_field="event_timestamp")
    with pytest.raises(DefinitionError, match=rf"FileSource name '{name}'"):
        store.apply([_view("dotted", source, store.get_entity("driver"))])
