#!/usr/bin/env bash
# The quickstart, end to end on the embedded default (DuckDB + Parquet, SQLite online, SQLite registry).
set -euo pipefail
rm -rf demo_repo
echo "== repast init demo_repo"
repast init demo_repo
cd demo_repo
echo "== repast plan"
repast plan
echo "== repast apply"
repast apply
echo "== repast entities list"
repast entities list
echo "== repast feature-views list"
repast feature-views list
echo "== repast feature-services list"
repast feature-services list
echo "== repast history"
repast history
echo "== training data: get_historical_features (point-in-time join, DuckDB over Parquet)"
python - <<'PY'
from datetime import datetime, timedelta, timezone

import pandas as pd

from repast import FeatureStore

store = FeatureStore(".")
now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
entity_df = pd.DataFrame({
    "driver_id": [1001, 1002, 1003, 1001],
    "event_timestamp": [now - timedelta(hours=h) for h in (30, 12, 3, 2)],
    "label_driver_reported_satisfaction": [1, 5, 3, 4],
    "val_to_add": [1, 2, 3, 4],
    "val_to_add_2": [10, 20, 30, 40],
})
training_df = store.get_historical_features(
    entity_df=entity_df,
    features=["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
              "driver_hourly_stats:avg_daily_trips", "transformed_conv_rate:conv_rate_plus_val1"],
).to_df()
with pd.option_context("display.width", 200, "display.max_columns", 20):
    print(training_df.head())
PY
echo "== repast materialize-incremental: latest values into the SQLite online store"
repast materialize-incremental now
echo "== get_online_features for drivers 1001 and 1002 (service driver_activity_v1, with request data)"
python - <<'PY'
from repast import FeatureStore

store = FeatureStore(".")
response = store.get_online_features(
    store.get_feature_service("driver_activity_v1"),
    {"driver_id": [1001, 1002], "val_to_add": [1, 2], "val_to_add_2": [10, 20]},
)
for name, values in response.to_dict().items():
    print(f"  {name:22s} {values}")
print("  statuses (conv_rate):   ", [str(s) for s in response.statuses()["conv_rate"]])
PY
echo "== repast serve: start the feature server, one request, stop it"
PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
repast serve --port "$PORT" --no-access-log > serve.log 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
PORT="$PORT" python - <<'PY'
import json
import os
import time
import urllib.request

base = f"http://127.0.0.1:{os.environ['PORT']}"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/health", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
body = {"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
        "entities": {"driver_id": [1001, 1002]}}
request = urllib.request.Request(base + "/get-online-features", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
print("POST /get-online-features", json.dumps(body))
print(json.dumps(json.load(urllib.request.urlopen(request, timeout=10)), indent=2))
PY
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
trap - EXIT
echo "== server stopped"
