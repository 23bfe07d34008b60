"""The KServe transformer: a `kserve.Model` whose preprocess adds repast online features.

    python -m repast.kserve --model_name driver-model \
        --features driver_hourly_stats:conv_rate,driver_hourly_stats:acc_rate,driver_hourly_stats:avg_daily_trips \
        --entity_keys driver_id [--feature_server_url http://repast-feature-server:6566]

KServe passes --predictor_host (and --predictor_protocol) itself. Features are read in-process
from the store `FeatureStore()` finds ($REPAST_FEATURE_STORE_YAML or /etc/repast), or through
the feature server with --feature_server_url. Needs `pip install "repast[kserve]"`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from repast.errors import InputError, require_module
from repast.kserve.transformer import OnlineFeatureEnricher, OnlineFeatureSource

require_module("kserve", "kserve")

import kserve  # noqa: E402
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.infer_type import InferInput, InferRequest  # noqa: E402


class RepastTransformer(kserve.Model):  # type: ignore[misc]
    """Enriches each request with online features, then KServe forwards it to the predictor."""

    def __init__(self, name: str, enricher: OnlineFeatureEnricher) -> None:
        super().__init__(name)
        self.enricher = enricher
        self.ready = True

    async def preprocess(self, payload: dict[str, Any] | InferRequest,
                         headers: dict[str, str] | None = None) -> dict[str, Any] | InferRequest:
        from starlette.concurrency import run_in_threadpool

        body = _v2_body(payload) if isinstance(payload, InferRequest) else payload
        try:
            enriched = await run_in_threadpool(self.enricher.enrich, body)
        except InputError as e:
            raise InvalidInput(str(e)) from None
        if isinstance(payload, InferRequest):
            tensor = enriched["inputs"][0]
            infer_input = InferInput(tensor["name"], tensor["shape"], tensor["datatype"], tensor["data"])
            return InferRequest(model_name=self.name, infer_inputs=[infer_input], request_id=payload.id)
        return enriched


def _v2_body(request: InferRequest) -> dict[str, Any]:
    inputs = [{"name": i.name, "shape": list(i.shape), "datatype": i.datatype, "data": i.as_numpy().tolist()}
              for i in request.inputs]
    return {"id": request.id, "inputs": inputs}


def feature_source(feature_server_url: str | None, token: str | None = None) -> OnlineFeatureSource:
    """repast.Client for a feature server URL, else the in-process FeatureStore() found as in a notebook."""
    if feature_server_url:
        from repast.client import Client

        return Client(feature_server_url, token=token)
    from repast.store import FeatureStore

    return FeatureStore()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser],
                                     description="repast feature transformer for KServe")
    parser.add_argument("--features", required=True, help="comma-separated 'view:feature' references, model order")
    parser.add_argument("--entity_keys", required=True, help="comma-separated join keys requests carry")
    parser.add_argument("--request_fields", default="", help="comma-separated request values on-demand features use")
    parser.add_argument("--feature_server_url", default=os.environ.get("REPAST_FEATURE_SERVER_URL", ""),
                        help="read through this feature server instead of in-process")
    parser.add_argument("--output_name", default="input-0", help="name of the v2 input tensor sent to the predictor")
    args, _ = parser.parse_known_args(argv)
    enricher = OnlineFeatureEnricher(
        feature_source(args.feature_server_url or None, os.environ.get("REPAST_TOKEN")),
        _split(args.features), _split(args.entity_keys), _split(args.request_fields), args.output_name)
    kserve.ModelServer().start([RepastTransformer(args.model_name, enricher)])


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]
