"""The package's import graph has no cycles, and a lower layer never imports a higher one.

Every `import` in repast/ counts: inside functions (a deferred import is still a dependency) and
under `if TYPE_CHECKING:` (a type-only import still couples the modules). A backend looked up in
the plugin table counts as an import of the module that looks it up: `plugin_class(ONLINE, ...)`
depends on every online store of the table (imported on use; a worker process started by name is
another process, not an import).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import repast
from repast.plugins import table

ROOT = Path(repast.__file__).parent
KINDS = {"OFFLINE": table.OFFLINE, "ONLINE": table.ONLINE, "REGISTRY": table.REGISTRY, "SOURCE": table.SOURCE,
         "VECTOR": table.VECTOR}

# The layers, lowest first: a module may import its own layer and the ones below. The most specific
# prefix wins, so a module can sit below the rest of its folder (vector.metric: the metrics a field
# declaration is checked against; the vector search backends sit with the stores they search).
LAYERS: list[list[str]] = [
    # what everything may use: values, errors, the capability record, the configs backends share, and
    # where a path lives (local, S3, GCS: every reader of files goes through it, saved datasets too)
    ["repast.version", "repast.errors", "repast.types", "repast.log_limit", "repast.sql_quoting",
     "repast.offline.storage_paths",
     "repast.plugins.capabilities", "repast.plugins.base_config", "repast.config.display", "repast.config.yaml_loader",
     "repast.vector.metric", "repast.plugins.table"],
    ["repast.definitions"],  # the declarative model: pure data
    # backends, and what they compute for every store alike
    ["repast.offline", "repast.online", "repast.registry", "repast.vector.semantics", "repast.vector.numbers",
     "repast.vector.base",
     "repast.vector.sqlite", "repast.vector.sqlite_columns", "repast.vector.sqlite_hnsw", "repast.vector.sqlite_keeper",
     "repast.vector.postgres", "repast.vector.postgres_columns",
     "repast.ondemand.transform", "repast.ondemand.storage", "repast.aggregations"],
    ["repast.config"],  # feature_store.yaml, which names backends
    # the operations, over the collaborators they take
    ["repast.ondemand", "repast.jobs", "repast.vector", "repast.monitoring", "repast.streaming"],
    ["repast.server", "repast.ui", "repast.client"],  # given the collaborators (jobs.backends), never the facade
    ["repast.store", "repast.store_feast"],  # the composition root: wires the rest
    # entry points: the command, the server's worker processes, the Kubeflow/KServe/Spark entries
    ["repast.cli", "repast.server.worker", "repast.kserve", "repast.kubeflow", "repast.spark", "repast.infra",
     "repast.feast_paths", "repast.__main__", "repast"],
]


def layer_of(module: str) -> int:
    best, rank = "", -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, i
    assert rank >= 0, f"{module} is in no layer of tests/unit/test_import_graph.py"
    return rank


def _module_name(path: Path) -> str:
    parts = ["repast", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _plugin_targets(kind: str) -> set[str]:
    return {target.partition(":")[0] for target in table.PLUGINS[kind].values()}


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    found: set[str] = set()

    def target(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(t for a in node.names if (t := target(a.name)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:  # `from repast import errors` imports the module repast.errors
                t = target(f"{base}.{alias.name}") if f"{base}.{alias.name}" in known else target(base)
                if t:
                    found.add(t)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "plugin_class":
            kind = node.args[0] if node.args else None
            assert isinstance(kind, ast.Name) and kind.id in KINDS, \
                f"{module}: plugin_class must be called with a kind of the table ({', '.join(KINDS)})"
            found.update(t for m in _plugin_targets(KINDS[kind.id]) if (t := target(m)))
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    known = set(files)
    return {m: _imports(ast.parse(p.read_text()), m, p.name == "__init__.py", known) for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_of_repast_has_no_cycles_counting_type_only_imports() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_a_higher_layer() -> None:
    upward = sorted(f"{m} (layer {layer_of(m)}) -> {t} (layer {layer_of(t)})"
                    for m, targets in import_graph().items() for t in targets if layer_of(t) > layer_of(m))
    assert upward == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_a_type_only_import_and_a_plugin_lookup_count_as_imports() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from repast.store import FeatureStore\n"
                     "def f():\n    return plugin_class(ONLINE, 'sqlite', object)\n")
    found = _imports(tree, "repast.x", False, {"repast.store", "repast.online.sqlite", "repast.online.redis"})
    assert found == {"repast.store", "repast.online.sqlite", "repast.online.redis"}


def test_a_lookup_by_a_kind_not_named_in_the_table_is_refused() -> None:
    with pytest.raises(AssertionError, match="plugin_class must be called with a kind"):
        _imports(ast.parse("plugin_class(kind, 'x', object)"), "repast.x", False, set())
