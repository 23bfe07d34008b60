"""The served-feature log's spools become Parquet without a reader (the server's niced conversion
process), and every served row lands exactly once whoever converts, concurrently or killed at any step."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from repast.config.repo_config import FeatureLoggingConfig
from repast.jobs.served_log import SpoolFile, convert_spools, read_feature_log, spool_record
from repast.server.feature_logging import ServedRowLogger

sys.path.insert(0, str(Path(__file__).parent))
from test_feature_logging import answer, logged_service  # noqa: E402


def sealed_spools(path: Path, spools: int, per_spool: int) -> list[str]:
    """`spools` sealed spools of `per_spool` responses each; returns the request ids written."""
    ids = []
    for s in range(spools):
        prefix = f"{s:016x}"
        spool = SpoolFile(str(path), prefix)
        spool.append(b"".join(spool_record(n, 5, {"k": [n]}, answer(["k", "v"], [[n], [0.5]]))
                              for n in range(per_spool)))
        spool.seal()
        ids += [f"{prefix}{n:016x}" for n in range(per_spool)]
    return ids


def test_the_server_converts_a_sealed_spool_without_any_reader(tmp_path: Path) -> None:
    logger = ServedRowLogger(FeatureLoggingConfig(flush_interval_secs=0.05, background_conversion=True), str(tmp_path))
    service = logged_service("logs")
    for n in range(100):
        logger.log_answer(service, {"driver_id": [n]}, answer(["driver_id", "conv_rate"], [[n], [0.5]]))
    assert logger.flush()
    spools = tmp_path / "logs" / "_spool"
    deadline = time.monotonic() + 120  # the conversion process starts and converts on its own
    while (list(spools.glob("*.jsonl")) or not list((tmp_path / "logs").glob("*.parquet"))) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(spools.glob("*.jsonl")) and list((tmp_path / "logs").glob("*.parquet"))
    logger.close()
    assert read_feature_log(str(tmp_path / "logs")).column("driver_id").to_pylist() == list(range(100))


KILLED_CONVERSION = """
import os, signal, sys
import pyarrow.parquet as pq
from repast.jobs import served_log

step = sys.argv[2]
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if step == "writing":  # half a Parquet file on disk
    real = pq.write_table
    def write_half(table, where, **kwargs):
        real(table, where)
        with open(where, "r+b") as f:
            f.truncate(100)
        killed()
    served_log.pq.write_table = write_half
elif step == "renaming":
    served_log.os.replace = killed
elif step == "removing the spool":
    served_log.os.unlink = killed
served_log.convert_spools(sys.argv[1], wait=False)
"""


@pytest.mark.parametrize("step", ["writing", "renaming", "removing the spool"])
def test_a_conversion_killed_at_any_step_loses_and_duplicates_no_row(tmp_path: Path, step: str) -> None:
    ids = sealed_spools(tmp_path, 3, 50)
    killed = subprocess.run([sys.executable, "-c", KILLED_CONVERSION, str(tmp_path), step], check=False)
    assert killed.returncode == -9
    log = read_feature_log(str(tmp_path))
    assert sorted(log.column("__request_id").to_pylist()) == sorted(ids)
    assert not list((tmp_path / "_spool").glob("*.jsonl"))


CONVERTER = """
import sys
from repast.jobs.served_log import convert_spools
print(convert_spools(sys.argv[1], wait=sys.argv[2] == "wait"))
"""


def test_concurrent_converters_and_readers_convert_each_spool_once(tmp_path: Path) -> None:
    ids = sealed_spools(tmp_path, 12, 200)
    converters = [subprocess.Popen([sys.executable, "-c", CONVERTER, str(tmp_path), mode], stdout=subprocess.PIPE,
                                   text=True) for mode in ("wait", "skip", "wait", "skip")]
    mine = convert_spools(str(tmp_path))  # a reader among them: it waits for spools being converted
    read = read_feature_log(str(tmp_path))
    converted = [int(c.communicate(timeout=300)[0]) for c in converters]
    assert sorted(read.column("__request_id").to_pylist()) == sorted(ids)  # nothing sealed was missed
    assert sum(converted) + mine == len(ids)  # each spool parsed once
    assert sorted(read_feature_log(str(tmp_path)).column("__request_id").to_pylist()) == sorted(ids)
    assert len(list(tmp_path.glob("*.parquet"))) == 12


def test_the_background_conversion_leaves_a_spool_another_converter_holds(tmp_path: Path) -> None:
    import fcntl
    import os

    sealed_spools(tmp_path, 1, 10)
    spool = next((tmp_path / "_spool").glob("*.sealed.jsonl"))
    fd = os.open(spool, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert convert_spools(str(tmp_path), wait=False) == 0 and spool.exists()
    finally:
        os.close(fd)
    assert convert_spools(str(tmp_path), wait=False) == 10 and not spool.exists()
