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
echo "== repast materialize-incremental (now): latest values into the SQLite online store"
repast materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"
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
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
  sleep 0.1
done
curl -sf -X POST "http://127.0.0.1:$PORT/materialize-incremental" \
  -d "{\"end_ts\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" > /dev/null
echo "POST /get-online-features"
curl -s -X POST "http://127.0.0.1:$PORT/get-online-features" \
  -d '{"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
       "entities": {"driver_id": [1001, 1002]}}' | python -m json.tool
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
trap - EXIT
echo "== server stopped"
