"""The JSON API under /api/v1: shapes, pagination, filters, 404s, and objects missing optional fields."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.ui.conftest import BARE, PROJECT, ROOT, api

P = f"/projects/{PROJECT}"


def test_projects_lists_every_project_with_the_configured_one_first(client: TestClient) -> None:
    items = api(client, "/projects")["items"]
    assert [p["name"] for p in items] == [PROJECT, BARE]
    assert items[0]["configured"] is True and items[1]["configured"] is False


def test_project_reports_its_registry_version_and_object_counts(client: TestClient) -> None:
    body = api(client, P)
    assert body["version"] == 2
    assert body["counts"] == {"entity": 1, "data_source": 3, "feature_view": 2, "on_demand_feature_view": 1,
                              "feature_service": 1, "feature": 8}
    assert "tier=gold" in body["tags"]


def test_an_unknown_project_is_a_json_404(client: TestClient) -> None:
    assert api(client, "/projects/nowhere", 404)["error"] == "not_found"


@pytest.mark.parametrize(("slug", "names"), [
    ("entities", ["driver"]),
    ("data-sources", ["driver_hourly_stats_source", "driver_stats_push_source", "vals_to_add"]),
    ("feature-views", ["driver_hourly_stats", "driver_hourly_stats_fresh"]),
    ("on-demand-feature-views", ["transformed_conv_rate"]),
    ("feature-services", ["driver_activity_v1"]),
])
def test_each_kind_lists_its_objects_by_name(client: TestClient, slug: str, names: list[str]) -> None:
    body = api(client, f"{P}/{slug}")
    assert [i["name"] for i in body["items"]] == names
    assert body["total"] == len(names) and body["offset"] == 0


def test_lists_page_with_limit_and_offset(client: TestClient) -> None:
    everything = [i["name"] for i in api(client, f"{P}/features", limit=500)["items"]]
    page = api(client, f"{P}/features", limit=3, offset=3)
    assert [i["name"] for i in page["items"]] == everything[3:6]
    assert (page["total"], page["limit"], page["offset"]) == (8, 3, 3)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1}])
def test_a_page_out_of_range_is_a_400_naming_the_parameter(client: TestClient, params: dict[str, int]) -> None:
    body = api(client, f"{P}/features", 400, **params)
    assert body["error"] == "invalid_input" and next(iter(params)) in body["detail"]


def test_a_non_numeric_limit_is_a_422(client: TestClient) -> None:
    assert api(client, f"{P}/features", 422, limit="many")["error"] == "invalid_request"


def test_an_unknown_kind_is_a_json_404(client: TestClient) -> None:
    assert api(client, f"{P}/widgets", 404)["error"] == "not_found"


def test_a_feature_view_comes_with_its_spec_and_neighbours(client: TestClient) -> None:
    body = api(client, f"{P}/feature-views/driver_hourly_stats")
    assert body["spec"]["ttl_seconds"] == 86400 and body["owner"] == "ana@example.com"
    neighbours = {(n["relation"], n["kind"], n["name"]) for n in body["neighbours"]}
    assert {("upstream", "data_source", "driver_hourly_stats_source"), ("upstream", "entity", "driver"),
            ("downstream", "on_demand_feature_view", "transformed_conv_rate"),
            ("downstream", "feature_service", "driver_activity_v1"),
            ("downstream", "feature", "driver_hourly_stats:conv_rate")} <= neighbours


def test_an_on_demand_view_shows_its_source_code_and_never_its_pickle(client: TestClient) -> None:
    spec = api(client, f"{P}/on-demand-feature-views/transformed_conv_rate")["spec"]
    assert "def transformed_conv_rate" in spec["udf_source"]
    assert "udf_pickle" not in spec


def test_a_feature_names_its_view_and_type(client: TestClient) -> None:
    body = api(client, f"{P}/features/driver_hourly_stats:avg_daily_trips")
    assert (body["spec"]["dtype"], body["spec"]["view"]) == ("Int64", "driver_hourly_stats")
    assert body["description"] == "Trips per day, 7-day average"


@pytest.mark.parametrize("path", ["/feature-views/nope", "/features/driver_hourly_stats:nope", "/features/nope",
                                  "/entities/nope", "/feature-services/nope/lineage", "/feature-views/nope/online"])
def test_an_unknown_object_is_a_json_404(client: TestClient, path: str) -> None:
    assert api(client, P + path, 404)["error"] == "not_found"


@pytest.mark.parametrize("path", ["/entities/bare_entity", "/data-sources/bare_source", "/feature-views/bare_view",
                                  "/on-demand-feature-views/bare_odfv", "/feature-services/bare_service",
                                  "/features/bare_view:bare_feature", "/feature-views/bare_view/lineage"])
def test_objects_with_every_optional_field_missing_are_served(client: TestClient, path: str) -> None:
    body = api(client, f"/projects/{BARE}{path}")
    assert body.get("name", "") in ("", path.split("/")[2]) or "nodes" in body


def test_search_finds_words_in_descriptions_tags_and_owners(client: TestClient) -> None:
    for q in ("ana@example", "hourly statistics", "tier=gold"):
        names = [i["name"] for i in api(client, f"{P}/search", q=q, kind="feature-views")["items"]]
        assert names == ["driver_hourly_stats"], q


def test_search_filters_by_kind_and_by_tag(client: TestClient) -> None:
    features = api(client, f"{P}/search", q="rate", kind="features")["items"]
    assert features and {i["kind"] for i in features} == {"feature"}
    tagged = api(client, f"{P}/search", tag="team=driver_performance")["items"]
    assert [i["name"] for i in tagged] == ["driver_hourly_stats"]
    assert api(client, f"{P}/search", tag="team=nobody")["total"] == 0


def test_search_ranks_an_exact_name_first(client: TestClient) -> None:
    names = [i["name"] for i in api(client, f"{P}/search", q="driver_hourly_stats")["items"]]
    assert names[0] == "driver_hourly_stats"


def test_search_with_an_unknown_kind_is_a_400(client: TestClient) -> None:
    assert "widgets" in api(client, f"{P}/search", 400, kind="widgets")["detail"]


def test_project_lineage_links_sources_to_views_to_services(client: TestClient) -> None:
    graph = api(client, f"{P}/lineage")
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert ("data_source/driver_hourly_stats_source", "feature_view/driver_hourly_stats") in edges
    assert ("feature_view/driver_hourly_stats", "on_demand_feature_view/transformed_conv_rate") in edges
    assert ("data_source/vals_to_add", "on_demand_feature_view/transformed_conv_rate") in edges
    assert ("on_demand_feature_view/transformed_conv_rate", "feature_service/driver_activity_v1") in edges
    assert ("data_source/driver_stats_push_source", "feature_view/driver_hourly_stats_fresh") in edges


def test_lineage_around_an_object_holds_only_what_it_reads_and_what_reads_it(client: TestClient) -> None:
    graph = api(client, f"{P}/feature-services/driver_activity_v1/lineage")
    ids = {n["id"] for n in graph["nodes"]}
    assert graph["focus"] == "feature_service/driver_activity_v1"
    assert {"feature_view/driver_hourly_stats", "on_demand_feature_view/transformed_conv_rate",
            "data_source/driver_hourly_stats_source", "data_source/vals_to_add"} <= ids
    assert "feature_view/driver_hourly_stats_fresh" not in ids
    assert not [i for i in ids if i.startswith("feature/")]  # a service's upstream is its views


def test_history_lists_applies_newest_first_with_who_and_what(client: TestClient) -> None:
    items = api(client, f"{P}/history")["items"]
    assert [e["version"] for e in items] == [2, 1]
    assert items[0]["changes"] == [{"op": "update", "kind": "feature_view", "name": "driver_hourly_stats",
                                    "fields": ["description", "owner", "tags"]}]
    assert api(client, f"{P}/history", limit=1, offset=1)["items"][0]["version"] == 1


def test_a_version_shows_the_field_diff_of_each_changed_object(client: TestClient) -> None:
    (change,) = api(client, f"{P}/history/2")["changes"]
    diff = {d["path"]: (d["old"], d["new"]) for d in change["diff"]}
    assert diff == {"description": ("", "Hourly driver statistics"), "owner": ("", "ana@example.com"),
                    "tags.tier": (None, "gold")}


def test_object_history_lists_the_applies_that_touched_it(client: TestClient) -> None:
    items = api(client, f"{P}/feature-views/driver_hourly_stats/history")["items"]
    assert [(e["version"], e["changes"][0]["op"]) for e in items] == [(2, "update"), (1, "add")]
    assert [e["version"] for e in api(client, f"{P}/entities/driver/history")["items"]] == [1]


def test_an_unknown_version_is_a_404(client: TestClient) -> None:
    assert api(client, f"{P}/history/99", 404)["error"] == "not_found"


def test_freshness_reports_watermark_rows_and_age_and_marks_unmaterialized_views_stale(client: TestClient) -> None:
    body = api(client, f"{P}/freshness")
    views = {v["view"]: v for v in body["views"]}
    done = views["driver_hourly_stats"]
    assert done["watermark"] and done["last_run"] and done["rows_written"] == 5
    assert done["newest_value"] and done["age_seconds"] < 86400 and done["stale"] is False
    assert views["driver_hourly_stats_fresh"]["stale"] is True
    assert body["stale"] == ["driver_hourly_stats_fresh"]


def test_online_returns_values_statuses_event_times_and_snippets(client: TestClient) -> None:
    body = api(client, f"{P}/feature-views/driver_hourly_stats/online", driver_id="1001,1002")
    assert body["features"] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    assert [r["entity"] for r in body["rows"]] == [{"driver_id": 1001}, {"driver_id": 1002}]
    value = body["rows"][0]["values"][0]
    assert value["status"] == "PRESENT" and isinstance(value["value"], float) and value["event_timestamp"]
    assert "get_online_features" in body["python"] and "'driver_hourly_stats:conv_rate'" in body["python"]
    assert "/get-online-features" in body["curl"] and '"driver_id": [1001, 1002]' in body["curl"]


def test_online_for_a_service_runs_its_on_demand_view_with_request_values(client: TestClient) -> None:
    body = api(client, f"{P}/feature-services/driver_activity_v1/online", driver_id="1001", val_to_add="1",
               val_to_add_2="2")
    values = {v["feature"]: v for v in body["rows"][0]["values"]}
    assert values["conv_rate_plus_val1"]["value"] == pytest.approx(values["conv_rate"]["value"] + 1)
    assert '"feature_service": "driver_activity_v1"' in body["curl"]


def test_online_with_an_unknown_entity_key_reports_not_found(client: TestClient) -> None:
    body = api(client, f"{P}/feature-views/driver_hourly_stats/online", driver_id="999")
    assert {v["status"] for v in body["rows"][0]["values"]} == {"NOT_FOUND"}


@pytest.mark.parametrize(("params", "named"), [({"driver_id": "abc"}, "driver_id"), ({}, "driver_id")])
def test_online_with_a_missing_or_mistyped_key_is_a_400_naming_it(client: TestClient, params: dict[str, str],
                                                                  named: str) -> None:
    body = api(client, f"{P}/feature-views/driver_hourly_stats/online", 400, **params)
    assert body["error"] == "entity_key_error" and named in body["detail"]


def test_online_is_refused_for_objects_that_are_not_views_or_services(client: TestClient) -> None:
    assert "feature views and feature services" in api(client, f"{P}/entities/driver/online", 400)["detail"]


def test_the_api_answers_when_the_proxy_strips_the_prefix_too(client: TestClient) -> None:
    response = client.get(f"/api/v1{P}/entities")
    assert response.status_code == 200
    assert response.json()["items"][0]["url"] == f"{ROOT}{P}/entities/driver"


def test_every_url_in_api_answers_is_under_the_root_path(client: TestClient) -> None:
    body = api(client, f"{P}/feature-views/driver_hourly_stats")
    urls = [body["url"], *(n["url"] for n in body["neighbours"])]
    assert all(u.startswith(f"{ROOT}/projects/{PROJECT}/") for u in urls)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_the_api_offers_no_write_method(client: TestClient, method: str) -> None:
    response = client.request(method, f"{ROOT}/api/v1{P}/feature-views/driver_hourly_stats")
    assert response.status_code == 405 and response.json()["error"] == "http_error"


def test_freshness_of_another_project_says_online_values_are_not_checked(client: TestClient) -> None:
    body = api(client, f"/projects/{BARE}/freshness")
    assert body["notes"] == ["Online values are checked for the repo's configured project only."]
    assert [v["view"] for v in body["views"]] == ["bare_view"] and body["stale"] == []


def test_a_feature_links_to_the_services_that_serve_it(client: TestClient) -> None:
    served = api(client, f"{P}/features/driver_hourly_stats:conv_rate")["neighbours"]
    assert ("downstream", "feature_service", "driver_activity_v1") in {(n["relation"], n["kind"], n["name"])
                                                                        for n in served}
    unserved = api(client, f"{P}/features/driver_hourly_stats:acc_rate")["neighbours"]
    assert "feature_service" not in {n["kind"] for n in unserved}
    graph = api(client, f"{P}/features/driver_hourly_stats:conv_rate/lineage")
    assert {"from": "feature/driver_hourly_stats:conv_rate", "to": "feature_service/driver_activity_v1"} \
        in graph["edges"]
