"""Load a feature repo's Python files, validate the definitions, and diff them against the registry."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from repast.definitions import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    PushSource,
    RepoContents,
    spec_of,
)
from repast.definitions.names import check_name
from repast.definitions.project import Project
from repast.definitions.registry_objects import KIND_LABELS, KINDS, NOT_FROM_FILES, kind_of
from repast.definitions.versions import next_version
from repast.errors import DefinitionError
from repast.registry.base import Change, Snapshot

IGNORE_FILE = ".repastignore"
_DEFINITION_TYPES = (Project, Entity, DataSource, FeatureView, OnDemandFeatureView, FeatureService)


def repo_python_files(repo_path: Path) -> list[Path]:
    """The repo's .py files, skipping hidden dirs, virtualenvs and `.repastignore` patterns."""
    patterns = []
    for name in (IGNORE_FILE, ".feastignore"):
        if (repo_path / name).exists():
            patterns += [p.strip() for p in (repo_path / name).read_text().splitlines()
                         if p.strip() and not p.startswith("#")]
    files = []
    for path in sorted(repo_path.rglob("*.py")):
        rel = path.relative_to(repo_path)
        parts = rel.parts[:-1]
        if any(p.startswith(".") or p in ("__pycache__", "site-packages") for p in parts):
            continue
        if any((repo_path.joinpath(*parts[: i + 1]) / "pyvenv.cfg").exists() for i in range(len(parts))):
            continue
        if any(fnmatch.fnmatch(str(rel), p) or fnmatch.fnmatch(str(rel), p.rstrip("/") + "/*") for p in patterns):
            continue
        files.append(path)
    return files


def _is_full_view(obj: Any) -> bool:
    """True for a view object itself, False for a projection such as fv[["a"]] or fv.with_name()."""
    p = obj.projection
    return p.name_alias == "" and not p.join_key_map and p.features == obj.feature_names()


def load_repo(repo_path: Path) -> tuple[RepoContents, dict[tuple[str, str], str]]:
    """Import every Python file of the repo and collect its definitions.

    Returns the contents and, for error messages, the file each (kind, name) was defined in.
    """
    contents = RepoContents()
    origin: dict[tuple[str, str], str] = {}
    files = repo_python_files(repo_path)
    _forget_repo_modules(files)
    sys.path.insert(0, str(repo_path))
    try:
        for path in files:
            module = _import_file(path, repo_path)
            for value in list(vars(module).values()):
                if isinstance(value, _DEFINITION_TYPES):
                    collect(contents, origin, value, path.name)
    finally:
        sys.path.remove(str(repo_path))
        _forget_repo_modules(files)
    return contents, origin


def _forget_repo_modules(files: list[Path]) -> None:
    """Drop the repo's files from sys.modules (`from entities import driver` caches them there),
    so a later load in the same process reads the files as they are then, not as they were.
    Only the repo's own definition files: a virtualenv inside the repo must stay imported."""
    paths = {os.path.realpath(p) for p in files}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file) in paths:
            del sys.modules[name]


def _import_file(path: Path, repo_path: Path) -> Any:
    rel = path.relative_to(repo_path).with_suffix("")
    name = "repast_repo." + ".".join(rel.parts)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except DefinitionError as e:
        raise DefinitionError(f"{_where(e, path)}: {e}") from None
    except SyntaxError as e:  # the line is in the exception, not in the traceback
        if e.filename != str(path) or not e.lineno:
            raise DefinitionError(f"{_where(e, path)}: {type(e).__name__}: {e}") from None
        raise DefinitionError(f"{path.name}:{e.lineno}: {type(e).__name__}: {e.msg}") from None
    except Exception as e:  # a user's file failed to import; say where, not a traceback
        raise DefinitionError(f"{_where(e, path)}: {type(e).__name__}: {e}") from None
    except SystemExit as e:  # sys.exit() in a definitions file would end the command silently
        raise DefinitionError(f"{_where(e, path)}: the file called sys.exit({e.code!r}) while being "
                              "loaded; a definitions file must not exit") from None
    except KeyboardInterrupt as e:
        raise DefinitionError(f"{_where(e, path)}: interrupted (KeyboardInterrupt) while this file "
                              "was being loaded") from None
    return module


def _where(e: BaseException, path: Path) -> str:
    """`file.py:LINE` of the deepest frame of `path` in the traceback (`file.py` when none)."""
    tb = e.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{path.name}:{line}" if line else path.name


def collect(contents: RepoContents, origin: dict[tuple[str, str], str], obj: Any, file: str) -> None:
    """Add `obj` and the sources it carries (a view's source, a push source's batch source, an
    on-demand view's request sources); a name already taken by a different definition is an error."""
    if isinstance(obj, (FeatureView, OnDemandFeatureView)) and not _is_full_view(obj):
        return
    kind = kind_of(obj)
    check_name(type(obj).__name__, obj.name, any_characters=kind == "data_source", at=file)
    existing = contents.by_kind(kind).get(obj.name)
    if existing is not None and existing is not obj and spec_of(existing) != spec_of(obj):
        raise DefinitionError(f"{KIND_LABELS[kind]} name '{obj.name}' is defined twice with different "
                              f"definitions: in {origin[(kind, obj.name)]} and in {file}")
    if existing is None:
        contents.add(obj)
        origin[(kind, obj.name)] = file
    if isinstance(obj, FeatureView):
        collect(contents, origin, obj.source, file)
    if isinstance(obj, PushSource):
        collect(contents, origin, obj.batch_source, file)
    if isinstance(obj, OnDemandFeatureView):
        for rs in obj.request_sources:
            collect(contents, origin, rs, file)


def diff(desired: RepoContents, registered: Snapshot, partial: bool) -> list[Change]:
    """What an apply of `desired` changes. With `partial`, objects missing from `desired` stay."""
    changes = []
    for kind in KINDS:
        current = registered.specs.get(kind, {})
        for name, obj in desired.by_kind(kind).items():
            spec = obj.to_dict()
            if name not in current:
                changes.append(Change("add", kind, name, spec))
                continue
            old, new = _comparable(kind, current[name]), spec_of(obj)
            if old != new:
                fields = tuple(sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)))
                changes.append(Change("update", kind, name, spec, fields))
        if not partial and kind not in NOT_FROM_FILES:
            for name in current:
                if name not in desired.by_kind(kind):
                    changes.append(Change("delete", kind, name))
    # Deletes go in reverse dependency order so a service is removed before its views.
    return [c for c in changes if c.op != "delete"] + [c for c in reversed(changes) if c.op == "delete"]


VERSIONED_KINDS = ("feature_view", "on_demand_feature_view")


def version_changes(changes: list[Change], registered: Snapshot) -> list[Change]:
    """`changes` plus a new FeatureViewVersion for each view (feature or on-demand) they add or change
    in what it serves or how it computes it (repast.definitions.versions); a view pinned to a version
    that does not match is an error."""
    recorded = registered.specs.get("feature_view_version", {})
    out = []
    for change in changes:
        if change.kind in VERSIONED_KINDS and change.op != "delete" and change.spec is not None:
            version = next_version(change.spec, recorded, registered.specs.get(change.kind, {}).get(change.name))
            if version is not None:
                out.append(Change("add", "feature_view_version", version.name, version.to_dict()))
    return changes + out


def _comparable(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind in ("on_demand_feature_view", "feature_view"):  # a stream feature view's udf too
        return {k: v for k, v in spec.items() if k not in ("udf_pickle", "udf_signature")}
    return spec
