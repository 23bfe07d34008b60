"""`python -m repast.spark COMMAND`: the jobs a SparkApplication runs in the repast image.

    python -m repast.spark materialize-incremental [--end-date ISO] [--views a,b]
    python -m repast.spark materialize --start-date ISO [--end-date ISO] [--views a,b]
    python -m repast.spark training-data --entity-sql SQL | --entity-path PARQUET
                                         (--features v:f,v:g | --feature-service NAME) --output PATH

The configuration is found as in a notebook ($REPAST_FEATURE_STORE_YAML, then the Secret mounted
at /etc/repast/feature_store.yaml, then --repo); its offline_store should be `type: spark`, and
the job then uses the SparkSession spark-submit started. Errors print one `Error: ...` line and
exit 1 (usage errors exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys

from repast.errors import RepastError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m repast.spark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default="", help="feature repo directory (default: the mounted configuration)")
    sub = p.add_subparsers(dest="command", required=True)
    inc = sub.add_parser("materialize-incremental", help="each view from its watermark up to --end-date")
    inc.add_argument("--end-date", default="", help="ISO-8601 (default: now)")
    inc.add_argument("--views", default="", help="comma-separated feature views (default: every online view)")
    full = sub.add_parser("materialize", help="the latest rows with start <= event time < end")
    full.add_argument("--start-date", required=True)
    full.add_argument("--end-date", default="")
    full.add_argument("--views", default="")
    train = sub.add_parser("training-data", help="point-in-time join written as Parquet, streamed from Spark")
    entity = train.add_mutually_exclusive_group(required=True)
    entity.add_argument("--entity-sql", help="Spark SQL returning the entity rows")
    entity.add_argument("--entity-path", help="Parquet file or directory of entity rows (read by Spark)")
    wanted = train.add_mutually_exclusive_group(required=True)
    wanted.add_argument("--features", help="comma-separated 'view:feature' references")
    wanted.add_argument("--feature-service", help="a registered FeatureService name")
    train.add_argument("--output", required=True, help="Parquet file to write (local, s3://, gs://)")
    train.add_argument("--full-feature-names", action="store_true")
    return p


def _views(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def training_data(args: argparse.Namespace) -> dict[str, object]:
    from repast.kubeflow.tasks import open_store

    store = open_store(config_path=args.repo, repo_path=args.repo)
    wanted = store.get_feature_service(args.feature_service) if args.feature_service else _views(args.features)
    entity = args.entity_sql or f"SELECT * FROM parquet.`{args.entity_path}`"
    job = store.get_historical_features(entity, wanted, full_feature_names=args.full_feature_names)
    job.to_parquet(args.output)
    return {"output": args.output, "project": store.project}


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from repast.kubeflow import tasks

    try:
        if args.command == "materialize-incremental":
            tasks.materialize_incremental(args.end_date, _views(args.views), config_path=args.repo,
                                          repo_path=args.repo)
        elif args.command == "materialize":
            tasks.materialize(args.start_date, args.end_date, _views(args.views), config_path=args.repo,
                              repo_path=args.repo)
        else:
            print(json.dumps(training_data(args)))
    except RepastError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
