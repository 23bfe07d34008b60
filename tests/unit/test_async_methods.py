"""get_online_features_async and push_async: Feast's signatures, the synchronous methods' answers."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime

import pandas as pd
import pytest

from repast import FeatureStore, PushMode
from repast.cli.scaffold import init_repo
from repast.errors import InputError


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    repo = init_repo(tmp_path_factory.mktemp("async") / "repo", "async_repo")
    store = FeatureStore(repo)
    store.apply_repo()
    return store


def fresh_row(driver_id: int, conv_rate: float) -> pd.DataFrame:
    now = datetime.now(UTC)
    return pd.DataFrame({"driver_id": [driver_id], "event_timestamp": [now], "created": [now],
                         "conv_rate": [conv_rate], "acc_rate": [0.5], "avg_daily_trips": [7]})


def test_both_are_coroutine_functions_with_feasts_parameters() -> None:
    assert inspect.iscoroutinefunction(FeatureStore.get_online_features_async)
    assert inspect.iscoroutinefunction(FeatureStore.push_async)
    assert list(inspect.signature(FeatureStore.get_online_features_async).parameters) == [
        "self", "features", "entity_rows", "full_feature_names"]
    assert list(inspect.signature(FeatureStore.push_async).parameters)[:5] == [
        "self", "push_source_name", "df", "allow_registry_cache", "to"]


def test_a_pushed_row_is_read_back_asynchronously_as_the_sync_read_returns_it(store: FeatureStore) -> None:
    async def push_then_read() -> dict[str, list[object]]:
        await store.push_async("driver_stats_push_source", fresh_row(1001, 0.75), to=PushMode.ONLINE)
        response = await store.get_online_features_async(["driver_hourly_stats_fresh:conv_rate"],
                                                         [{"driver_id": 1001}], full_feature_names=True)
        return response.to_dict()  # type: ignore[no-any-return]

    got = asyncio.run(push_then_read())
    assert got == {"driver_id": [1001], "driver_hourly_stats_fresh__conv_rate": [0.75]}
    sync = store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], [{"driver_id": 1001}],
                                     full_feature_names=True).to_dict()
    assert got == sync


def test_errors_are_the_sync_methods_errors(store: FeatureStore) -> None:
    with pytest.raises(InputError):
        asyncio.run(store.push_async("driver_stats_push_source", pd.DataFrame({"driver_id": [1]})))
