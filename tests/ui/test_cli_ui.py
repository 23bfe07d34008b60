"""`repast ui` as a user runs it: a real server process, and its bad options."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from repast.cli.scaffold import init_repo
from tests.ui.conftest import REPAST, ROOT, running_ui

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = init_repo(tmp_path_factory.mktemp("cli") / "repo", "cli")
    assert subprocess.run([REPAST, "apply"], cwd=path, capture_output=True, timeout=120).returncode == 0
    return path


def test_repast_ui_serves_pages_and_the_api_under_the_root_path(repo: Path) -> None:
    with running_ui(repo) as url:
        page = httpx.get(url + "/projects/cli/feature-views/driver_hourly_stats")
        assert page.status_code == 200 and f'href="{ROOT}/static/ui.css"' in page.text
        api = httpx.get(url + "/api/v1/projects/cli/entities").json()
        assert [i["name"] for i in api["items"]] == ["driver"]
        assert httpx.get(url + "/static/ui.js").status_code == 200


@pytest.mark.parametrize(("args", "message"), [
    (["--root-path", "/a b"], "--root-path must be a URL path"),
    (["--key", "missing.pem"], "TLS needs both --key and --cert"),
    (["--key", "k.pem", "--cert", "c.pem"], "TLS file 'k.pem' does not exist"),
    (["--registry-ttl-sec", "-1"], "--registry-ttl-sec must not be negative"),
])
def test_bad_options_are_one_error_line_and_exit_1(repo: Path, args: list[str], message: str) -> None:
    done = subprocess.run([REPAST, "ui", *args], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Error:") and message in done.stderr and "Traceback" not in done.stderr


def test_a_busy_port_is_one_error_line_naming_the_fix_and_exit_1(repo: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([REPAST, "ui", "-h", "127.0.0.1", "--port", str(port)], cwd=repo, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot listen on 127.0.0.1:")
    assert "choose another --port" in lines[0]


def test_the_default_port_is_not_jupyters(repo: Path) -> None:
    done = subprocess.run([REPAST, "ui", "--help"], cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert "6567" in done.stdout and "8888]" not in done.stdout


@pytest.mark.parametrize("args", [["-h"], ["plan", "-h"], ["feature-views", "list", "-h"]])
def test_dash_h_is_help_where_feast_gives_it_no_other_meaning(args: list[str]) -> None:
    done = subprocess.run([REPAST, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Usage: repast" in done.stdout


@pytest.fixture(scope="module")
def bounded_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo whose feature_server section sets tight header bounds: the UI takes the same ones."""
    path = init_repo(tmp_path_factory.mktemp("bounded") / "repo", "bounded")
    config = path / "feature_store.yaml"
    config.write_text(config.read_text() + "feature_server:\n  header_timeout_seconds: 1\n  max_header_bytes: 2048\n")
    assert subprocess.run([REPAST, "apply"], cwd=path, capture_output=True, timeout=120).returncode == 0
    return path


def _answer(port: int, data: bytes, wait: float = 30) -> bytes:
    """Everything the server sends back for `data` until it closes the connection."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
        return received


def test_repast_ui_has_the_feature_servers_header_bounds_and_refuses_upgrades(bounded_repo: Path) -> None:
    from urllib.parse import urlparse

    with running_ui(bounded_repo) as url:
        port = urlparse(url).port
        assert port is not None
        too_large = _answer(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        assert too_large.startswith(b"HTTP/1.1 431"), too_large[:200]
        unfinished = _answer(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never completed
        assert unfinished.startswith(b"HTTP/1.1 408"), unfinished[:200]
        upgrade = _answer(port, f"GET {ROOT}/healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode(), wait=10)
        assert upgrade.startswith(b"HTTP/1.1 400") and b"upgrade_not_supported" in upgrade, upgrade[:300]
