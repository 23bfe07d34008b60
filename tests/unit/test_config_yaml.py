"""feature_store.yaml that is not text, nested without end, or an alias bomb: one ConfigError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from repast.config.repo_config import load_config
from repast.errors import ConfigError

BOMB = """project: p
flags:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def _write(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "feature_store.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_a_binary_file_is_not_yaml_text(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\x00\x01\x02\xff\xfe binary")
    with pytest.raises(ConfigError, match=rf"^{path}: not a text file"):
        load_config(path)


def test_yaml_nested_without_end_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "project: p\nflags: " + "[" * 10_000 + "]" * 10_000 + "\n")
    with pytest.raises(ConfigError, match=rf"^{path}: YAML nested more than 50 levels deep"):
        load_config(path)


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    path = _write(tmp_path, BOMB)
    with pytest.raises(ConfigError, match=rf"^{path}: YAML aliases \(\*name\) expand to more than"):
        load_config(path)


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, "project: p\nflags:\n  base: &base {a: 1, b: 2}\n  copy: *base\n")
    assert load_config(path).flags["copy"] == {"a": 1, "b": 2}


@pytest.mark.parametrize("value", ["lots", "4 gigs", "1000"])
def test_a_duckdb_memory_limit_that_is_not_a_size_is_named(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, f"project: p\noffline_store: {{type: duckdb, memory_limit: '{value}'}}\n")
    with pytest.raises(ConfigError, match=r"offline_store.memory_limit: .*is not a memory size"):
        load_config(path)


@pytest.mark.parametrize("value", ["4GB", "512 MB", "2GiB", "80%"])
def test_duckdb_memory_limits_in_duckdbs_units_are_accepted(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, f"project: p\noffline_store: {{type: duckdb, memory_limit: '{value}'}}\n")
    assert load_config(path).offline_store.memory_limit == value


def test_a_project_name_longer_than_the_registry_holds_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, f"project: {'p' * 300}\n")
    with pytest.raises(ConfigError, match="project: project name is 300 characters long; at most 200"):
        load_config(path)
