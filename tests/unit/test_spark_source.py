"""SparkSource: Feast's names and module path, one of table/query/path, and a registry round trip."""

from __future__ import annotations

import pytest

from repast.definitions import source_from_dict
from repast.errors import DefinitionError


def test_spark_source_is_importable_from_repast_and_from_feasts_module_path() -> None:
    from repast import SparkSource
    from repast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource as FeastPath

    assert FeastPath is SparkSource


def test_spark_source_round_trips_through_the_registry_form() -> None:
    from repast import SparkSource

    source = SparkSource(name="stats", path="s3a://b/stats", file_format="parquet", timestamp_field="ts",
                         created_timestamp_column="created", field_mapping={"c": "conv"}, tags={"t": "1"})
    assert source_from_dict(source.to_dict()) == source


@pytest.mark.parametrize("kwargs", [{}, {"table": "t", "query": "SELECT 1"}, {"table": "t", "path": "p"}])
def test_spark_source_needs_exactly_one_of_table_query_or_path(kwargs: dict[str, str]) -> None:
    from repast import SparkSource

    with pytest.raises(DefinitionError, match="exactly one of table=, query= or path="):
        SparkSource(name="s", timestamp_field="ts", **kwargs)


def test_spark_source_rejects_an_unknown_file_format() -> None:
    from repast import SparkSource

    with pytest.raises(DefinitionError, match="file_format"):
        SparkSource(name="s", path="p", file_format="xlsx", timestamp_field="ts")
