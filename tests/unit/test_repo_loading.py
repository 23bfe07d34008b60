"""Loading a feature repo's Python files, and diffing them against what is registered."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from repast.cli.scaffold import generate_driver_stats
from repast.errors import DefinitionError
from repast.jobs.repo_files import diff, load_repo, repo_python_files
from repast.registry.base import Snapshot
from repast.store import FeatureStore

HEADER = """\
from datetime import timedelta
from repast import Entity, FeatureService, FeatureView, Field, FileSource
from repast.types import Float32, Int64
"""
ENTITY = 'driver = Entity(name="driver", join_keys=["driver_id"])\n'
SOURCE = ('source = FileSource(name="stats_source", path="data/stats.parquet", timestamp_field="event_timestamp", '
          'created_timestamp_column="created")\n')
VIEW = """\
stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(days=1), source=source,
                    schema=[Field(name="conv_rate", dtype=Float32), Field(name="avg_daily_trips", dtype=Int64)])
"""


def write(repo: Path, rel: str, body: str) -> Path:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + textwrap.dedent(body))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "feature_store.yaml").write_text("project: loading\n")
    generate_driver_stats(tmp_path / "data" / "stats.parquet", drivers=2, days=1)
    return tmp_path


def names(repo: Path) -> dict[str, list[str]]:
    contents, _ = load_repo(repo)
    return {kind: sorted(contents.by_kind(kind)) for kind, _ in
            [("entity", 0), ("data_source", 0), ("feature_view", 0), ("feature_service", 0)]}


# ---- which files, which objects -----------------------------------------------------------------

def test_definitions_are_collected_from_every_python_file_including_subdirectories(repo: Path) -> None:
    write(repo, "entities.py", ENTITY)
    write(repo, "views/driver.py", "from entities import driver\n" + SOURCE + VIEW)
    assert names(repo) == {"entity": ["driver"], "data_source": ["stats_source"], "feature_view": ["stats"],
                           "feature_service": []}


def test_a_source_used_only_inside_a_view_is_registered_too(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + VIEW.replace("source=source", "source=FileSource(path='data/stats.parquet')"))
    assert names(repo)["data_source"] == ["data/stats.parquet"]


def test_projections_at_module_level_are_not_registered_as_views(repo: Path) -> None:
    projections = 'conv_only = stats[["conv_rate"]]\nrenamed = stats.with_name("x")\n'
    write(repo, "defs.py", ENTITY + SOURCE + VIEW + projections)
    assert names(repo)["feature_view"] == ["stats"]


def test_ignored_hidden_and_virtualenv_files_are_not_imported(repo: Path) -> None:
    write(repo, "defs.py", ENTITY)
    (repo / "scratch").mkdir()
    (repo / "scratch" / "broken.py").write_text("raise RuntimeError('must not be imported')\n")
    (repo / ".hidden").mkdir()
    (repo / ".hidden" / "broken.py").write_text("raise RuntimeError('must not be imported')\n")
    (repo / "venv" / "lib").mkdir(parents=True)
    (repo / "venv" / "pyvenv.cfg").write_text("")
    (repo / "venv" / "lib" / "broken.py").write_text("raise RuntimeError('must not be imported')\n")
    (repo / ".repastignore").write_text("# scratch work\nscratch/\n")
    assert [p.relative_to(repo).as_posix() for p in repo_python_files(repo)] == ["defs.py"]


def test_feastignore_is_honoured_too(repo: Path) -> None:
    write(repo, "defs.py", ENTITY)
    (repo / "notebook_helpers.py").write_text("raise RuntimeError('must not be imported')\n")
    (repo / ".feastignore").write_text("notebook_*.py\n")
    assert [p.name for p in repo_python_files(repo)] == ["defs.py"]


# ---- duplicate names ----------------------------------------------------------------------------

def test_two_files_defining_the_same_name_differently_are_rejected_naming_both(repo: Path) -> None:
    write(repo, "a.py", ENTITY)
    write(repo, "b.py", 'other = Entity(name="driver", join_keys=["driver_key"])\n')
    with pytest.raises(DefinitionError, match=r"Entity name 'driver' is defined twice with different definitions: "
                                              r"in a\.py and in b\.py"):
        load_repo(repo)


def test_two_views_with_the_same_name_in_one_file_are_rejected(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW + VIEW.replace("stats =", "stats2 =").replace("days=1", "days=2"))
    with pytest.raises(DefinitionError, match="FeatureView name 'stats' is defined twice"):
        load_repo(repo)


def test_the_same_definition_imported_into_two_files_is_one_object(repo: Path) -> None:
    write(repo, "entities.py", ENTITY)
    write(repo, "views.py", "from entities import driver\n" + SOURCE + VIEW)
    contents, origin = load_repo(repo)
    assert list(contents.entities) == ["driver"]
    assert origin[("entity", "driver")] == "entities.py"


# ---- errors in the user's files -----------------------------------------------------------------

def test_definition_error_in_a_file_names_the_file(repo: Path) -> None:
    write(repo, "defs.py", 'driver = Entity(name="driver", join_keys=[])\n')
    with pytest.raises(DefinitionError, match=r"^defs.py:\d+: Entity 'driver': join_keys is empty"):
        load_repo(repo)


def test_python_exception_in_a_file_names_file_and_line(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + "x = 1 / 0\n")
    with pytest.raises(DefinitionError, match=r"^defs.py:5: ZeroDivisionError: division by zero$"):
        load_repo(repo)


def test_syntax_error_in_a_file_names_the_file_and_line(repo: Path) -> None:
    (repo / "defs.py").write_text("x = 1\n\ndef broken(:\n")
    with pytest.raises(DefinitionError, match=r"^defs.py:3: SyntaxError: invalid syntax$"):
        load_repo(repo)


def test_definition_error_while_importing_names_the_line(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW + "bad = stats[['nope']]\n")
    with pytest.raises(DefinitionError, match=r"^defs.py:\d+: view 'stats' has no feature"):
        load_repo(repo)


def test_validation_errors_from_plan_name_the_file_the_view_is_in(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW.replace("conv_rate", "conversion"))
    with pytest.raises(DefinitionError, match=r"^defs\.py: FeatureView 'stats': schema field 'conversion'"):
        FeatureStore(repo_path=repo).plan_repo()


def test_loading_twice_gives_equal_definitions(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW)
    assert load_repo(repo)[0] == load_repo(repo)[0]


# ---- diff: what plan shows and apply writes -----------------------------------------------------

def snapshot_of(repo: Path) -> Snapshot:
    contents, _ = load_repo(repo)
    specs = {kind: {name: obj.to_dict() for name, obj in contents.by_kind(kind).items()}
             for kind in ("entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service")}
    return Snapshot(1, specs)


def test_everything_is_added_to_an_empty_registry(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW)
    changes = diff(load_repo(repo)[0], Snapshot(0), partial=False)
    assert [(c.op, c.kind, c.name) for c in changes] == [
        ("add", "entity", "driver"), ("add", "data_source", "stats_source"), ("add", "feature_view", "stats")]


def test_an_unchanged_repo_has_no_changes(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW)
    assert diff(load_repo(repo)[0], snapshot_of(repo), partial=False) == []


def test_a_changed_definition_is_an_update_naming_the_changed_fields(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW)
    registered = snapshot_of(repo)
    write(repo, "defs.py", ENTITY + SOURCE + VIEW.replace("days=1", "days=7"))
    changes = diff(load_repo(repo)[0], registered, partial=False)
    assert [(c.op, c.name, c.fields) for c in changes] == [("update", "stats", ("ttl_seconds",))]


def test_a_definition_removed_from_the_repo_is_deleted_in_reverse_dependency_order(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW + 'svc = FeatureService(name="svc", features=[stats])\n')
    registered = snapshot_of(repo)
    write(repo, "defs.py", ENTITY)
    changes = diff(load_repo(repo)[0], registered, partial=False)
    assert [(c.op, c.kind) for c in changes] == [
        ("delete", "feature_service"), ("delete", "feature_view"), ("delete", "data_source")]


def test_a_partial_diff_keeps_what_it_was_not_given(repo: Path) -> None:
    write(repo, "defs.py", ENTITY + SOURCE + VIEW)
    registered = snapshot_of(repo)
    write(repo, "defs.py", ENTITY)
    assert diff(load_repo(repo)[0], registered, partial=True) == []


def test_helper_modules_are_read_afresh_on_each_load(repo: Path) -> None:
    # A long-lived process (a notebook, a test run) loads the repo again after a helper changed,
    # or loads another repo with a helper of the same name: it must see the files as they are now.
    write(repo, "entities.py", ENTITY)
    write(repo, "views.py", "from entities import driver\n" + SOURCE + VIEW)
    assert load_repo(repo)[0].feature_views["stats"].join_keys == ["driver_id"]
    write(repo, "entities.py", ENTITY.replace('["driver_id"]', '["driver_key"]'))
    assert load_repo(repo)[0].feature_views["stats"].join_keys == ["driver_key"]


def test_sdk_apply_of_something_that_is_not_a_definition_names_it(sample_repo: Path) -> None:
    with pytest.raises(DefinitionError, match=r"not a repast definition: 'str' \(str\)"):
        FeatureStore(sample_repo).apply(["str"])
