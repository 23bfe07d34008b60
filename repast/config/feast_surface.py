"""Feast 0.67's documented surface, and what repast does with each part: the one table.

FEAST_SURFACE lists every CLI command and option, feature_store.yaml key, feature-server request
field and FeatureStore method of Feast's documentation, each with repast's answer:

- SUPPORTED: accepted with Feast's meaning.
- NO_EFFECT: accepted, with one warning line per process (repast has nothing it would change).
- REFUSED: refused with an error that says it is not supported by repast, and `why`.

The acceptance code reads this table (feature_store.yaml keys in repast/config/repo_config.py,
request fields in repast/server/schemas.py, commands in repast/cli/feast_commands.py), and
tests/unit/test_feast_surface.py checks every row against the code. docs/feast.md renders the
same answers for people.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

Support = Literal["supported", "no_effect", "refused"]
SUPPORTED: Support = "supported"
NO_EFFECT: Support = "no_effect"
REFUSED: Support = "refused"
Kind = Literal["command", "option", "yaml_key", "request_field", "method"]


@dataclass(frozen=True)
class Part:
    """One part of Feast's surface. `where`: the command of an option, the endpoint of a request
    field, the dotted section of a yaml key ("" for the top level), the class of a method."""

    kind: Kind
    where: str
    name: str
    support: Support
    why: str = ""


def _parts(kind: Kind, where: str, support: Support, names: str, why: str = "") -> list[Part]:
    return [Part(kind, where, name, support, why) for name in names.split()]


_GO = "only Feast's Go feature server uses it; repast's server is the one kind there is"
_GUNICORN = "repast runs uvicorn workers, which have no such setting"

FEAST_SURFACE: list[Part] = [
    # ---- commands -------------------------------------------------------------------------------
    *_parts("command", "", SUPPORTED,
            "apply plan teardown registry-dump materialize materialize-incremental serve ui init version "
            "entities data-sources feature-views on-demand-feature-views feature-services projects "
            "saved-datasets delete validate configuration stream-feature-views"),
    Part("command", "", "serve_offline", SUPPORTED,
         "repast's offline server (Arrow Flight, repast's own protocol: see docs/remote.md)"),
    Part("command", "", "serve_registry", REFUSED,
         "repast has no registry server of its own: `repast serve` answers GET /registry (read-only), "
         "and a shared registry is a SQL database or object storage every client opens"),
    Part("command", "", "serve_transformations", REFUSED, "it feeds Feast's Go feature server; " + _GO),
    Part("command", "", "permissions", REFUSED,
         "Feast's permissions are not built; the feature server has read and write tokens "
         "(feature_server.auth)"),
    Part("command", "", "demo-notebooks", REFUSED, "repast ships no notebooks; `repast init` writes a sample repo"),
    # ---- options of `serve` -------------------------------------------------------------------
    *_parts("option", "serve", SUPPORTED,
            "--host -h --port -p --no-access-log --workers -w --key -k --cert -c --keep-alive-timeout "
            "--registry_ttl_sec -r --type -t --metrics -m --no-feature-log"),
    *_parts("option", "serve", NO_EFFECT, "--worker-connections --max-requests --max-requests-jitter", _GUNICORN),
    # ---- options of `ui` ----------------------------------------------------------------------
    *_parts("option", "ui", SUPPORTED, "--host -h --port -p --registry_ttl_sec -r --root_path --key -k --cert -c"),
    # ---- options of `materialize` -------------------------------------------------------------
    *_parts("option", "materialize", SUPPORTED, "--views -v"),
    Part("option", "materialize", "--disable-event-timestamp", REFUSED,
         "every repast feature view reads an event time column; give START and END instead"),
    *_parts("option", "materialize-incremental", SUPPORTED, "--views -v"),
    # ---- feature_store.yaml ------------------------------------------------------------------
    *_parts("yaml_key", "", SUPPORTED,
            "project registry provider offline_store online_store entity_key_serialization_version "
            "feature_server batch_engine materialization coerce_tz_aware flags auth"),
    *_parts("yaml_key", "", NO_EFFECT, "go_feature_serving go_feature_retrieval", _GO),
    Part("yaml_key", "", "project_description", NO_EFFECT,
         "a Project object in the repo carries the description repast registers"),
    *_parts("yaml_key", "feature_server", SUPPORTED, "type enabled feature_logging"),
    Part("yaml_key", "feature_server", "transformation_service_endpoint", NO_EFFECT, _GO),
    *_parts("yaml_key", "registry", SUPPORTED, "path registry_type cache_ttl_seconds"),
    Part("yaml_key", "registry", "registry_store_type", NO_EFFECT,
         "the registry's store follows from its path (a file, a database URL, s3:// or gs://)"),
    Part("yaml_key", "registry", "cache_mode", NO_EFFECT,
         "repast's registry cache always refreshes on read once cache_ttl_seconds have passed"),
    Part("yaml_key", "registry", "purge_feast_metadata", NO_EFFECT, "repast writes no Feast metadata table"),
    # ---- feature-server request fields --------------------------------------------------------
    *_parts("request_field", "/get-online-features", SUPPORTED,
            "entities features feature_service full_feature_names"),
    Part("request_field", "/get-online-features", "include_feature_view_version_metadata", NO_EFFECT,
         "repast's answer carries no feature view version metadata (`repast feature-views list-versions` "
         "lists the versions)"),
    *_parts("request_field", "/push", SUPPORTED, "push_source_name df to"),
    *_parts("request_field", "/push", NO_EFFECT, "allow_registry_cache transform_on_write",
            "repast's registry cache and on-demand writes need no per-request switch"),
    *_parts("request_field", "/write-to-online-store", SUPPORTED, "feature_view_name df"),
    *_parts("request_field", "/write-to-online-store", NO_EFFECT, "allow_registry_cache transform_on_write",
            "repast's registry cache and on-demand writes need no per-request switch"),
    *_parts("request_field", "/materialize", SUPPORTED, "start_ts end_ts feature_views disable_event_timestamp"),
    *_parts("request_field", "/materialize-incremental", SUPPORTED, "end_ts feature_views"),
    *_parts("request_field", "/retrieve-online-documents", SUPPORTED,
            "features feature_service query query_string top_k api_version distance_metric filters"),
    # ---- FeatureStore methods -----------------------------------------------------------------
    *_parts("method", "FeatureStore", SUPPORTED,
            "apply plan teardown refresh_registry list_entities list_data_sources list_feature_views "
            "list_on_demand_feature_views list_feature_services list_all_feature_views list_batch_feature_views "
            "list_stream_feature_views list_projects list_saved_datasets get_entity get_data_source "
            "get_feature_view get_on_demand_feature_view get_feature_service get_project get_saved_dataset "
            "delete_feature_view delete_feature_service get_historical_features get_online_features "
            "materialize materialize_incremental push write_to_online_store write_to_offline_store "
            "create_saved_dataset retrieve_online_documents retrieve_online_documents_v2 serve serve_ui "
            "get_online_features_async push_async"),
    Part("method", "FeatureStore", "serve_offline", SUPPORTED,
         "repast's offline server (Arrow Flight, repast's own protocol: see docs/remote.md)"),
    Part("method", "FeatureStore", "serve_registry", REFUSED,
         "repast has no registry server of its own; `repast serve` answers GET /registry"),
    Part("method", "FeatureStore", "serve_transformations", REFUSED, "it feeds Feast's Go feature server; " + _GO),
]


def parts(kind: Kind, where: str | None = None) -> dict[str, Part]:
    """The table's parts of one kind (and place), by name."""
    return {p.name: p for p in FEAST_SURFACE if p.kind == kind and (where is None or p.where == where)}


def not_supported(part: Part) -> str:
    """The message refusing a REFUSED part."""
    what = {"command": "command", "option": "option", "yaml_key": "key", "request_field": "field",
            "method": "FeatureStore."}[part.kind]
    name = f"{what}{part.name}" if part.kind == "method" else f"{what} '{part.name}'"
    return f"not supported by repast: {name}: {part.why}"


_warned: set[tuple[str, str, str]] = set()


def warn_no_effect(part: Part, logger: logging.Logger, where: str = "") -> None:
    """One warning line per process for a NO_EFFECT part that was given."""
    key = (part.kind, part.where, part.name)
    if key in _warned:
        return
    _warned.add(key)
    logger.warning("%s%s '%s' is accepted for Feast compatibility and has no effect in repast: %s",
                   where, {"yaml_key": "key", "request_field": "field", "option": "option"}.get(part.kind, ""),
                   part.name, part.why)
