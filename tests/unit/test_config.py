"""feature_store.yaml: defaults, Feast's spellings, ${VAR} substitution, and errors naming file and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from repast.config.repo_config import ENV_CONFIG_PATH, RepoConfig, find_config, load_config
from repast.errors import ConfigError


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feature_store.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_project_alone_gets_the_embedded_defaults(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, "project: p\n"))
    assert cfg.offline_store.type == "duckdb"
    assert cfg.online_store.type == "sqlite"
    assert cfg.registry_config.path == "data/registry.db"
    assert cfg.registry_config.cache_ttl_seconds == 60
    assert cfg.registry_url() == "sqlite:///" + str(tmp_path.resolve() / "data" / "registry.db")


def test_a_config_built_in_python_gets_the_same_defaults(tmp_path: Path) -> None:
    cfg = RepoConfig(project="p", repo_path=tmp_path)
    assert (cfg.offline_store.type, cfg.online_store.type) == ("duckdb", "sqlite")
    assert cfg.registry_config.path == "data/registry.db"


def test_load_config_accepts_the_repo_directory(tmp_path: Path) -> None:
    write_yaml(tmp_path, "project: p\n")
    assert load_config(tmp_path).project == "p"


def test_registry_mapping_sets_path_and_cache_ttl(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, """\
        project: p
        registry:
          path: postgresql+psycopg://postgres@127.0.0.1:5432/test
          cache_ttl_seconds: 5
    """))
    assert cfg.registry_url() == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert cfg.registry_config.cache_ttl_seconds == 5


def test_relative_paths_resolve_against_the_repo_not_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(write_yaml(tmp_path, "project: p\nregistry: meta/reg.db\n"))
    monkeypatch.chdir("/")
    assert cfg.registry_url() == "sqlite:///" + str(tmp_path.resolve() / "meta" / "reg.db")
    assert cfg.resolve_path("/abs/file") == "/abs/file"


# ---- Feast's spellings --------------------------------------------------------------------------

def test_feast_offline_store_type_file_means_the_embedded_engine(tmp_path: Path) -> None:
    from repast.offline import OFFLINE_ENGINES

    cfg = load_config(write_yaml(tmp_path, "project: p\noffline_store:\n  type: file\n"))
    assert OFFLINE_ENGINES[cfg.offline_store.type] == OFFLINE_ENGINES["duckdb"]


def test_feast_provider_local_and_serialization_version_are_accepted(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, """\
        project: p
        provider: local
        entity_key_serialization_version: 2
    """))
    assert cfg.provider == "local"
    assert cfg.entity_key_serialization_version == 2


def test_feast_sqlite_online_store_with_a_path(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, """\
        project: p
        online_store:
          type: sqlite
          path: data/online_store.db
    """))
    assert cfg.online_store.path == "data/online_store.db"


def test_feast_redis_online_store_with_a_connection_string(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, """\
        project: p
        online_store:
          type: redis
          connection_string: "localhost:6379"
    """))
    assert cfg.online_store.type == "redis"
    assert cfg.online_store.connection_string.get_secret_value() == "localhost:6379"


def test_secrets_in_the_config_are_masked_when_printed(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, """\
        project: p
        online_store:
          type: redis
          connection_string: "redis.internal:6379,password=hunter2"
    """))
    assert "hunter2" not in repr(cfg) and "hunter2" not in cfg.model_dump_json()


def test_feast_top_level_no_auth_is_the_servers_auth(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, "project: p\nauth:\n  type: no_auth\n"))
    assert cfg.feature_server.auth.type == "no_auth"


def test_top_level_token_auth_configures_the_server(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, "project: p\nauth: {type: token, read_tokens: [r], write_tokens: [w]}\n"))
    assert cfg.feature_server.auth.type == "token"


def test_feast_auth_types_repast_lacks_are_named(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nauth:\n  type: oidc\n")
    with pytest.raises(ConfigError, match=r"auth\.type 'oidc' is not supported"):
        load_config(path)


def test_auth_given_twice_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nauth: {type: no_auth}\nfeature_server: {auth: {type: no_auth}}\n")
    with pytest.raises(ConfigError, match="auth is given twice"):
        load_config(path)


def test_unsupported_provider_is_rejected_naming_the_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nprovider: gcp\n")
    with pytest.raises(ConfigError, match=rf"{path}: provider: "):
        load_config(path)


def test_serialization_version_out_of_range_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nentity_key_serialization_version: 9\n")
    with pytest.raises(ConfigError, match="entity_key_serialization_version"):
        load_config(path)


# ---- errors name the file and the key -----------------------------------------------------------

def test_unknown_top_level_key_names_file_and_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nonline_stor: {}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: online_stor: unknown key$"):
        load_config(path)


def test_unknown_backend_key_names_file_and_dotted_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nonline_store:\n  type: sqlite\n  pth: x.db\n")
    with pytest.raises(ConfigError, match=rf"^{path}: online_store.pth: unknown key$"):
        load_config(path)


def test_unknown_registry_key_names_file_and_dotted_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nregistry:\n  path: r.db\n  ttl: 5\n")
    with pytest.raises(ConfigError, match=rf"^{path}: registry.ttl: unknown key$"):
        load_config(path)


def test_wrong_type_names_file_and_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nregistry:\n  path: r.db\n  cache_ttl_seconds: soon\n")
    with pytest.raises(ConfigError, match=rf"^{path}: registry.cache_ttl_seconds: Input should be a valid number"):
        load_config(path)


def test_negative_cache_ttl_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nregistry: {path: r.db, cache_ttl_seconds: -1}\n")
    with pytest.raises(ConfigError, match=r"registry\.cache_ttl_seconds"):
        load_config(path)


def test_unknown_backend_type_lists_the_known_types(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\noffline_store:\n  type: bigquery\n")
    with pytest.raises(ConfigError, match=r"offline_store: unknown type 'bigquery'; known types: dask, duckdb, file"):
        load_config(path)


def test_missing_project_is_named(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "registry: r.db\n")
    with pytest.raises(ConfigError, match=rf"{path}: project: Field required"):
        load_config(path)


def test_project_name_with_spaces_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="project: project must be letters"):
        load_config(write_yaml(tmp_path, "project: my project\n"))


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "project: p\nonline_store: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{path}: malformed YAML"):
        load_config(path)


def test_a_yaml_list_instead_of_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "- project\n")
    with pytest.raises(ConfigError, match=rf"^{path}: expected a mapping"):
        load_config(path)


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found; run inside a feature repo, pass --repo"):
        load_config(tmp_path)


def test_repo_path_cannot_be_set_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="repo_path: unknown key"):
        load_config(write_yaml(tmp_path, "project: p\nrepo_path: /elsewhere\n"))


# ---- ${VAR} substitution ------------------------------------------------------------------------

def test_environment_variables_are_substituted_in_nested_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPAST_TEST_DB_HOST", "db.internal")
    monkeypatch.setenv("REPAST_TEST_PROJECT", "fraud")
    cfg = load_config(write_yaml(tmp_path, """\
        project: ${REPAST_TEST_PROJECT}
        registry:
          path: postgresql+psycopg://app@${REPAST_TEST_DB_HOST}:5432/features
    """))
    assert cfg.project == "fraud"
    assert cfg.registry_url() == "postgresql+psycopg://app@db.internal:5432/features"


def test_substituted_value_is_validated_with_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPAST_TEST_TTL", "30")
    path = write_yaml(tmp_path, "project: p\nregistry: {path: r.db, cache_ttl_seconds: '${REPAST_TEST_TTL}'}\n")
    cfg = load_config(path)
    assert cfg.registry_config.cache_ttl_seconds == 30


def test_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPAST_TEST_UNSET", raising=False)
    path = write_yaml(tmp_path, "project: p\nflags: {x: '${REPAST_TEST_UNSET}'}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: environment variable \$\{{REPAST_TEST_UNSET\}} is not set$"):
        load_config(path)


def test_a_missing_variable_of_a_section_is_named_when_the_section_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repast.store import FeatureStore

    monkeypatch.delenv("REPAST_TEST_UNSET", raising=False)
    path = write_yaml(tmp_path, "project: p\nregistry: ${REPAST_TEST_UNSET}/r.db\n")
    cfg = load_config(path)
    with pytest.raises(ConfigError, match=rf"^{path}: environment variable \$\{{REPAST_TEST_UNSET\}} is not set "
                                          r"\(needed by registry\)$"):
        FeatureStore(config=cfg)


def test_unset_server_tokens_do_not_stop_commands_that_do_not_serve(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repast.store import FeatureStore

    monkeypatch.delenv("REPAST_TEST_READ_TOKEN", raising=False)
    path = write_yaml(tmp_path, "project: p\nfeature_server:\n  auth: {type: token, "
                                "read_tokens: ['${REPAST_TEST_READ_TOKEN}']}\n")
    store = FeatureStore(config=load_config(path))
    assert store.list_feature_views() == []
    with pytest.raises(ConfigError, match=r"REPAST_TEST_READ_TOKEN\} is not set \(needed by feature_server\)"):
        store.config.require_section("feature_server")


def test_dollar_signs_without_braces_are_left_alone(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, "project: p\nregistry: data/$HOME.db\n"))
    assert cfg.registry_config.path == "data/$HOME.db"


# ---- where the configuration is found -----------------------------------------------------------

def test_explicit_repo_path_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG_PATH, "/somewhere/feature_store.yaml")
    assert find_config(tmp_path) == (tmp_path, "repo_path argument")


def test_environment_variable_names_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_yaml(tmp_path, "project: from_env\n")
    monkeypatch.setenv(ENV_CONFIG_PATH, str(path))
    found, why = find_config(None)
    assert load_config(found).project == "from_env"
    assert why == f"${ENV_CONFIG_PATH}"


def test_masked_url_hides_only_the_password() -> None:
    from repast.config.repo_config import masked_url

    assert masked_url("postgresql+psycopg://app:s3cret@db:5432/features") == "postgresql+psycopg://app:***@db:5432/features"
    assert masked_url("postgresql://postgres@127.0.0.1/test") == "postgresql://postgres@127.0.0.1/test"
    assert masked_url("data/registry.db") == "data/registry.db"


# ---- Feast 0.67's feature_store.yaml keys ----------------------------------------------------------

def test_feast_067_keys_are_accepted_with_their_meaning(tmp_path: Path) -> None:
    from repast.config.repo_config import parse_config

    config = parse_config({
        "project": "p", "offline_store": {"type": "dask"}, "batch_engine": {"type": "local"},
        "coerce_tz_aware": True, "materialization": {"pull_latest_features": True},
        "feature_server": {"type": "local", "feature_logging": {"enabled": True, "queue_capacity": 100}},
        "online_store": {"type": "sqlite", "vector_enabled": True, "vector_len": 384},
    }, "feature_store.yaml", tmp_path)
    assert config.offline_store.type == "dask" and config.feature_server.feature_logging.queue_capacity == 100
    assert (config.online_store.vector_enabled, config.online_store.vector_len) == (True, 384)


@pytest.mark.parametrize(("data", "message"), [
    ({"batch_engine": {"type": "spark.engine"}}, "not supported by repast: batch_engine type 'spark.engine'"),
    ({"coerce_tz_aware": False}, "not supported by repast: coerce_tz_aware: false"),
])
def test_feast_keys_whose_behaviour_would_differ_are_refused_by_name(tmp_path: Path, data: dict[str, object],
                                                                     message: str) -> None:
    from repast.config.repo_config import parse_config

    with pytest.raises(ConfigError, match=message):
        parse_config({"project": "p", **data}, "feature_store.yaml", tmp_path)


def test_the_dask_offline_store_is_the_embedded_engine(tmp_path: Path) -> None:
    from repast.config.repo_config import parse_config
    from repast.offline import OFFLINE_ENGINES

    config = parse_config({"project": "p", "offline_store": {"type": "dask"}}, "feature_store.yaml", tmp_path)
    assert OFFLINE_ENGINES[config.offline_store.type] == OFFLINE_ENGINES["duckdb"]
