"""CLI commands Feast users know: projects, delete, saved-datasets, validate, feature view versions,
configuration, and Feast's commands repast refuses (each named in repast/config/feast_surface.py,
failing with the table's reason and exit code 1).

Registered on the main `repast` app by `register` (one call at the end of repast/cli/main.py).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from repast.errors import FeatureNotFound, InputError


def parse_tags(pairs: list[str]) -> dict[str, str]:
    """`["team=ops", "tier:gold"]` -> {"team": "ops", "tier": "gold"}; anything else is a usage error."""
    tags = {}
    for pair in pairs:
        sep = "=" if "=" in pair else ":"
        key, found, value = pair.partition(sep)
        if not found or not key:
            raise typer.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="--tags")
        tags[key] = value
    return tags


def _json(obj: Any) -> None:
    d = obj.to_dict()
    d.pop("udf_pickle", None)
    print(json.dumps(d, indent=2, default=str))


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    from repast.cli.common import console, open_store, user_errors

    projects = typer.Typer(help="List and describe projects of this registry.", no_args_is_help=True)

    @projects.command("list")
    @user_errors
    def projects_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """List the projects applied to this registry."""
        found = open_store().list_projects()
        if as_json:
            print(json.dumps([p.to_dict() for p in found], indent=2))
            return
        table = Table("name", "description", "owner")
        for p in found:
            table.add_row(p.name, p.description, p.owner)
        console.print(table)

    @projects.command("describe")
    @user_errors
    def projects_describe(name: str = typer.Argument(..., help="Project name.")) -> None:
        """Show one project as JSON."""
        _json(open_store().get_project(name))

    app.add_typer(projects, name="projects")

    saved = typer.Typer(help="List and describe saved datasets.", no_args_is_help=True)

    @saved.command("list")
    @user_errors
    def saved_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """List saved datasets: name, features, where they are stored, rows."""
        found = open_store().list_saved_datasets()
        if as_json:
            print(json.dumps([d.to_dict() for d in found], indent=2))
            return
        table = Table("name", "features", "storage", "rows", "registry version")
        for d in found:
            table.add_row(d.name, ", ".join(d.features), d.storage.to_dict()["path"], str(d.row_count),
                          str(d.registry_version))
        console.print(table)

    @saved.command("describe")
    @user_errors
    def saved_describe(name: str = typer.Argument(..., help="Saved dataset name.")) -> None:
        """Show one saved dataset as JSON (features, entity fingerprint, registry version)."""
        _json(open_store().get_saved_dataset(name))

    app.add_typer(saved, name="saved-datasets")

    @groups["feature-views"].command("list-versions")
    @user_errors
    def list_versions(name: str = typer.Argument(..., help="Feature view name."),
                      as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """List the recorded versions of a feature view (a new one per schema change), oldest first."""
        found = open_store().list_feature_view_versions(name)
        if as_json:
            print(json.dumps([v.to_dict() for v in found], indent=2))
            return
        table = Table("version", "recorded at (UTC)", "features")
        for v in found:
            table.add_row(f"v{v.version}", v.recorded_at[:19].replace("T", " "),
                          ", ".join(f["name"] for f in v.schema))
        console.print(table)

    @app.command("delete")
    @user_errors
    def delete(name: str = typer.Argument(..., help="Name of a feature view, feature service, entity or "
                                                      "data source.")) -> None:
        """Delete one registered definition by name (and a view's online storage)."""
        store = open_store()
        contents = store.registry.refresh()
        kinds = ("feature_view", "on_demand_feature_view", "feature_service", "entity", "data_source")
        found = [(k, contents.by_kind(k)[name]) for k in kinds if name in contents.by_kind(k)]
        if not found:
            raise FeatureNotFound(f"nothing named '{name}' is registered in project '{store.project}'")
        if len(found) > 1:
            raise InputError(f"'{name}' names several definitions ({', '.join(k for k, _ in found)}); "
                             "delete it with FeatureStore.apply(objects_to_delete=[...])")
        store.apply([], objects_to_delete=[found[0][1]])
        console.print(f"Deleted {found[0][0].replace('_', ' ')} '{name}'.", highlight=False)

    @app.command("validate")
    @user_errors
    def validate() -> None:
        """Check the repo's definitions (imports, references, sources, types) without writing anything."""
        store = open_store()
        changes = store.plan_repo()
        console.print(f"Valid: the definitions of project '{store.project}' check out "
                      f"({len(changes)} change(s) pending; `repast plan` lists them).", highlight=False)

    @app.command("configuration")
    @user_errors
    def configuration() -> None:
        """Print the configuration in use (secrets masked), as `repast config show` does."""
        from repast.config.display import displayable

        store = open_store()
        print(json.dumps(displayable(store.config), indent=2))

    _register_stream_views(app)
    _register_refused(app)


def _register_stream_views(app: typer.Typer) -> None:
    """`repast stream-feature-views list|describe`: the feature views `repast stream` feeds."""
    from repast.cli.common import console, open_store, user_errors

    group = typer.Typer(help="List and describe registered stream feature views.", no_args_is_help=True)

    @group.command("list")
    @user_errors
    def stream_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """List the stream feature views: name, source topic, features."""
        found = open_store().list_stream_feature_views()
        if as_json:
            print(json.dumps([_stream_dict(v) for v in found], indent=2, default=str))
            return
        table = Table("name", "source", "topic", "features")
        for v in found:
            table.add_row(v.name, v.source.name, str(getattr(v.source, "topic", "")), ", ".join(v.feature_names()))
        console.print(table)

    @group.command("describe")
    @user_errors
    def stream_describe(name: str = typer.Argument(..., help="Stream feature view name.")) -> None:
        """Show one stream feature view as JSON."""
        found = {v.name: v for v in open_store().list_stream_feature_views()}
        if name not in found:
            raise FeatureNotFound(f"stream feature view '{name}' is not registered; registered: {sorted(found)}")
        print(json.dumps(_stream_dict(found[name]), indent=2, default=str))

    app.add_typer(group, name="stream-feature-views")


def _stream_dict(view: Any) -> dict[str, Any]:
    return dict(view.spec_dict())


def _register_refused(app: typer.Typer) -> None:
    """Feast's commands repast does not run: each known by name, failing with the table's reason."""
    from repast.cli.common import err_console
    from repast.config.feast_surface import REFUSED, not_supported, parts

    for part in parts("command", "").values():
        if part.support != REFUSED:
            continue

        def refused(ctx: typer.Context, message: str = not_supported(part)) -> None:
            err_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(1)

        app.command(part.name, help=f"Feast's command; {part.why}.", hidden=False,
                    context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(refused)
