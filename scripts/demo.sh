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
