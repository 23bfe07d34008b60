"""Validation before anything is written: references resolve and schemas match the real source files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.csv as pcsv
import pytest

from repast import Entity, FeatureService, FeatureView, Field, FileSource, PostgreSQLSource, RequestSource
from repast.cli.scaffold import generate_driver_stats
from repast.config.repo_config import RepoConfig
from repast.definitions import RepoContents
from repast.errors import DefinitionError
from repast.jobs.validation import validate
from repast.offline.base import OfflineEngine
from repast.on_demand_feature_view import on_demand_feature_view
from repast.store import FeatureStore
from repast.types import Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
SCHEMA = [Field(name="conv_rate", dtype=Float32), Field(name="avg_daily_trips", dtype=Int64)]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the same driver statistics as Parquet and as CSV."""
    path = tmp_path_factory.mktemp("repo")
    table = generate_driver_stats(path / "data" / "stats.parquet", drivers=3, days=1)
    pcsv.write_csv(table, path / "data" / "stats.csv")
    return path


@pytest.fixture(scope="module")
def engine(repo: Path) -> OfflineEngine:
    return FeatureStore(config=RepoConfig(project="validation", repo_path=repo)).offline_engine


def source(fmt: str = "parquet", **kwargs: object) -> FileSource:
    args: dict = {"name": f"stats_{fmt}", "path": f"data/stats.{fmt}", "timestamp_field": "event_timestamp",
                  "created_timestamp_column": "created", **kwargs}
    return FileSource(**args)


def contents_of(*objs: object) -> RepoContents:
    contents = RepoContents()
    for obj in objs:
        contents.add(obj)
        if isinstance(obj, FeatureView):
            contents.add(obj.source)
    return contents


def view(schema: list[Field] = SCHEMA, fmt: str = "parquet", **kwargs: object) -> FeatureView:
    args: dict = {"name": "stats", "entities": [driver], "ttl": timedelta(days=1), "schema": schema,
                  "source": source(fmt), **kwargs}
    return FeatureView(**args)


# ---- schema against the source ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_view_whose_schema_matches_its_source_is_valid(fmt: str, engine: OfflineEngine) -> None:
    validate(contents_of(driver, view(fmt=fmt)), engine)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_schema_field_missing_from_the_source_is_named_with_the_columns(fmt: str, engine: OfflineEngine) -> None:
    fv = view([*SCHEMA, Field(name="rating", dtype=Float32)], fmt=fmt)
    with pytest.raises(DefinitionError, match=rf"defs.py: FeatureView 'stats': schema field 'rating' is not a "
                                              rf"column of source 'stats_{fmt}' \(columns: \['driver_id'"):
        validate(contents_of(driver, fv), engine, {("feature_view", "stats"): "defs.py"})


@pytest.mark.parametrize("path", ["data", "data/*.parquet"], ids=["directory", "glob"])
def test_parquet_source_may_be_a_directory_or_a_glob(path: str, engine: OfflineEngine) -> None:
    validate(contents_of(driver, view(source=source(path=path))), engine)


def test_schema_field_with_an_incompatible_type_is_rejected(engine: OfflineEngine) -> None:
    fv = view([Field(name="conv_rate", dtype=String)])
    with pytest.raises(DefinitionError, match="schema field 'conv_rate' is declared String but column 'conv_rate'"):
        validate(contents_of(driver, fv), engine)


def test_float_column_declared_an_integer_is_rejected(engine: OfflineEngine) -> None:
    fv = view([Field(name="conv_rate", dtype=Int64)])  # conv_rate is a float column: values would be truncated
    with pytest.raises(DefinitionError, match="schema field 'conv_rate' is declared Int64 but column 'conv_rate'"):
        validate(contents_of(driver, fv), engine)


def test_field_mapping_renames_a_source_column(engine: OfflineEngine) -> None:
    fv = view([Field(name="conversion", dtype=Float64)], source=source(field_mapping={"conv_rate": "conversion"}))
    validate(contents_of(driver, fv), engine)
    assert fv.feature_names() == ["conversion"]


def test_join_key_missing_from_the_source_is_rejected(engine: OfflineEngine) -> None:
    rider = Entity(name="rider", join_keys=["rider_id"])
    with pytest.raises(DefinitionError, match="join key 'rider_id' is not a column of source 'stats_parquet'"):
        validate(contents_of(rider, view(entities=[rider])), engine)


def test_missing_timestamp_column_is_rejected(engine: OfflineEngine) -> None:
    fv = view(source=source(timestamp_field="ts"))
    with pytest.raises(DefinitionError, match="source 'stats_parquet' timestamp_field 'ts' is not a column"):
        validate(contents_of(driver, fv), engine)


def test_timestamp_field_that_is_not_a_timestamp_is_rejected(engine: OfflineEngine) -> None:
    fv = view(source=source(timestamp_field="conv_rate"))
    with pytest.raises(DefinitionError, match="timestamp_field 'conv_rate' has type float, expected a timestamp"):
        validate(contents_of(driver, fv), engine)


def test_single_timestamp_column_is_inferred_as_the_timestamp_field(engine: OfflineEngine) -> None:
    fv = view(source=source(timestamp_field=""))
    validate(contents_of(driver, fv), engine)
    assert fv.batch_source.timestamp_field == "event_timestamp"


def test_empty_schema_is_inferred_from_the_source(engine: OfflineEngine) -> None:
    fv = view([])
    validate(contents_of(driver, fv), engine)
    assert {f.name: str(f.dtype) for f in fv.features} == {
        "conv_rate": "Float32", "acc_rate": "Float32", "avg_daily_trips": "Int64"}
    assert fv.projection.features == ["conv_rate", "acc_rate", "avg_daily_trips"]


def test_source_file_that_does_not_exist_is_named(engine: OfflineEngine) -> None:
    fv = view(source=source(path="data/missing.parquet"))
    with pytest.raises(DefinitionError, match=r"FeatureView 'stats': source: .*no parquet files at 'data/missing"):
        validate(contents_of(driver, fv), engine)


def test_source_the_engine_cannot_read_is_rejected(engine: OfflineEngine) -> None:
    fv = view(source=PostgreSQLSource(name="pg", table="stats", timestamp_field="event_timestamp"))
    with pytest.raises(DefinitionError, match=r"FeatureView 'stats': source: .*cannot be read by the duckdb"):
        validate(contents_of(driver, fv), engine)


# ---- references between definitions -------------------------------------------------------------

def test_view_referring_to_a_defined_entity_by_name_is_bound_to_it(engine: OfflineEngine) -> None:
    fv = view(entities=["driver"])
    validate(contents_of(driver, fv), engine)
    assert fv.join_keys == ["driver_id"]


def test_view_referring_to_an_undefined_entity_is_rejected(engine: OfflineEngine) -> None:
    fv = view(entities=["driver"])
    with pytest.raises(DefinitionError, match=r"FeatureView 'stats': entities: entity 'driver' is not defined; "
                                              r"defined entities: \[\]"):
        validate(contents_of(fv), engine)


def test_feature_service_naming_known_features_is_valid(engine: OfflineEngine) -> None:
    fv = view()
    validate(contents_of(driver, fv, FeatureService(name="svc", features=[fv[["conv_rate"]]])), engine)


def test_feature_service_naming_an_unknown_feature_is_rejected(engine: OfflineEngine) -> None:
    fv = view()
    registered = view([Field(name="conv_rate", dtype=Float32)])  # the view as applied lacks avg_daily_trips
    svc = FeatureService(name="svc", features=[fv[["avg_daily_trips"]]])
    with pytest.raises(DefinitionError, match="FeatureService 'svc': features: view 'stats' has no feature "
                                              "'avg_daily_trips'"):
        validate(contents_of(driver, registered, svc), engine)


def test_feature_service_naming_an_unknown_view_is_rejected(engine: OfflineEngine) -> None:
    svc = FeatureService(name="svc", features=[view()])
    with pytest.raises(DefinitionError, match="FeatureService 'svc': features: view 'stats' is not defined"):
        validate(contents_of(driver, svc), engine)


def test_on_demand_view_over_an_undefined_view_is_rejected(engine: OfflineEngine) -> None:
    @on_demand_feature_view(sources=[view()], schema=[Field(name="x", dtype=Float64)])
    def odfv(df):  # type: ignore[no-untyped-def]
        return df

    with pytest.raises(DefinitionError, match="OnDemandFeatureView 'odfv': sources: feature view 'stats' is not"):
        validate(contents_of(driver, odfv), engine)


def test_on_demand_view_over_defined_views_and_request_data_is_valid(engine: OfflineEngine) -> None:
    fv = view()
    req = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])

    @on_demand_feature_view(sources=[fv, req], schema=[Field(name="x", dtype=Float64)])
    def odfv(df):  # type: ignore[no-untyped-def]
        return df

    validate(contents_of(driver, fv, req, odfv), engine)


def test_a_join_key_without_a_declared_type_gets_its_source_columns(engine: OfflineEngine) -> None:
    fv = view()
    validate(contents_of(driver, fv), engine)
    assert {f.name: str(f.dtype) for f in fv.entity_columns} == {"driver_id": "Int64"}
    assert fv.feature_names() == ["conv_rate", "avg_daily_trips"]


@pytest.mark.parametrize("mode", ["pandas", "python"])
def test_on_demand_function_that_takes_no_argument_is_rejected_at_apply(engine: OfflineEngine, mode: str) -> None:
    fv = view()

    @on_demand_feature_view(sources=[fv], schema=[Field(name="x", dtype=Float64)], mode=mode)
    def no_inputs():  # type: ignore[no-untyped-def]
        return 1

    with pytest.raises(DefinitionError, match=r"OnDemandFeatureView 'no_inputs': function no_inputs\(\) must take "
                                              "exactly one argument"):
        validate(contents_of(driver, fv, no_inputs), engine)


def test_on_demand_function_that_needs_two_arguments_is_rejected_at_apply(engine: OfflineEngine) -> None:
    fv = view()

    @on_demand_feature_view(sources=[fv], schema=[Field(name="x", dtype=Float64)])
    def two(df, other):  # type: ignore[no-untyped-def]
        return df

    with pytest.raises(DefinitionError, match="must take exactly one argument"):
        validate(contents_of(driver, fv, two), engine)


def test_on_demand_view_with_the_name_of_a_feature_view_is_rejected(engine: OfflineEngine) -> None:
    fv = view()

    @on_demand_feature_view(sources=[fv], schema=[Field(name="x", dtype=Float64)])
    def stats(df):  # type: ignore[no-untyped-def]
        return df

    with pytest.raises(DefinitionError, match="FeatureView 'stats': an on-demand feature view has the same name"):
        validate(contents_of(driver, fv, stats), engine)


def test_offline_false_view_without_schema_is_not_read(engine: OfflineEngine) -> None:
    fv = view([], offline=False, source=source(path="data/not_there_yet.parquet"))
    validate(contents_of(driver, fv), engine)
