"""Definitions are plain data with Feast's names: construction rules, projections, types, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from repast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    PostgreSQLSource,
    PushSource,
    RequestSource,
    ValueType,
)
from repast.data_format import CsvFormat, ParquetFormat
from repast.definitions import OnDemandFeatureView, object_from_dict
from repast.definitions.registry_objects import kind_of
from repast.errors import DefinitionError
from repast.on_demand_feature_view import on_demand_feature_view
from repast.types import (
    PRIMITIVES,
    Array,
    Bool,
    Float32,
    Float64,
    Int32,
    Int64,
    Set,
    String,
    Struct,
    UnixTimestamp,
    from_arrow,
    is_compatible,
    parse_type,
)

driver = Entity(name="driver", join_keys=["driver_id"], description="a driver", tags={"team": "ops"})
stats_source = FileSource(name="stats", path="data/stats.parquet", timestamp_field="event_timestamp",
                          created_timestamp_column="created", field_mapping={"conv": "conv_rate"})
stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(hours=2), source=stats_source,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="conv_rate", dtype=Float32),
            Field(name="trips", dtype=Int64, description="trips today", tags={"pii": "no"}),
            Field(name="embedding", dtype=Array(Float32))],
    tags={"team": "ops"}, owner="ops@example.com", description="hourly driver statistics",
)
request = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(sources=[stats[["conv_rate"]], request], schema=[Field(name="boosted", dtype=Float64)])
def boosted_conv(inputs):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.DataFrame({"boosted": inputs["conv_rate"] + inputs["bonus"]})


def roundtrip(obj: object) -> object:
    """What the registry does: to JSON text and back, then bind views to their entities."""
    spec = json.loads(json.dumps(obj.to_dict()))  # type: ignore[attr-defined]
    back = object_from_dict(kind_of(obj), spec)
    if isinstance(back, FeatureView):
        back.resolve_entities({driver.name: driver})
    return back


# ---- entities and fields ------------------------------------------------------------------------

def test_entity_join_keys_default_to_its_name() -> None:
    assert Entity(name="customer").join_keys == ["customer"]


def test_entity_with_explicit_join_keys_keeps_them() -> None:
    assert Entity(name="trip", join_keys=["driver_id", "rider_id"]).join_keys == ["driver_id", "rider_id"]


def test_entity_without_join_keys_is_rejected_naming_the_entity() -> None:
    with pytest.raises(DefinitionError, match="Entity 'driver': join_keys is empty"):
        Entity(name="driver", join_keys=[])


def test_entity_without_a_name_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="name"):
        Entity(name="", join_keys=["id"])


def test_entity_accepts_feast_value_type() -> None:
    e = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    assert e.value_type.to_feature_type() == Int64


def test_field_dtype_may_be_given_by_name() -> None:
    assert Field(name="x", dtype="Array(Int64)").dtype == Array(Int64)  # type: ignore[arg-type]


def test_field_with_unknown_dtype_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="unknown feature type 'Decimal64'"):
        Field(name="x", dtype="Decimal64")  # type: ignore[arg-type]


def test_field_with_a_non_type_dtype_is_rejected_naming_the_field() -> None:
    with pytest.raises(DefinitionError, match="Field 'x'"):
        Field(name="x", dtype=int)  # type: ignore[arg-type]


# ---- types --------------------------------------------------------------------------------------

_LISTABLE = [t for t in PRIMITIVES.values() if t.name not in ("Json", "Map")]
all_types = st.one_of(st.sampled_from(list(PRIMITIVES.values())), st.sampled_from(_LISTABLE).map(Array),
                      st.sampled_from(_LISTABLE).map(Set),
                      st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(_LISTABLE), min_size=1)
                      .map(Struct))


@given(all_types)
def test_every_type_round_trips_through_its_name(t: object) -> None:
    assert parse_type(str(t)) == t


# Uuid, Decimal, PdfBytes, Json and Set are declared, never inferred (their Arrow forms are shared).
_INFERABLE = [t for t in _LISTABLE if t.name in ("Int32", "Int64", "Float32", "Float64", "String", "Bytes", "Bool",
                                                 "UnixTimestamp")]
inferable_types = st.one_of(st.sampled_from([*_INFERABLE, PRIMITIVES["Map"]]), st.sampled_from(_INFERABLE).map(Array),
                            st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(_INFERABLE), min_size=1)
                            .map(Struct))


@given(inferable_types)
def test_every_inferable_type_round_trips_through_its_arrow_type(t: object) -> None:
    assert from_arrow(t.to_arrow()) == t  # type: ignore[attr-defined]


def test_array_of_array_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="scalar type"):
        Array(Array(Int64))  # type: ignore[arg-type]


@pytest.mark.parametrize("value_type, expected", [
    (ValueType.STRING, String), (ValueType.INT32, Int32), (ValueType.DOUBLE, Float64),
    (ValueType.FLOAT_LIST, Array(Float32)), (ValueType.BOOL, Bool), (ValueType.UNKNOWN, None),
])
def test_feast_value_types_map_to_feature_types(value_type: ValueType, expected: object) -> None:
    assert value_type.to_feature_type() == expected


@pytest.mark.parametrize("declared, column, ok", [
    (Float64, pa.float32(), True), (Float32, pa.int64(), True), (Int64, pa.int32(), True),
    (UnixTimestamp, pa.timestamp("ns"), True), (UnixTimestamp, pa.date32(), True),
    (String, pa.float64(), False), (Int64, pa.string(), False), (Array(Float32), pa.list_(pa.float64()), True),
    (Array(Float32), pa.float32(), False), (Bool, pa.int8(), False),
])
def test_source_column_type_compatibility(declared: object, column: pa.DataType, ok: bool) -> None:
    assert is_compatible(declared, column) is ok  # type: ignore[arg-type]


# ---- sources ------------------------------------------------------------------------------------

def test_file_source_format_follows_the_extension() -> None:
    assert FileSource(path="a/b.csv", timestamp_field="ts").file_format == "csv"
    assert FileSource(path="a/*.parquet", timestamp_field="ts").file_format == "parquet"


def test_file_source_accepts_feast_format_markers() -> None:
    assert FileSource(path="a/b", file_format=ParquetFormat()).file_format == "parquet"
    assert FileSource(path="a/b", file_format=CsvFormat()).file_format == "csv"


def test_file_source_with_unknown_format_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="file_format must be parquet or csv"):
        FileSource(path="a/b.orc", file_format="orc")


def test_file_source_accepts_feasts_old_event_timestamp_column() -> None:
    assert FileSource(path="a.parquet", event_timestamp_column="ts").timestamp_field == "ts"


def test_postgres_source_needs_exactly_one_of_query_and_table() -> None:
    assert PostgreSQLSource(name="t", table="trips").from_clause() == "trips"
    assert PostgreSQLSource(name="q", query="select 1").from_clause() == "(select 1)"
    with pytest.raises(DefinitionError, match="exactly one of query= or table="):
        PostgreSQLSource(name="both", query="select 1", table="trips")
    with pytest.raises(DefinitionError, match="exactly one of query= or table="):
        PostgreSQLSource(name="neither")


def test_push_source_needs_a_batch_source() -> None:
    with pytest.raises(DefinitionError, match="batch_source must be"):
        PushSource(name="p", batch_source=request)


def test_push_source_takes_timestamps_from_its_batch_source() -> None:
    push = PushSource(name="p", batch_source=stats_source)
    assert push.timestamp_field == "event_timestamp"


def test_request_source_needs_a_schema() -> None:
    with pytest.raises(DefinitionError, match="RequestSource 'r': schema is empty"):
        RequestSource(name="r", schema=[])


def test_field_mapping_gives_the_source_column_of_a_feature() -> None:
    assert stats_source.source_column("conv_rate") == "conv"
    assert stats_source.source_column("trips") == "trips"


# ---- feature views and projections --------------------------------------------------------------

def test_entity_columns_in_a_view_schema_are_not_features() -> None:
    assert stats.feature_names() == ["conv_rate", "trips", "embedding"]
    assert [f.name for f in stats.entity_columns] == ["driver_id"]
    assert stats.join_keys == ["driver_id"]


def test_view_ttl_defaults_to_no_limit() -> None:
    fv = FeatureView(name="v", source=stats_source, entities=[driver])
    assert fv.ttl == timedelta(0)


def test_view_with_negative_ttl_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="ttl must not be negative"):
        FeatureView(name="v", source=stats_source, ttl=timedelta(seconds=-1))


def test_view_with_a_request_source_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="source must be a batch or push source"):
        FeatureView(name="v", source=request)


def test_projection_selects_features_and_leaves_the_view_unchanged() -> None:
    p = stats[["conv_rate"]]
    assert p.projection.features == ["conv_rate"]
    assert stats.projection.features == ["conv_rate", "trips", "embedding"]


def test_projection_of_an_unknown_feature_is_rejected_naming_it() -> None:
    with pytest.raises(DefinitionError, match=r"view 'driver_stats' has no feature\(s\) \['nope'\]"):
        stats[["conv_rate", "nope"]]


def test_with_name_aliases_the_view_in_feature_references() -> None:
    service = FeatureService(name="s", features=[stats.with_name("stats_v2")[["trips"]]])
    assert service.feature_refs() == ["stats_v2:trips"]
    assert stats.projection.name_alias == ""


def test_with_join_key_map_renames_the_keys_of_one_use() -> None:
    mapped = stats.with_join_key_map({"driver_id": "passenger_driver_id"})
    assert mapped.projection.join_key_map == {"driver_id": "passenger_driver_id"}
    assert mapped.projection.features == stats.feature_names()
    assert stats.projection.join_key_map == {}


def test_projection_alias_and_key_map_compose() -> None:
    p = stats[["conv_rate"]].with_name("other").with_join_key_map({"driver_id": "other_id"})
    assert (p.projection.view_name, p.projection.name, p.projection.features, p.projection.join_key_map) == \
        ("driver_stats", "other", ["conv_rate"], {"driver_id": "other_id"})


# ---- on-demand views and feature services -------------------------------------------------------

def test_on_demand_view_takes_its_name_from_the_function() -> None:
    assert boosted_conv.name == "boosted_conv"
    assert [p.view_name for p in boosted_conv.source_views] == ["driver_stats"]
    assert [r.name for r in boosted_conv.request_sources] == ["req"]


def test_on_demand_view_keeps_the_function_source_for_display() -> None:
    assert "def boosted_conv(inputs)" in boosted_conv.udf_source


def test_on_demand_view_with_unknown_mode_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="mode must be one of"):
        on_demand_feature_view(sources=[stats], schema=[Field(name="x", dtype=Int64)], mode="spark")(len)


def test_python_mode_on_demand_view_transforms_a_dict_of_lists() -> None:
    @on_demand_feature_view(sources=[stats], schema=[Field(name="double_trips", dtype=Int64)], mode="python")
    def doubled(inputs):  # type: ignore[no-untyped-def]
        return {"double_trips": [t * 2 for t in inputs["trips"]]}

    assert doubled.transform({"trips": [1, 5]}) == {"double_trips": [2, 10]}


def test_feature_service_lists_feature_references_of_views_projections_and_on_demand_views() -> None:
    service = FeatureService(name="model", features=[stats[["conv_rate"]], boosted_conv])
    assert service.feature_refs() == ["driver_stats:conv_rate", "boosted_conv:boosted"]


def test_feature_service_without_features_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="FeatureService 'model': features is empty"):
        FeatureService(name="model", features=[])


def test_feature_service_with_a_non_view_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="features must be feature views"):
        FeatureService(name="model", features=["driver_stats:conv_rate"])


def test_feature_service_keeps_its_logging_config() -> None:
    from repast.feature_logging import LoggingConfig
    from repast.infra.offline_stores.file_source import FileLoggingDestination

    config = LoggingConfig(destination=FileLoggingDestination(path="logs/model"), sample_rate=0.5)
    service = FeatureService(name="model", features=[stats], logging_config=config)
    assert FeatureService.from_dict(service.to_dict()).logging_config == config


def test_unknown_keyword_argument_to_a_definition_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="colour"):
        FeatureService(name="model", features=[stats], colour="red")  # type: ignore[call-arg]


# ---- JSON round trips (what the registry stores) ------------------------------------------------

@pytest.mark.parametrize("obj", [
    driver,
    Entity(name="legacy", value_type=ValueType.STRING),
    stats_source,
    FileSource(name="csv", path="data/x.csv", timestamp_field="ts"),
    PostgreSQLSource(name="pg", table="trips", timestamp_field="ts"),
    PostgreSQLSource(name="pgq", query="select * from trips", timestamp_field="ts"),
    PushSource(name="push", batch_source=stats_source),
    request,
    stats,
    FeatureView(name="no_ttl", entities=["driver"], source=PushSource(name="p", batch_source=stats_source),
                online=False),
    FeatureService(name="svc", features=[stats[["trips"]], stats.with_name("alias").with_join_key_map(
        {"driver_id": "d"}), boosted_conv], tags={"v": "1"}, owner="me"),
    boosted_conv,
], ids=lambda o: type(o).__name__ + ":" + o.name)
def test_definition_round_trips_through_registry_json(obj: object) -> None:
    back = roundtrip(obj)
    assert type(back) is type(obj)
    assert back == obj


def test_field_round_trips_through_json() -> None:
    f = Field(name="emb", dtype=Array(Float32), description="d", tags={"a": "b"})
    assert Field.from_dict(json.loads(json.dumps(f.to_dict()))) == f


@given(name=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
       keys=st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), min_size=1, max_size=3, unique=True),
       tags=st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=10), max_size=3),
       description=st.text(max_size=40))
def test_any_entity_round_trips_through_json(name: str, keys: list[str], tags: dict[str, str],
                                             description: str) -> None:
    e = Entity(name=name, join_keys=keys, tags=tags, description=description)
    assert roundtrip(e) == e


@given(st.lists(st.tuples(st.from_regex(r"f[a-z0-9_]{0,10}", fullmatch=True), all_types), min_size=1,
                max_size=6, unique_by=lambda t: t[0]),
       st.integers(min_value=0, max_value=10**7))
def test_any_feature_view_round_trips_through_json(fields: list[tuple[str, object]], ttl_seconds: int) -> None:
    fv = FeatureView(name="v", entities=[driver], source=stats_source, ttl=timedelta(seconds=ttl_seconds),
                     schema=[Field(name=n, dtype=t) for n, t in fields])  # type: ignore[arg-type]
    back = roundtrip(fv)
    assert back == fv
    assert back.ttl == fv.ttl  # type: ignore[attr-defined]


def test_view_loaded_from_json_binds_entities_and_drops_key_columns_from_its_features() -> None:
    from repast.definitions import RepoContents

    contents = RepoContents()
    contents.add(roundtrip(driver))
    contents.add(roundtrip(stats))
    contents.bind()
    fv = contents.feature_views["driver_stats"]
    assert fv.join_keys == ["driver_id"]
    assert fv.projection.features == ["conv_rate", "trips", "embedding"]


def test_on_demand_function_runs_after_loading_from_json_in_another_process(tmp_path: Path) -> None:
    # The view is defined in a repo file using a helper from another repo file, serialized, the
    # files deleted; a fresh interpreter that never saw the repo loads the JSON and runs it.
    from repast.jobs.repo_files import load_repo

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "helpers.py").write_text(textwrap.dedent('''
        OFFSET = 100

        def helper(x):
            return x * 2 + OFFSET
    '''))
    (repo / "defs.py").write_text(textwrap.dedent('''
        from helpers import helper
        from repast import Entity, FeatureView, Field, FileSource, RequestSource
        from repast.on_demand_feature_view import on_demand_feature_view
        from repast.types import Float64, Int64

        src = FileSource(name="s", path="data/s.parquet", timestamp_field="ts")
        fv = FeatureView(name="fv", entities=[Entity(name="d")], source=src,
                         schema=[Field(name="a", dtype=Int64)])
        req = RequestSource(name="r", schema=[Field(name="b", dtype=Int64)])

        @on_demand_feature_view(sources=[fv, req], schema=[Field(name="c", dtype=Float64)], mode="python")
        def combined(inputs):
            return {"c": [helper(a) + b for a, b in zip(inputs["a"], inputs["b"])]}
    '''))
    contents, _ = load_repo(repo)
    spec = json.dumps(contents.on_demand_feature_views["combined"].to_dict())
    for path in repo.iterdir():
        path.unlink()
    script = textwrap.dedent('''
        import json, sys
        from repast.definitions import object_from_dict
        odfv = object_from_dict("on_demand_feature_view", json.loads(sys.stdin.read()))
        print(json.dumps(odfv.transform({"a": [1, 2], "b": [10, 20]})))
    ''')
    out = subprocess.run([sys.executable, "-c", script], input=spec, capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"c": [112, 124]}


def test_on_demand_view_equality_ignores_the_pickle() -> None:
    assert roundtrip(boosted_conv) == boosted_conv
    assert isinstance(roundtrip(boosted_conv), OnDemandFeatureView)


def test_batch_feature_view_reads_a_batch_source_only_as_in_feast() -> None:
    from repast import BatchFeatureView

    view = BatchFeatureView(name="batch_stats", entities=[driver], source=stats_source, schema=stats.schema)
    assert FeatureView.from_dict(view.to_dict()).to_dict() == view.to_dict()
    with pytest.raises(DefinitionError, match="source must be a batch source"):
        BatchFeatureView(name="pushed", entities=[driver], source=PushSource(name="p", batch_source=stats_source))
