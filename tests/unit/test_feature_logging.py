"""Feature logging: served rows of a service with a LoggingConfig land in Parquet, off the request path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from repast import FeatureService, FeatureStore
from repast.config.repo_config import FeatureLoggingConfig
from repast.feature_logging import LoggingConfig
from repast.infra.offline_stores.file_source import FileLoggingDestination
from repast.jobs.online_read import FieldStatus, OnlineResponse
from repast.jobs.served_log import SpoolFile
from repast.server.app import create_app
from repast.server.feature_logging import ServedRowLogger, read_feature_log

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def logged_service(path: str) -> FeatureService:
    from repast import Entity, FeatureView, Field, FileSource
    from repast.types import Float32

    view = FeatureView(name="stats", entities=[Entity(name="driver", join_keys=["driver_id"])],
                       schema=[Field(name="conv_rate", dtype=Float32)],
                       source=FileSource(path="x.parquet", timestamp_field="ts"))
    return FeatureService(name="model", features=[view],
                          logging_config=LoggingConfig(destination=FileLoggingDestination(path=path)))


def response(n: int = 2) -> OnlineResponse:
    return OnlineResponse({"driver_id": list(range(n)), "conv_rate": [0.5] + [None] * (n - 1)},
                          statuses={"conv_rate": [FieldStatus.PRESENT] + [FieldStatus.NOT_FOUND] * (n - 1)},
                          event_timestamps={"conv_rate": [T0] + [None] * (n - 1)})


def test_served_rows_are_written_with_values_statuses_timestamps_and_request_id(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(flush_interval_secs=0.05), str(tmp_path))
    logger.log(logged_service("logs/model"), {"driver_id": [0, 1]}, response())
    assert logger.flush()
    log = read_feature_log(str(tmp_path / "logs" / "model")).to_pylist()
    assert [(r["driver_id"], r["conv_rate"], r["conv_rate__status"], r["conv_rate__timestamp"]) for r in log] == [
        (0, 0.5, "PRESENT", T0), (1, None, "NOT_FOUND", None)]
    assert log[0]["__request_id"] == log[1]["__request_id"] and len(log[0]["__request_id"]) == 32
    assert datetime.now(UTC) - log[0]["__log_timestamp"] < timedelta(minutes=1)
    logger.close()


def test_a_full_queue_drops_and_counts_rows_instead_of_blocking(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(queue_capacity=2, flush_interval_secs=0.05), str(tmp_path),
                             autostart=False)
    service = logged_service("logs")
    for _ in range(3):
        logger.log(service, {"driver_id": [0, 1, 2]}, response(3))
    assert logger.dropped == 3
    logger.start()
    assert logger.flush()
    assert (logger.written, read_feature_log(str(tmp_path / "logs")).num_rows) == (2, 6)  # responses, rows
    logger.close()


def test_a_service_without_logging_config_logs_nothing(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(flush_interval_secs=0.05), str(tmp_path))
    service = logged_service("logs")
    service.logging_config = None
    logger.log(service, {"driver_id": [0]}, response(1))
    assert logger.flush() and logger.written == 0


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    config = sample_repo / "feature_store.yaml"
    config.write_text(config.read_text() + "feature_server:\n  feature_logging:\n    flush_interval_secs: 0.05\n")
    path = next(p for p in sample_repo.glob("*.py") if "FeatureService(" in p.read_text())
    path.write_text(path.read_text() + '''
from repast.feature_logging import LoggingConfig
from repast.infra.offline_stores.file_source import FileLoggingDestination

logged_service = FeatureService(name="logged", features=[driver_stats_fv[["conv_rate"]]],
                                logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs")))
logged_on_demand = FeatureService(name="logged_on_demand",
                                  features=[driver_stats_fv[["conv_rate"]], transformed_conv_rate],
                                  logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs_od")))
''')
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    end = datetime.now(UTC)
    fs.materialize(end - timedelta(days=30), end)
    return fs


def test_the_feature_server_logs_what_it_served_for_a_logged_service(store: FeatureStore) -> None:
    app = create_app(store.backends)

    async def serve() -> dict[str, object]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"feature_service": "logged", "entities": {"driver_id": [1001, 4242]}}
            served = (await client.post("/get-online-features", json=body)).json()
            await client.post("/get-online-features", json={"features": ["driver_hourly_stats:conv_rate"],
                                                            "entities": {"driver_id": [1001]}})  # not logged
            return served  # type: ignore[no-any-return]
    served = asyncio.run(serve())
    assert app.state.feature_server.feature_log.flush()
    log = read_feature_log(str(store.repo_path / "logs")).to_pylist()
    assert [r["driver_id"] for r in log] == [1001, 4242]
    assert [r["conv_rate"] for r in log] == served["results"][1]["values"]  # type: ignore[index]
    assert [r["conv_rate__status"] for r in log] == ["PRESENT", "NOT_FOUND"]


def test_a_logged_service_with_an_on_demand_view_logs_its_request_data_and_computed_values(
        store: FeatureStore) -> None:
    app = create_app(store.backends)

    async def serve() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"feature_service": "logged_on_demand",
                    "entities": {"driver_id": [1001, 1002], "val_to_add": [1, 2], "val_to_add_2": [10, None]}}
            return (await client.post("/get-online-features", json=body)).json()  # type: ignore[no-any-return]
    served = asyncio.run(serve())
    assert app.state.feature_server.feature_log.flush()
    log = read_feature_log(str(store.repo_path / "logs_od")).to_pydict()
    assert (log["driver_id"], log["val_to_add"], log["val_to_add_2"]) == ([1001, 1002], [1, 2], [10, None])
    plus = served["metadata"]["feature_names"].index("conv_rate_plus_val1")
    assert log["conv_rate_plus_val1"] == served["results"][plus]["values"]


def test_a_batch_of_responses_is_logged_in_order_whatever_columns_each_has(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(flush_interval_secs=0.05), str(tmp_path), autostart=False)
    service = logged_service("logs")
    logger.log(service, {"driver_id": [0, 1]}, response(2))
    logger.log(service, {"driver_id": [7], "val_to_add": [3]}, OnlineResponse(
        {"driver_id": [7], "conv_rate": [0.25]}, statuses={"conv_rate": [FieldStatus.PRESENT]},
        event_timestamps={"conv_rate": [T0]}))
    logger.log(service, {"driver_id": [0]}, response(1))
    logger.start()
    assert logger.flush()
    log = read_feature_log(str(tmp_path / "logs"))
    assert log.num_rows == 4  # one file: the three responses were converted as one batch
    rows = log.to_pylist()
    assert [(r["driver_id"], r["conv_rate"], r["conv_rate__status"], r.get("val_to_add")) for r in rows] == [
        (0, 0.5, "PRESENT", None), (1, None, "NOT_FOUND", None), (7, 0.25, "PRESENT", 3), (0, 0.5, "PRESENT", None)]
    logger.close()


def test_a_logged_answer_keeps_each_values_event_time_and_none_where_it_has_none(store: FeatureStore) -> None:
    app = create_app(store.backends)

    async def serve() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"feature_service": "logged", "entities": {"driver_id": [1001, 4242]}}
            return (await client.post("/get-online-features", json=body)).json()  # type: ignore[no-any-return]
    served = asyncio.run(serve())
    assert app.state.feature_server.feature_log.flush()
    log = read_feature_log(str(store.repo_path / "logs"))
    stamps = log.column("conv_rate__timestamp")
    assert stamps.type == pa.timestamp("us", tz="UTC")
    served_at = served["results"][1]["event_timestamps"][0]
    assert stamps[0].as_py() == datetime.fromisoformat(served_at.replace("Z", "+00:00"))
    assert stamps[1].as_py() is None  # NOT_FOUND: the answer's epoch is no event time


KILLED_WRITER = """
import os, signal, sys
from repast.jobs.served_log import SpoolFile, spool_record
answer = b'{"metadata":{"feature_names":["driver_id","conv_rate"]},"results":[{"values":[1],"statuses":["PRESENT"],' \\
         b'"event_timestamps":["1970-01-01T00:00:00Z"]},{"values":[0.5],"statuses":["PRESENT"],' \\
         b'"event_timestamps":["2024-05-01T00:00:00Z"]}]}'
spool = SpoolFile(sys.argv[1], "feedfacefeedface")
spool.append(b"".join(spool_record(n, 1_714_521_600_000_000, {"driver_id": [1]}, answer) for n in range(3)))
spool.append(spool_record(3, 1_714_521_600_000_000, {"driver_id": [1]}, answer)[:40])  # killed mid-write
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_keeps_every_complete_record_and_skips_the_torn_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "logs")], check=False)
    log = read_feature_log(str(tmp_path / "logs"))
    assert log.column("__request_id").to_pylist() == [f"feedfacefeedface{n:016x}" for n in range(3)]
    assert log.column("conv_rate").to_pylist() == [0.5] * 3
    assert read_feature_log(str(tmp_path / "logs")).num_rows == 3  # converted once: read again, no duplicates


def test_a_live_writers_open_spool_is_not_converted_until_sealed(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(flush_interval_secs=60), str(tmp_path), autostart=False)
    service = logged_service("logs")
    logger.log(service, {"driver_id": [0, 1]}, response(2))
    spool = SpoolFile(str(tmp_path / "logs"), "0" * 16)
    spool.append(b'{"i":"x","t":0,"q":{"driver_id":[9]},"r":')  # open by this (live) process: not read yet
    logger.start()
    assert logger.flush()
    assert read_feature_log(str(tmp_path / "logs")).column("driver_id").to_pylist() == [0, 1]
    logger.close()


def answer(names: list[str], columns: list[list[Any]]) -> bytes:
    import orjson

    return orjson.dumps({"metadata": {"feature_names": names}, "results": [
        {"values": v, "statuses": ["PRESENT"] * len(v), "event_timestamps": ["2024-05-01T00:00:00.123456Z"] * len(v)}
        for v in columns]})


def sealed_spool(path: Path, records: list[bytes]) -> str:
    spool = SpoolFile(str(path), "feedfacefeedface")
    spool.append(b"".join(records))
    spool.seal()
    return str(next((path / "_spool").glob("*.sealed.jsonl")))


def test_the_parsed_spool_has_the_columns_types_and_order_of_the_line_by_line_conversion(tmp_path: Path) -> None:
    from repast.jobs.served_log import served_tables, spool_items, spool_record
    from repast.jobs.spool_convert import spool_table

    names = ["k", "num", "text", "ints", "flag", "none"]
    records = [
        spool_record(0, 5, {"k": [1, 2]}, answer(names, [[1, 2], [None, 2], ["x", 'y"z'], [[1, 2], None],
                                                          [True, None], [None, None]])),
        spool_record(1, 6, {"k": [-3], "extra": ["e"]}, answer(names, [[-3], [1.5], ["w"], [[3]], [False], [None]])),
        spool_record(2, 7, {"k": [4]}, answer(names, [[4], [None], [None], [[]], [None], [None]]))]
    spool = sealed_spool(tmp_path, records)
    data = Path(spool).read_bytes()
    parsed = spool_table(spool, "feedfacefeedface", data.count(b"\n"))
    assert parsed is not None  # parsed in C++, not handed back to the line-by-line conversion
    expected = served_tables(spool_items(data, "feedfacefeedface")[0])
    assert parsed.schema == expected.schema and parsed.equals(expected)
    assert parsed.column("k").to_pylist() == [1, 2, -3, 4] and parsed.column("num").type == pa.float64()


def test_a_column_mixing_text_and_numbers_is_logged_as_text(tmp_path: Path) -> None:
    from repast.jobs.served_log import spool_record

    sealed_spool(tmp_path / "logs", [spool_record(n, 5, {"k": [n]}, answer(["k", "v"], [[n], [value]]))
                                     for n, value in enumerate([1, "a"])])
    assert read_feature_log(str(tmp_path / "logs")).column("v").to_pylist() == ["1", "a"]


def test_a_damaged_line_in_the_middle_is_skipped_and_kept_aside(tmp_path: Path) -> None:
    from repast.jobs.served_log import spool_record

    good = [spool_record(n, 5, {"k": [n]}, answer(["k", "v"], [[n], [0.5]])) for n in range(3)]
    sealed_spool(tmp_path / "logs", [good[0], b'{"i":1,"t":5,"q":{"k":[1]},"r":{"metad\x00\n', good[2]])
    log = read_feature_log(str(tmp_path / "logs"))
    assert log.column("k").to_pylist() == [0, 2]  # the rest of the spool is converted
    kept = list((tmp_path / "logs" / "_spool" / "rejected").iterdir())
    assert [p.read_bytes() for p in kept] == [b'{"i":1,"t":5,"q":{"k":[1]},"r":{"metad\x00\n']
    assert read_feature_log(str(tmp_path / "logs")).num_rows == 2


def test_buffered_answers_are_copied_not_kept_and_a_large_batch_is_written_whole(tmp_path: Path) -> None:
    import sys

    logger = ServedRowLogger(FeatureLoggingConfig(flush_interval_secs=60), str(tmp_path), autostart=False)
    service = logged_service("logs")
    answers = [answer(["driver_id", "conv_rate"], [[n], [0.5]]) for n in range(3000)]  # ~0.5 MB: several wakes' worth
    references = [sys.getrefcount(served) for served in answers]
    for n in range(3000):
        logger.log_answer(service, {"driver_id": [n]}, answers[n])
    assert [sys.getrefcount(served) for served in answers] == references  # copied into the batch, not kept
    logger.start()
    assert logger.flush()
    assert read_feature_log(str(tmp_path / "logs")).column("driver_id").to_pylist() == list(range(3000))
    logger.close()


def test_request_keys_of_every_kind_are_logged_as_sent(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(flush_interval_secs=60), str(tmp_path), autostart=False)
    log = logger.for_service(logged_service("logs"))  # what the feature server calls per response
    assert log is not None
    names = ["driver_id", "city", "conv_rate"]
    log({"driver_id": [1, 2**62], "city": ["Oslo", 'a "quoted"\nline'], "val_to_add": [3, None]},
        answer(names, [[1, 2**62], ["Oslo", 'a "quoted"\nline'], [0.5, None]]))
    log({"driver_id": [7], "city": ["AAEC"], "val_to_add": [-1], "note": ["é"]},  # bytes arrive as base64 text
        answer(names, [[7], ["AAEC"], [0.25]]))
    logger.start()
    assert logger.flush()
    rows = read_feature_log(str(tmp_path / "logs")).to_pylist()
    assert [(r["driver_id"], r["city"], r["val_to_add"], r.get("note"), r["conv_rate"]) for r in rows] == [
        (1, "Oslo", 3, None, 0.5), (2**62, 'a "quoted"\nline', None, None, None), (7, "AAEC", -1, "é", 0.25)]
    assert len({r["__request_id"] for r in rows}) == 2
    logger.close()


def test_no_log_function_for_a_service_when_feature_logging_is_disabled(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(enabled=False), str(tmp_path))
    assert logger.for_service(logged_service("logs")) is None
