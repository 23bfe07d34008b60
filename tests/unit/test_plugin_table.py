"""The one plugin table: every entry imports as a class of its kind, declares its abilities in one
frozen Capabilities record, and a read-only backend has no write methods to raise from."""

from __future__ import annotations

import dataclasses

import pytest

from repast.definitions.source_types import source_from_dict
from repast.definitions.sources import DataSource, FileSource, PushSource
from repast.errors import ConfigError, DefinitionError
from repast.offline.base import OfflineEngine
from repast.online.base import OnlineReader, OnlineStore, writable
from repast.plugins.capabilities import Capabilities
from repast.plugins.table import OFFLINE, ONLINE, PLUGINS, REGISTRY, SOURCE, VECTOR, plugin_class
from repast.registry.base import RegistryStore
from repast.vector.base import VectorSearch

BASES: dict[str, type] = {OFFLINE: OfflineEngine, ONLINE: OnlineReader, REGISTRY: RegistryStore,
                          SOURCE: DataSource, VECTOR: VectorSearch}
ENTRIES = [(kind, name) for kind, table in PLUGINS.items() for name in table]


def test_every_kind_of_the_table_has_a_base() -> None:
    assert set(PLUGINS) == set(BASES)


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
def test_every_entry_is_a_class_of_its_kind_with_one_frozen_capabilities_record(kind: str, name: str) -> None:
    if PLUGINS[kind][name].startswith("repast.offline.spark:"):
        pytest.importorskip("pyspark")
    found = plugin_class(kind, name, BASES[kind])
    assert issubclass(found, BASES[kind])
    if kind in (OFFLINE, ONLINE, REGISTRY):
        assert isinstance(found.capabilities, Capabilities)  # type: ignore[attr-defined]
        with pytest.raises(dataclasses.FrozenInstanceError):
            found.capabilities.write = False  # type: ignore[attr-defined, misc]


def test_an_entry_of_the_wrong_kind_is_refused_by_the_lookup() -> None:
    with pytest.raises(TypeError, match="is not a RegistryStore"):
        plugin_class(ONLINE, "sqlite", RegistryStore)


def test_the_read_only_online_store_has_no_write_methods_and_is_refused_as_a_writer() -> None:
    remote = plugin_class(ONLINE, "remote", OnlineReader)
    assert not issubclass(remote, OnlineStore)
    assert not {"update", "teardown", "write_batch"} & set(dir(remote))
    for name in PLUGINS[ONLINE]:
        if name != "remote":
            assert issubclass(plugin_class(ONLINE, name, OnlineReader), OnlineStore), name

    from repast.config.repo_config import RepoConfig

    config = RepoConfig.model_validate({"project": "p", "online_store": {"type": "remote",
                                                                          "path": "http://127.0.0.1:1"}})
    store = remote(config.online_store, config)
    with pytest.raises(ConfigError, match=r"online_store type 'remote' \(http://127.0.0.1:1\) is read-only: "
                                          r"it cannot materialize"):
        writable(store, "materialize")


def test_sources_are_rebuilt_through_the_table_and_an_unknown_type_is_refused() -> None:
    batch = FileSource(name="rides", path="data/rides.parquet", timestamp_field="ts")
    push = PushSource(name="rides_push", batch_source=batch)
    assert source_from_dict(push.to_dict()) == push
    with pytest.raises(DefinitionError, match="unknown data source type 'kinesis'"):
        source_from_dict({**batch.to_dict(), "type": "kinesis"})
