"""Feast 0.67's documented surface, driven by the one table in repast/config/feast_surface.py:
feature_store.yaml keys, feature-server request fields and error bodies, FeatureStore methods."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from repast import FeatureStore
from repast.config.feast_surface import FEAST_SURFACE, NO_EFFECT, REFUSED, SUPPORTED, Part, parts
from repast.config.repo_config import parse_config
from repast.errors import ConfigError, FeatureViewNotFound, InputError, RepastError
from repast.server.errors import ApiError, exception_body
from repast.server.schemas import (
    MaterializeRequest,
    PushRequest,
    WriteToOnlineStoreRequest,
    parse_body,
    parse_online_request,
)

ONLINE = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
PUSH = {"push_source_name": "driver_stats_push_source", "df": {"driver_id": [1001]}, "to": "online"}
WRITE = {"feature_view_name": "driver_hourly_stats", "df": {"driver_id": [1001]}}
MATERIALIZE = {"start_ts": "2024-01-01T00:00:00", "end_ts": "2024-01-02T00:00:00"}
BODIES = {"/get-online-features": ONLINE, "/push": PUSH, "/write-to-online-store": WRITE,
          "/materialize": MATERIALIZE}
MODELS = {"/push": PushRequest, "/write-to-online-store": WriteToOnlineStoreRequest, "/materialize": MaterializeRequest}
EXAMPLE_VALUES = {"include_feature_view_version_metadata": True, "allow_registry_cache": True,
                  "transform_on_write": True, "disable_event_timestamp": False, "full_feature_names": False,
                  "feature_views": ["driver_hourly_stats"], "to": "online_and_offline"}


def parse(path: str, body: dict[str, object], strict: bool = False) -> tuple[object, tuple[str, ...]]:
    raw = orjson.dumps(body)
    if path == "/get-online-features":
        req = parse_online_request(raw, strict=strict)
        return req, req.ignored
    parsed = parse_body(raw, MODELS[path], strict=strict)
    return parsed, parsed.ignored_fields


# ---- item 1: request fields a newer Feast client sends -------------------------------------------------

def test_the_remote_online_stores_version_metadata_field_is_accepted() -> None:
    req, ignored = parse("/get-online-features", {**ONLINE, "include_feature_view_version_metadata": False})
    assert ignored == () and req.rows == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", list(BODIES))
def test_an_unknown_request_field_is_ignored_and_named(path: str) -> None:
    _, ignored = parse(path, {**BODIES[path], "sent_by_a_newer_feast": 1})
    assert ignored == ("sent_by_a_newer_feast",)


@pytest.mark.parametrize("path", list(BODIES))
def test_strict_requests_refuse_an_unknown_field_naming_it(path: str) -> None:
    with pytest.raises(ApiError) as e:
        parse(path, {**BODIES[path], "sent_by_a_newer_feast": 1}, strict=True)
    assert e.value.status == 400 and "sent_by_a_newer_feast" in e.value.detail


def test_an_ignored_field_is_logged_once_not_per_request(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            parse("/push", {**PUSH, "logged_once_field": 1})
    assert sum("logged_once_field" in r.getMessage() for r in caplog.records) == 1


REQUEST_PARTS = [p for p in FEAST_SURFACE if p.kind == "request_field" and p.where in BODIES]


@pytest.mark.parametrize("part", REQUEST_PARTS, ids=[f"{p.where}:{p.name}" for p in REQUEST_PARTS])
def test_every_feast_request_field_is_accepted_as_the_table_says(part: Part) -> None:
    value = EXAMPLE_VALUES.get(part.name, BODIES[part.where].get(part.name))
    body = {**BODIES[part.where], part.name: value}
    if part.name == "features":
        body = {**ONLINE}
    if part.name == "feature_service":
        body = {"feature_service": "svc", "entities": ONLINE["entities"]}
    if part.support == REFUSED:
        with pytest.raises(ApiError, match="not supported by repast"):
            parse(part.where, body, strict=True)
        return
    _, ignored = parse(part.where, body, strict=True)
    assert ignored == ()


# ---- item 6: /materialize's disable_event_timestamp, Feast's error body ---------------------------------

def test_materialize_takes_feasts_disable_event_timestamp() -> None:
    req, _ = parse("/materialize", {**MATERIALIZE, "disable_event_timestamp": False})
    assert req.disable_event_timestamp is False  # type: ignore[attr-defined]


def test_an_error_body_has_repasts_keys_and_feasts() -> None:
    status, body = exception_body(FeatureViewNotFound("feature view 'nope' is not registered"))
    data = orjson.loads(body)
    assert status == 404
    assert data["error"] == "not_found" and "nope" in data["detail"]
    assert data["class"] == "FeatureViewNotFoundException" and data["module"] == "feast.errors"
    assert data["message"] == data["detail"]


# ---- item 2: feature_store.yaml keys Feast accepts ---------------------------------------------------

def config(extra: dict[str, object], tmp_path: Path) -> object:
    return parse_config({"project": "p", **extra}, "feature_store.yaml", tmp_path)


def test_the_go_servers_keys_are_accepted_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            config({"go_feature_serving": False,
                    "feature_server": {"type": "local", "transformation_service_endpoint": "localhost:6569"}},
                   tmp_path)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("transformation_service_endpoint" in m for m in messages) == 1
    assert sum("go_feature_serving" in m for m in messages) == 1


def test_strict_requests_is_a_feature_server_key(tmp_path: Path) -> None:
    assert config({"feature_server": {"strict_requests": True}}, tmp_path).feature_server.strict_requests  # type: ignore[attr-defined]


YAML_PARTS = [p for p in FEAST_SURFACE if p.kind == "yaml_key" and p.support == NO_EFFECT]


@pytest.mark.parametrize("part", YAML_PARTS, ids=[f"{p.where}.{p.name}" for p in YAML_PARTS])
def test_every_no_effect_yaml_key_is_accepted(part: Part, tmp_path: Path) -> None:
    extra: dict[str, object] = {part.name: "x"} if not part.where else {part.where: {part.name: "x"}}
    if part.where == "registry":
        extra = {"registry": {"path": "data/registry.db", part.name: "x"}}
    config(extra, tmp_path)


def test_an_unknown_yaml_key_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        config({"feature_server": {"no_such_key": 1}}, tmp_path)


# ---- item 4: FeatureStore methods ------------------------------------------------------------------------

METHOD_PARTS = list(parts("method").values())


@pytest.mark.parametrize("part", METHOD_PARTS, ids=[p.name for p in METHOD_PARTS])
def test_every_feast_method_exists_or_is_refused_as_the_table_says(part: Part, sample_repo: Path) -> None:
    assert callable(getattr(FeatureStore, part.name, None)), part.name
    if part.support == REFUSED:
        store = FeatureStore(repo_path=sample_repo)
        with pytest.raises(RepastError, match="not supported by repast"):
            getattr(store, part.name)()


def test_feature_store_serve_takes_feasts_arguments() -> None:
    import inspect

    params = inspect.signature(FeatureStore.serve).parameters
    for name in ("host", "port", "type_", "no_access_log", "workers", "metrics", "keep_alive_timeout",
                 "tls_key_path", "tls_cert_path", "registry_ttl_sec"):
        assert name in params, name


def test_serve_refuses_the_grpc_type(sample_repo: Path) -> None:
    with pytest.raises(InputError, match="not supported by repast"):
        FeatureStore(repo_path=sample_repo).serve(type_="grpc")


def test_every_part_has_a_reason_unless_supported() -> None:
    for part in FEAST_SURFACE:
        assert part.support == SUPPORTED or part.why, part


# ---- item 3: commands and options ----------------------------------------------------------------------

def _cli() -> object:
    import typer

    from repast.cli.main import app

    return typer.main.get_command(app)


COMMAND_PARTS = list(parts("command").values())
OPTION_PARTS = [p for p in FEAST_SURFACE if p.kind == "option"]


@pytest.mark.parametrize("part", COMMAND_PARTS, ids=[p.name for p in COMMAND_PARTS])
def test_every_feast_command_name_is_known(part: Part) -> None:
    assert part.name in _cli().commands  # type: ignore[attr-defined]


@pytest.mark.parametrize("part", OPTION_PARTS, ids=[f"{p.where} {p.name}" for p in OPTION_PARTS])
def test_every_feast_option_is_an_option_of_its_command(part: Part) -> None:
    command = _cli().commands[part.where]  # type: ignore[attr-defined]
    names = {opt for param in command.params for opt in param.opts}
    assert part.name in names


# ---- item 10 and the docs: every refused or no-effect part, and every deliberate difference, is documented ----

DOC = (Path(__file__).parents[2] / "docs" / "feast.md").read_text()
UNSUPPORTED = [p for p in FEAST_SURFACE if p.support != SUPPORTED]


@pytest.mark.parametrize("part", UNSUPPORTED, ids=[f"{p.kind}:{p.where}:{p.name}" for p in UNSUPPORTED])
def test_every_refused_or_no_effect_part_is_named_in_docs_feast_md(part: Part) -> None:
    assert part.name in DOC


@pytest.mark.parametrize("situation", ["no feature row within the ttl", "`created_timestamp`",
                                       "not asked for", "repeating a stored event time", "OUTSIDE_MAX_AGE",
                                       "Float32", "Timestamp units", "Category"])
def test_each_deliberate_difference_is_listed_with_repasts_rule(situation: str) -> None:
    section = DOC[DOC.index("## Where repast deliberately differs"):]
    assert situation in section.split("\n## ")[0]


def test_the_hot_endpoints_answer_carries_the_ignored_fields_header(sample_repo: Path) -> None:
    from repast.server.app import create_app

    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    server = create_app(store.backends).state.feature_server
    answer = server.online.answer(orjson.dumps({**ONLINE, "sent_by_a_newer_feast": 1}))
    assert isinstance(answer, bytes) and orjson.loads(bytes(answer))["metadata"]["feature_names"]
    assert answer.headers == [(b"x-repast-ignored-fields", b"sent_by_a_newer_feast")]  # type: ignore[attr-defined]
