"""The "try it" snippets are copied into a shell or a Python file: every name and value in them is
quoted for that language, so a hostile object name or key value stays data (it never runs)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repast.registry.base import Snapshot
from repast.ui.catalog import Ref, build_catalog
from repast.ui.tryit import snippets

HOSTILE = "x'$(touch PWNED)'x\"`touch PWNED2`\"\\\n;touch PWNED3"
SPECS = {
    "entity": {"user": {"name": "user", "join_keys": ["user_id"], "value_type": "STRING"}},
    "data_source": {"src": {"type": "file", "name": "src"}},
    "feature_view": {HOSTILE: {"name": HOSTILE, "source": {"type": "file", "name": "src"}, "entities": ["user"],
                               "schema": [{"name": "f'$(touch PWNED4)'", "dtype": "Int64"}]}},
    "feature_service": {HOSTILE: {"name": HOSTILE, "features": [{"view_name": HOSTILE,
                                                                "features": ["f'$(touch PWNED4)'"]}]}},
}
COLUMNS: dict[str, list[Any]] = {"user_id": [HOSTILE, "it's", 7, 1.5]}
URL = "http://127.0.0.1:1/x'$(touch PWNED5)'"


def _snippets(kind: str) -> dict[str, str]:
    catalog = build_catalog("p", Snapshot(1, SPECS))
    return snippets(catalog, Ref(kind, HOSTILE), COLUMNS, URL, with_token=True)


@pytest.mark.parametrize("kind", ["feature_view", "feature_service"])
def test_the_curl_snippet_passes_every_value_as_data_to_curl(kind: str, tmp_path: Path) -> None:
    curl = _snippets(kind)["curl"]
    record = tmp_path / "args.json"
    fake_curl = (f'curl() {{ {sys.executable} -c "import json, sys; '
                 f'json.dump(sys.argv[1:], open(\'{record}\', \'w\'))" "$@"; }}\n')
    result = subprocess.run(["bash", "-c", fake_curl + curl], cwd=tmp_path, capture_output=True, text=True,
                            env={"REPAST_TOKEN": "t0ken", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.json"]  # no PWNED file: nothing ran
    args = json.loads(record.read_text())
    assert args[args.index("-X") + 2] == URL.rstrip("/") + "/get-online-features"
    assert "Authorization: Bearer t0ken" in args
    body = json.loads(args[args.index("-d") + 1])
    assert body["entities"] == COLUMNS
    assert body.get("feature_service") == HOSTILE or body["features"] == [f"{HOSTILE}:f'$(touch PWNED4)'"]


@pytest.mark.parametrize("kind", ["feature_view", "feature_service"])
def test_the_python_snippet_holds_every_value_as_a_literal(kind: str) -> None:
    python = _snippets(kind)["python"]
    compile(python, "<snippet>", "exec")
    call = next(n for n in ast.walk(ast.parse(python))
                if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "get_online_features")
    args = {k.arg: k.value for k in call.keywords}
    rows = ast.literal_eval(args["entity_rows"])
    assert rows == [{"user_id": v} for v in COLUMNS["user_id"]]
    if kind == "feature_view":
        assert ast.literal_eval(args["features"]) == [f"{HOSTILE}:f'$(touch PWNED4)'"]
    else:
        assert ast.literal_eval(args["features"].args[0]) == HOSTILE  # type: ignore[attr-defined]


def test_the_python_snippet_writes_non_finite_floats_as_python() -> None:
    catalog = build_catalog("p", Snapshot(1, SPECS))
    python = snippets(catalog, Ref("feature_view", HOSTILE), {"user_id": [float("inf"), float("-inf")]}, URL,
                      with_token=False)["python"]
    call = next(n for n in ast.walk(ast.parse(python))
                if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "get_online_features")
    rows_node = next(k.value for k in call.keywords if k.arg == "entity_rows")
    expression = compile(ast.Expression(rows_node), "<snippet>", "eval")
    rows = eval(expression, {"__builtins__": {"float": float}})  # noqa: S307
    assert rows == [{"user_id": float("inf")}, {"user_id": float("-inf")}]
