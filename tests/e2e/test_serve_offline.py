"""`repast serve-offline` as a user runs it: a server process a remote client gets training data from,
and its bad options as one `Error:` line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from repast.config.repo_config import parse_config
from repast.store import FeatureStore
from tests.e2e.test_cli import assert_user_error, ok, repast
from tests.kubeflow.test_remote_stores import _free_port

FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serve_offline_serves_the_repos_engine_to_a_remote_client(sample_repo: Path, tmp_path: Path) -> None:
    ok(repast("apply", cwd=sample_repo))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "REPAST_FEATURE_STORE_YAML"}
    server = subprocess.Popen([sys.executable, "-m", "repast", "serve_offline", "--port", str(port)],
                              cwd=sample_repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "serve-offline did not start listening"
            time.sleep(0.1)
        local = FeatureStore(repo_path=sample_repo)
        client = FeatureStore(config=parse_config({
            "project": "sample", "registry": str(sample_repo / "data" / "registry.db"),
            "offline_store": {"type": "remote", "host": "127.0.0.1", "port": port}}, "client", tmp_path))
        entities = pd.DataFrame({"driver_id": [1001, 1002, 1003],
                                 "event_timestamp": [pd.Timestamp.now(tz="UTC")] * 3})
        pd.testing.assert_frame_equal(client.get_historical_features(entities, FEATURES).to_df(),
                                      local.get_historical_features(entities, FEATURES).to_df())
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_serve_offline_with_a_key_and_no_cert_is_one_error_line(sample_repo: Path) -> None:
    assert_user_error(repast("serve-offline", "--key", "server.key", cwd=sample_repo), "--key and --cert go together")


def test_serve_offline_has_help() -> None:
    result = repast("serve-offline", "--help", cwd=Path.cwd())
    assert result.returncode == 0 and "Arrow Flight" in result.stdout and "--max-concurrent" in result.stdout


def test_serve_offline_on_a_taken_port_is_one_error_line(sample_repo: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_user_error(repast("serve-offline", "--port", str(port), cwd=sample_repo), "cannot listen on")
