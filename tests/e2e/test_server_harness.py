"""Processes the server end-to-end tests drive: `repast serve` and a private redis-server.

Both run as real processes on free loopback ports. The few tests here check the harness
refuses what it should before anything listens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

REPAST = str(Path(sys.executable).parent / "repast")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_repast(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REPAST, *args], cwd=repo, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


class ServerProcess:
    """`repast serve` in `repo` on a free port; `url` is where it answers once started."""

    def __init__(self, repo: Path, *args: str, env: dict[str, str] | None = None, scheme: str = "http",
                 command: list[str] | None = None) -> None:
        self.repo = repo
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.log = repo / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.command = command or [REPAST, "serve"]  # what runs, before --port and `args`

    def start(self, timeout: float = 60) -> ServerProcess:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([*self.command, "--port", str(self.port), *self.args], cwd=self.repo,
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"repast serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1, verify=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"repast serve did not answer /health within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class RedisProcess:
    """A redis-server of the test's own, persisting to `directory` so a restart keeps the data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed; install the redis-server package (Debian: redis-server)"
            if os.environ.get("REPAST_TEST_REDIS"):
                pytest.fail(message)  # CI requires Redis
            pytest.skip(message)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.proc = None


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisProcess]:
    redis = RedisProcess(directory).start()
    try:
        yield redis
    finally:
        redis.stop()


def test_serve_refuses_a_key_without_a_cert(sample_repo: Path) -> None:
    result = run_repast(sample_repo, "serve", "--port", str(free_port()), "--key", "missing.pem")
    assert result.returncode == 1
    assert "both --key and --cert" in result.stderr


def test_serve_refuses_zero_workers(sample_repo: Path) -> None:
    result = run_repast(sample_repo, "serve", "--port", str(free_port()), "--workers", "0")
    assert result.returncode == 1
    assert "--workers" in result.stderr


def test_two_workers_share_the_port_and_merge_their_metrics(sample_repo: Path) -> None:
    with ServerProcess(sample_repo, "--workers", "2", "--no-access-log") as server:
        with httpx.Client(base_url=server.url) as http:
            for _ in range(40):
                assert http.get("/health").status_code == 200
        # New connections, so the scrape may land on either worker; each sees both workers' counts.
        for _ in range(4):
            text = httpx.get(server.url + "/metrics").text
            line = next(x for x in text.splitlines()
                        if x.startswith('repast_http_requests_total{endpoint="/health",status="200"}'))
            assert float(line.split()[-1]) >= 40
