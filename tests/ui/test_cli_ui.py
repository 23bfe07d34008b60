"""`repast ui` as a user runs it: a real server process, and its bad options."""

from __future__ import annotations

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
