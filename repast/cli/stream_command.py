"""`repast stream`: run the Kafka consumer that feeds the stream feature views (docs/streaming.md)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from repast.cli.common import console, open_store, user_errors
from repast.errors import InputError


def _kafka_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, found, value = pair.partition("=")
        if not found or not key:
            raise InputError(f"--kafka-option {pair!r} is not KEY=VALUE (a librdkafka setting)")
        options[key.strip()] = value.strip()
    return options


@user_errors
def stream(views: str = typer.Option(None, "--views", "-v", help="Comma-separated views to feed (default: every "
                                                                  "view reading a KafkaSource)."),
           start: str = typer.Option(None, "--from", metavar="earliest|latest|TIMESTAMP",
                                     help="Where partitions without a stored position begin; required on the "
                                          "first start. Stored positions always win."),
           batch_size: int = typer.Option(10_000, "--batch-size", min=1, help="Messages polled per batch."),
           dead_letters: Path = typer.Option(None, "--dead-letters", metavar="PATH",
                                             help="JSON-lines file for refused messages (default: "
                                                  "<repo>/data/dead_letters/<project>.jsonl, unless "
                                                  "--dead-letter-topic is given)."),
           dead_letter_topic: str = typer.Option(None, "--dead-letter-topic", metavar="TOPIC",
                                                 help="Produce refused messages to this topic (on the sources' "
                                                      "cluster; create it first): key and value as received, "
                                                      "the reason, topic, partition and offset in repast.* "
                                                      "headers."),
           metrics_port: int = typer.Option(9465, "--metrics-port", min=0,
                                            help="Port of GET /metrics and GET /ready (0: no HTTP port)."),
           metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="Address of the metrics port."),
           ready_lag: int = typer.Option(1000, "--ready-lag", min=0,
                                         help="/ready answers 200 while every partition is at most this many "
                                              "messages behind."),
           group_id: str = typer.Option(None, "--group-id", help="Consumer group (default: repast-<project>)."),
           kafka_option: list[str] = typer.Option(None, "--kafka-option", metavar="KEY=VALUE",
                                                  help="A librdkafka setting, e.g. security.protocol=SSL; repeat "
                                                       "for several."),
           backfill: bool = typer.Option(True, "--backfill/--no-backfill",
                                         help="On the first start, load the online store from the views' batch "
                                              "sources first (a materialize up to now; for a view with "
                                              "aggregations, up to its cut-over time)."),
           until_caught_up: bool = typer.Option(False, "--until-caught-up",
                                                help="Stop once every assigned partition is read to its end "
                                                     "(a backfill run, tests).")) -> None:
    """Consume the Kafka sources of the stream feature views into the online and offline stores,
    exactly once in effect; SIGTERM finishes the batch in hand, commits and leaves the group."""
    from repast.online.base import writable
    from repast.streaming.consumer import StreamConsumer, StreamOptions, install_signal_handlers, stream_views
    from repast.streaming.metrics import StreamMetrics, serve_metrics

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    store = open_store()
    groups = stream_views(store.registry.contents(), [v.strip() for v in views.split(",") if v.strip()]
                          if views else None)
    default_file = None if dead_letter_topic else store.repo_path / "data" / "dead_letters" / f"{store.project}.jsonl"
    options = StreamOptions(start=start, batch_size=batch_size, dead_letters=dead_letters or default_file,
                            dead_letter_topic=dead_letter_topic or None, group_id=group_id,
                            kafka_options=_kafka_options(kafka_option or []), until_caught_up=until_caught_up)
    metrics = StreamMetrics(ready_lag)
    endpoint = getattr(store.config.offline_store, "endpoint_override", None)
    online = writable(store.online_store, "repast stream")
    consumer = StreamConsumer(store.project, groups, online, str(store.repo_path), endpoint, options, metrics)
    if consumer.first_start and backfill:
        _backfill(store, groups)
    tiles = consumer.backfill_tiles(store.offline_engine, backfill)
    if tiles:
        console.print(f"Backfilled the tiles of {', '.join(tiles)} from their batch sources up to the cut-over "
                      "(docs/streaming.md).", highlight=False)
    if metrics_port:
        server = serve_metrics(metrics, metrics_host, metrics_port)
        console.print(f"Metrics on http://{metrics_host}:{server.server_port}/metrics and /ready", highlight=False)
    install_signal_handlers(consumer)
    consumer.run()


def _backfill(store: Any, groups: list[Any]) -> None:
    """The first start: values already in the batch sources go online before the stream's (the
    online store keeps the latest per key, so the order does not matter)."""
    from datetime import UTC, datetime

    from repast.streaming.positions import has_files

    endpoint = getattr(store.config.offline_store, "endpoint_override", None)
    names = [v.name for g in groups for v in g.views if v.online and not v.aggregations
             and has_files(g.source.batch_source, str(store.repo_path), endpoint)]
    if names:
        store.materialize(datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC), names)
        console.print(f"Backfilled {', '.join(names)} from their batch sources.", highlight=False)
