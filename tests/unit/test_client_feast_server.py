"""repast.Client against answers as `feast serve` gives them (Feast is not installed here: a local
HTTP server answers with the bodies Feast's feature server documents): an empty body for a push,
Feast's error body or FastAPI's `{"detail"}` for a refusal."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from repast import Client
from repast.errors import FeatureNotFound, FeatureViewNotFound

ANSWERS: dict[str, tuple[int, bytes]] = {
    "/push": (200, b""),
    "/write-to-online-store": (200, b""),
    "/get-online-features": (404, json.dumps({"module": "feast.errors", "class": "FeatureViewNotFoundException",
                                              "message": "Feature view nope does not exist"}).encode()),
    "/materialize": (404, json.dumps({"detail": "Feature view nope does not exist"}).encode()),
}


class FeastLikeHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        status, body = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        if body:
            self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feast_like_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FeastLikeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_push_answered_with_an_empty_body_succeeds(feast_like_url: str) -> None:
    with Client(feast_like_url) as client:
        client.push("driver_stats_push_source", {"driver_id": [1001], "conv_rate": [0.5]})
        client.write_to_online_store("driver_hourly_stats", {"driver_id": [1001]})


def test_feasts_not_found_body_raises_the_matching_not_found_error(feast_like_url: str) -> None:
    with Client(feast_like_url) as client, pytest.raises(FeatureViewNotFound, match="nope"):
        client.get_online_features(["nope:x"], [{"driver_id": 1001}])


def test_a_404_with_fastapis_body_raises_feature_not_found(feast_like_url: str) -> None:
    from datetime import UTC, datetime

    with Client(feast_like_url) as client, pytest.raises(FeatureNotFound, match="nope"):
        client.materialize(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC), ["nope"])
