"""The `repast` command. Exit codes: 0 success, 1 user error (message, no traceback), 2 usage."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from repast.cli.common import _state, app, console, err_console, open_store, user_errors  # noqa: F401 - shared
from repast.errors import RepastError


def _table(*headers: str) -> Table:
    """A table whose cells wrap (never cut with an ellipsis), also when the output is piped."""
    from rich.table import Column

    return Table(*(Column(h, overflow="fold") for h in headers))


def _view_names(views: list[str] | None) -> list[str] | None:
    """`--views a,b --views c` -> [a, b, c]; None when not given."""
    names = [name.strip() for item in views or [] for name in item.split(",") if name.strip()]
    return names or None


@app.command()
@user_errors
def init(name: str = typer.Argument(..., help="Directory (and project name) of the new feature repo.")) -> None:
    """Create a feature repo with a driver-statistics example and generated data."""
    import re

    from repast.cli.scaffold import init_repo

    project = re.sub(r"[^A-Za-z0-9_\-]", "_", Path(name).name)
    target = init_repo(Path(name), project)
    console.print(f"Created feature repo [bold]{target}[/] (project {project}).")
    console.print(f"Next: cd {name} && repast plan && repast apply")


def _print_changes(changes: list[Any], verb: str, before: dict[str, dict[str, Any]] | None = None) -> None:
    """One line per change; under an update, each changed field's value before and after (`before`:
    kind -> name -> the registered spec)."""
    from repast.cli.change_values import value_lines
    from repast.definitions.registry_objects import KIND_LABELS

    if not changes:
        console.print("No changes: the registry matches the repo.")
        return
    marks = {"add": "[green]+[/]", "update": "[yellow]~[/]", "delete": "[red]-[/]"}
    # A new feature view version comes with the view's add/update line; `feature-views list-versions` shows it.
    changes = [c for c in changes if c.kind != "feature_view_version"]
    if not changes:
        console.print("No changes: the registry matches the repo.")
        return
    for c in changes:
        detail = f" ({', '.join(c.fields)})" if c.fields else ""
        if c.new_version is not None and c.op == "update":  # what it serves or computes changed
            detail += f" -> new version v{c.new_version}"
        console.print(f"{marks[c.op]} {KIND_LABELS[c.kind]} {c.name}{detail}", highlight=False)
        if c.op == "update" and before is not None:
            for line in value_lines(before.get(c.kind, {}).get(c.name), c.spec, list(c.fields)):
                console.print(f"    {escape(line)}", highlight=False, soft_wrap=True)
    counts = {op: sum(1 for c in changes if c.op == op) for op in ("add", "update", "delete")}
    console.print(f"{verb}: {counts['add']} to add, {counts['update']} to change, {counts['delete']} to delete.")


@app.command()
def version() -> None:
    """Print the installed repast version."""
    from repast.version import __version__

    print(f"repast {__version__}")


@app.command()
@user_errors
def plan() -> None:
    """Show what `apply` would change: the repo's definitions against the registry."""
    store = open_store()
    if not store.registry.capabilities.write:  # say so before a list of changes apply could never make
        try:
            store.registry.check_writable("apply this plan")
        except RepastError as e:
            console.print(f"Note: {escape(str(e))}", highlight=False, soft_wrap=True)
    changes, effects = store.plan_repo_with_effects()
    _print_changes(changes, "Plan", store.registry.snapshot(store.project).specs)
    _print_online_effects(effects, "will be")


@app.command()
@user_errors
def apply() -> None:
    """Validate the repo's definitions and make the registry match them (one transaction)."""
    store = open_store()
    before = store.registry.snapshot(store.project).specs
    changes, effects = store.apply_repo_with_effects()
    _print_changes(changes, "Applied", before)
    _print_online_effects(effects, "was")


def _print_online_effects(effects: list[Any], tense: str) -> None:
    """One line per view whose online data the apply drops, or that the online store does not hold."""
    for e in effects:
        if e.kind == "dropped":
            console.print(f"Online data of feature view {e.view} {tense} dropped (the view is deleted).",
                          highlight=False, soft_wrap=True)
            continue
        if e.kind == "rebuilt":
            why = f"its storage layout changes, its online data {tense} dropped"
        else:
            why = "the configured online store holds no materialized data for it"
        console.print(f"Online data of feature view {e.view}: {why}; the next materialize-incremental refills it "
                      f"from {e.refill_from:%Y-%m-%d %H:%M:%S} UTC.", highlight=False, soft_wrap=True)


@app.command()
@user_errors
def teardown(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Remove the project's online storage and its registry records."""
    store = open_store()
    if store.registry.capabilities.write and store.registry.stored_version() == 0:
        console.print(f"Nothing to tear down: project '{store.project}' has not been applied to this registry.")
        return
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Remove everything registered for project '{store.project}'?", abort=True)
    store.teardown()
    console.print(f"Project '{store.project}' torn down.")


@app.command("registry-dump")
@user_errors
def registry_dump() -> None:
    """Print every registered definition as JSON."""
    store = open_store()
    definitions = store.registry.contents().to_json()
    data = {"project": store.project, "version": store.registry.version,
            **{k: v for k, v in definitions.items() if k != "project"}, "projects": definitions["project"]}
    for odfv in data["on_demand_feature_view"]:
        odfv.pop("udf_pickle", None)
    print(json.dumps(data, indent=2, default=str))


@app.command()
@user_errors
def history(limit: int = typer.Option(20, min=1, max=1_000_000, help="How many applies to show, newest first."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
            diff: int = typer.Option(None, "--diff", metavar="N",
                                     help="Show what apply N changed: each changed field before and after.")) -> None:
    """List past applies: version, when, who, and what changed."""
    if diff is not None:
        _print_history_diff(diff)
        return
    entries = open_store().history(limit)
    if as_json:
        print(json.dumps([{"version": e.version, "applied_at": e.applied_at.isoformat(),
                           "applied_by": e.applied_by, "changes": e.changes} for e in entries], indent=2))
        return
    table = _table("version", "applied at (UTC)", "by", "changes")
    for e in entries:
        summary = ", ".join(f"{c['op']} {c['kind']} {c['name']}" for c in e.changes)
        table.add_row(str(e.version), f"{e.applied_at:%Y-%m-%d %H:%M:%S}", e.applied_by, summary)
    console.print(table)


def _print_history_diff(version: int) -> None:
    """Apply `version`'s changes, with each updated field's value before (the object's spec as an
    earlier apply wrote it) and after."""
    from repast.cli.change_values import value_lines
    from repast.errors import InputError

    entries = open_store().history(1_000_000)
    entry = next((e for e in entries if e.version == version), None)
    if entry is None:
        raise InputError(f"--diff {version}: no apply {version} in this project's history "
                         f"(versions 1 to {max((e.version for e in entries), default=0)})")
    console.print(f"Apply {entry.version}, {entry.applied_at:%Y-%m-%d %H:%M:%S} UTC by {entry.applied_by}:",
                  highlight=False)
    for c in entry.changes:
        if c["kind"] == "feature_view_version":
            continue  # recorded with its view's change; `feature-views list-versions` shows it
        console.print(f"{c['op']} {c['kind']} {c['name']}", highlight=False)
        if c["op"] != "update":
            continue
        key = f"{c['kind']}/{c['name']}"
        before = next((e.specs[key] for e in entries if e.version < version and e.specs.get(key)), None)
        for line in value_lines(before, entry.specs.get(key), c.get("fields") or []):
            console.print(f"    {escape(line)}", highlight=False, soft_wrap=True)


def _object_rows(kind: str, obj: Any) -> list[str]:
    d = obj.to_dict()
    if kind == "entity":
        return [obj.name, ", ".join(obj.join_keys), obj.description]
    if kind == "data_source":
        return [obj.name, d["type"], d.get("path") or d.get("table") or d.get("query") or d.get("topic") or ""]
    if kind in ("feature_view", "on_demand_feature_view"):
        return [obj.name, ", ".join(getattr(obj, "entities", [])), ", ".join(obj.feature_names())]
    return [obj.name, ", ".join(obj.feature_refs()), obj.description]


_COLUMNS = {"entity": ["name", "join keys", "description"], "data_source": ["name", "type", "location"],
            "feature_view": ["name", "entities", "features"],
            "on_demand_feature_view": ["name", "entities", "features"],
            "feature_service": ["name", "features", "description"]}


def _add_object_commands(kind: str, command: str, label: str) -> None:
    sub = typer.Typer(help=f"List and describe registered {label}.", no_args_is_help=True)

    @sub.command("list")
    @user_errors
    def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
              tags: list[str] = typer.Option(None, "--tags", metavar="KEY=VALUE",
                                             help="Only objects with tag KEY=VALUE (or KEY:VALUE); "
                                                  "repeat for several.")) -> None:
        from repast.cli.feast_commands import parse_tags
        from repast.store_feast import matches_tags

        wanted = parse_tags(tags or [])
        objs = [o for o in open_store().registry.contents().by_kind(kind).values() if matches_tags(o, wanted)]
        if as_json:
            print(json.dumps([_public_dict(o) for o in objs], indent=2, default=str))
            return
        table = _table(*_COLUMNS[kind])
        for o in objs:
            table.add_row(*_object_rows(kind, o))
        console.print(table)

    list_.__doc__ = f"List registered {label}."

    @sub.command("describe")
    @user_errors
    def describe(name: str = typer.Argument(..., help="Name of the object.")) -> None:
        obj = open_store().registry.contents().get(kind, name)
        print(json.dumps(_public_dict(obj), indent=2, default=str))

    describe.__doc__ = f"Show one of the registered {label} as JSON."
    app.add_typer(sub, name=command)
    GROUPS[command] = sub


GROUPS: dict[str, typer.Typer] = {}  # CLI group name -> its Typer, so other modules can add commands


def _public_dict(obj: Any) -> dict[str, Any]:
    d: dict[str, Any] = obj.to_dict()
    d.pop("udf_pickle", None)
    return d


for _kind, _command, _label in (("entity", "entities", "entities"), ("data_source", "data-sources", "data sources"),
                                ("feature_view", "feature-views", "feature views"),
                                ("on_demand_feature_view", "on-demand-feature-views", "on-demand feature views"),
                                ("feature_service", "feature-services", "feature services")):
    _add_object_commands(_kind, _command, _label)

@app.command()
@user_errors
def serve(host: str = typer.Option("127.0.0.1", "--host", "-h", help="Address to listen on."),
          port: int = typer.Option(6566, "--port", "-p", help="Port to listen on."),
          type_: str = typer.Option("http", "--type", "-t", help="Server type: http (repast has no gRPC server)."),
          workers: int = typer.Option(1, "--workers", "-w", help="Worker processes sharing the port "
                                                                 "(-1: 2 x CPUs + 1)."),
          no_access_log: bool = typer.Option(False, "--no-access-log", help="Do not log every request."),
          key: str = typer.Option(None, "--key", "-k", help="TLS private key (PEM); needs --cert."),
          cert: str = typer.Option(None, "--cert", "-c", help="TLS certificate (PEM); needs --key."),
          keep_alive_timeout: float = typer.Option(None, "--keep-alive-timeout",
                                                   help="Seconds an idle connection stays open (default 5)."),
          registry_ttl_sec: float = typer.Option(None, "--registry_ttl_sec", "--registry-ttl-sec", "-r",
                                                 help="Seconds between registry checks (default: the "
                                                      "registry's cache_ttl_seconds)."),
          metrics: bool = typer.Option(False, "--metrics", "-m",
                                       help="Accepted (Feast's): Prometheus metrics are always at /metrics."),
          no_feature_log: bool = typer.Option(False, "--no-feature-log",
                                              help="Do not log served features (feature services' logging_config)."),
          worker_connections: int = typer.Option(None, "--worker-connections", help="Accepted, no effect."),
          max_requests: int = typer.Option(None, "--max-requests", help="Accepted, no effect."),
          max_requests_jitter: int = typer.Option(None, "--max-requests-jitter", help="Accepted, no effect.")
          ) -> None:
    """Serve features over HTTP (Feast-compatible JSON API, Prometheus metrics at /metrics)."""
    from repast.server.runner import serve as run_server
    from repast.store_feast import server_workers

    count = server_workers(type_, workers, worker_connections is not None, max_requests is not None,
                           max_requests_jitter is not None)
    store = open_store()
    run_server(store.backends, host=host, port=port, workers=count, access_log=not no_access_log, key=key,
               cert=cert, config_path=_state["repo"] or Path.cwd(), keep_alive_timeout=keep_alive_timeout,
               registry_ttl_sec=registry_ttl_sec, feature_log=not no_feature_log)


def _run_materialization(run: Callable[[Any], list[Any]]) -> None:
    """A rich progress line per view on a terminal, plain log lines otherwise; then a summary."""
    if console.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        tasks: dict[str, Any] = {}
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console) as bar:
            def show(s: Any) -> None:
                if s.view not in tasks:
                    tasks[s.view] = bar.add_task(s.view, total=None)
                label = f"{s.view}: {s.rows:,} rows" + (" done" if s.done else "")
                bar.update(tasks[s.view], description=label, completed=1 if s.done else 0,
                           total=1 if s.done else None)
            results = run(show)
    else:
        # Piped (a CronJob's log): one line per view as it finishes, then the summary.
        printed: set[str] = set()

        def view_line(s: Any) -> None:
            print(f"{s.view}: {s.rows} rows written in {s.seconds:.2f} s ({s.rows_per_second:.0f} rows/s)",
                  flush=True)
            printed.add(s.view)

        results = run(lambda s: view_line(s) if s.done else None)
        for s in results:
            if s.view not in printed:
                view_line(s)
        rows, seconds = sum(s.rows for s in results), sum(s.seconds for s in results)
        print(f"Materialized {len(results)} feature view(s): {rows} rows written in {seconds:.2f} s")
        return
    table = _table("feature view", "from", "to", "rows written", "rows/s")
    for s in results:
        table.add_row(s.view, f"{s.start:%Y-%m-%d %H:%M:%S}", f"{s.end:%Y-%m-%d %H:%M:%S}", f"{s.rows:,}",
                      f"{s.rows_per_second:,.0f}")
    console.print(table)


@app.command()
@user_errors
def materialize(start: str = typer.Argument(..., help="Start of the window (ISO 8601, inclusive; UTC if no zone)."),
                end: str = typer.Argument(..., help="End of the window (ISO 8601, inclusive)."),
                views: list[str] = typer.Option(None, "--views", "-v", metavar="VIEW[,VIEW...]",
                                                help="Only these feature views: repeat the option or "
                                                     "separate names with commas."),
                disable_event_timestamp: bool = typer.Option(
                    False, "--disable-event-timestamp",
                    help="Feast's; not supported: repast's views always have an event time.")) -> None:
    """Load the latest row per entity with START <= event time <= END into the online store."""
    from repast.types.timestamps import parse_time

    if disable_event_timestamp:
        from repast.config.feast_surface import not_supported, parts

        raise RepastError(not_supported(parts("option", "materialize")["--disable-event-timestamp"]))

    store = open_store()
    start_ts, end_ts = parse_time(start, "START"), parse_time(end, "END")
    _run_materialization(lambda progress: store.materialize(start_ts, end_ts, _view_names(views), progress))


@app.command("materialize-incremental")
@user_errors
def materialize_incremental(
        end: str = typer.Argument("now", help="End of the window (ISO 8601, inclusive; UTC if no zone; "
                                              "default: now)."),
        views: list[str] = typer.Option(None, "--views", "-v", metavar="VIEW[,VIEW...]",
                                                help="Only these feature views: repeat the option or "
                                                     "separate names with commas.")) -> None:
    """Like materialize, each view from where its last run ended (or END - ttl the first time)."""
    from repast.types.timestamps import parse_time

    store = open_store()
    end_ts = parse_time(end, "END")
    _run_materialization(lambda progress: store.materialize_incremental(end_ts, _view_names(views), progress))


config_app = typer.Typer(help="Inspect the configuration in use.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
@user_errors
def config_show() -> None:
    """Print where the configuration was found and its values (secrets masked)."""
    from repast.config.display import displayable

    store = open_store()
    console.print(f"# from {store.config_source}: {store.config.repo_path}", highlight=False)
    print(json.dumps(displayable(store.config), indent=2))


from repast.cli.ui_command import ui as _ui  # noqa: E402  (command modules register after the app exists)

app.command("ui")(_ui)

from repast.cli.offline_command import serve_offline as _serve_offline  # noqa: E402

app.command("serve-offline")(_serve_offline)
app.command("serve_offline", help="Feast's name for serve-offline: the offline server over Arrow Flight.")(
    _serve_offline)

from repast.cli.gc_command import gc as _gc  # noqa: E402
from repast.cli.monitor_command import drift as _drift  # noqa: E402
from repast.cli.monitor_command import skew as _skew  # noqa: E402
from repast.cli.monitor_command import stats_app as _stats_app  # noqa: E402

app.add_typer(_stats_app, name="stats")
app.command("drift")(_drift)
app.command("skew")(_skew)

app.command("gc")(_gc)

from repast.cli.stream_command import stream as _stream  # noqa: E402

app.command("stream")(_stream)

from repast.cli.aggregations_command import aggregations_app as _aggregations_app  # noqa: E402

app.add_typer(_aggregations_app, name="aggregations")

from repast.cli.feast_commands import register as _register_feast_commands  # noqa: E402

_register_feast_commands(app, GROUPS)


def run() -> None:
    """Entry point of the `repast` console script and of `python -m repast`."""
    app(prog_name="repast")
