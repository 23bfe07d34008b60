"""KafkaSource and StreamFeatureView: Feast's names, checked at definition time, stored in the
registry and rebuilt unchanged, applied by `repast apply`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from repast import Entity, FeatureStore, Field, FileSource, KafkaSource, PushSource, StreamFeatureView
from repast.definitions import object_from_dict
from repast.definitions.stream_sources import AvroFormat, JsonFormat
from repast.errors import DefinitionError
from repast.types import Float64, Int64

DDL = "driver_id bigint, event_timestamp timestamp, conv_rate double, trips bigint"


def kafka_source(batch_path: str = "data/driver_stream", **kwargs: object) -> KafkaSource:
    args: dict[str, object] = {
        "name": "driver_stream_source", "kafka_bootstrap_servers": "127.0.0.1:9092", "topic": "driver_stats",
        "timestamp_field": "event_timestamp", "message_format": JsonFormat(schema_json=DDL),
        "batch_source": FileSource(name="driver_stream_batch", path=batch_path, timestamp_field="event_timestamp"),
        "watermark_delay_threshold": timedelta(minutes=5), **kwargs}
    return KafkaSource(**args)  # type: ignore[arg-type]


def double_rate(df):  # type: ignore[no-untyped-def]
    df["conv_rate"] = df["conv_rate"] * 2
    return df


def stream_view(source: KafkaSource | None = None, **kwargs: object) -> StreamFeatureView:
    return StreamFeatureView(name="driver_stream", entities=[Entity(name="driver", join_keys=["driver_id"])],
                             ttl=timedelta(days=1), source=source or kafka_source(),
                             schema=[Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64)],
                             **kwargs)  # type: ignore[arg-type]


def test_json_format_reads_feasts_spark_ddl_into_an_arrow_schema() -> None:
    schema = JsonFormat(schema_json=DDL + ", tags array<string>").message_schema()
    assert schema.field("driver_id").type == pa.int64()
    assert schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("tags").type == pa.list_(pa.string())


def test_json_format_with_an_unknown_type_names_the_column() -> None:
    with pytest.raises(DefinitionError, match="column 'x' has type 'money'"):
        JsonFormat(schema_json="x money")


def test_avro_format_reads_a_record_schema() -> None:
    fmt = AvroFormat(schema_json='{"type": "record", "name": "e", "fields": [{"name": "driver_id", "type": "long"}, '
                                 '{"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}}, '
                                 '{"name": "rate", "type": ["null", "double"]}]}')
    assert fmt.message_schema() == pa.schema([("driver_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")),
                                              ("rate", pa.float64())])


def test_kafka_source_needs_a_timestamp_column_of_the_message_schema() -> None:
    with pytest.raises(DefinitionError, match="timestamp_field 'ts' is not a column"):
        kafka_source(timestamp_field="ts")


def test_kafka_source_needs_a_file_batch_source() -> None:
    with pytest.raises(DefinitionError, match="batch_source must be a FileSource"):
        kafka_source(batch_source=None)


def test_stream_feature_view_refuses_an_unknown_mode() -> None:
    with pytest.raises(DefinitionError, match="mode must be one of"):
        stream_view(mode="flink")


def test_stream_feature_view_and_its_source_round_trip_through_their_dicts() -> None:
    view = stream_view(udf=double_rate, mode="spark")
    rebuilt = object_from_dict("feature_view", view.to_dict())
    assert isinstance(rebuilt, StreamFeatureView)
    assert rebuilt == view
    assert rebuilt.mode == "pandas"
    assert rebuilt.source == view.source
    assert isinstance(rebuilt.source, KafkaSource)
    assert rebuilt.source.watermark_delay_threshold == timedelta(minutes=5)
    assert rebuilt.udf is not None and "double_rate" in rebuilt.udf_source


def test_push_source_views_keep_working_beside_stream_views(tmp_path: Path) -> None:
    store = _store(tmp_path)
    batch = FileSource(name="pushed_batch", path=str(tmp_path / "pushed"), timestamp_field="event_timestamp")
    pa_table = pa.table({"driver_id": [1], "event_timestamp": pa.array([0], pa.timestamp("us", tz="UTC")),
                         "conv_rate": [0.5], "trips": [3]})
    (tmp_path / "pushed").mkdir()
    import pyarrow.parquet as pq

    pq.write_table(pa_table, tmp_path / "pushed" / "a.parquet")
    pushed = StreamFeatureView(
        name="pushed_stream", entities=["driver"], source=PushSource(name="driver_push", batch_source=batch),
        schema=[Field(name="conv_rate", dtype=Float64)])
    store.apply([Entity(name="driver", join_keys=["driver_id"]), kafka_source(str(tmp_path / "s")), stream_view(
        source=kafka_source(str(tmp_path / "s"))), pushed])
    assert sorted(v.name for v in store.list_stream_feature_views()) == ["driver_stream", "pushed_stream"]
    store.push("driver_push", pa_table.to_pandas())
    out = store.get_online_features(["pushed_stream:conv_rate"], [{"driver_id": 1}]).to_dict()
    assert out["conv_rate"] == [0.5]


def test_apply_stores_the_stream_view_and_a_second_apply_changes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    objects = [Entity(name="driver", join_keys=["driver_id"]), stream_view(kafka_source(str(tmp_path / "s")),
                                                                           udf=double_rate)]
    store.apply(objects)
    view = store.get_feature_view("driver_stream")
    assert isinstance(view, StreamFeatureView) and view.has_udf
    assert store.plan(objects) == [] or all(c.op == "none" for c in store.plan(objects))


def _store(tmp_path: Path) -> FeatureStore:
    (tmp_path / "feature_store.yaml").write_text(
        "project: streamdefs\nregistry: registry.db\nprovider: local\nonline_store: {type: sqlite, path: online.db}\n")
    return FeatureStore(repo_path=str(tmp_path))


def test_stream_feature_view_takes_aggregations_and_keeps_them_through_the_registry() -> None:
    from repast.definitions.aggregation import Aggregation

    view = stream_view(aggregations=[Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))])
    assert view.feature_names() == ["sum_trips"]
    rebuilt = object_from_dict("feature_view", view.to_dict())
    assert isinstance(rebuilt, StreamFeatureView) and rebuilt.aggregations == view.aggregations
