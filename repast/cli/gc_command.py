"""`repast gc`: what killed writers left on object storage and disk, listed, and removed with --yes."""

from __future__ import annotations

import os
from typing import Any

import typer

from repast.cli.common import console, open_store, user_errors
from repast.types.timestamps import parse_duration


def parse_age(text: str) -> float:
    """Seconds in `90s`, `30m`, `1h`, `2d` (or a bare number of seconds)."""
    return parse_duration(text, "--older-than", allow_zero=True).total_seconds()


def write_locations(store: Any) -> list[tuple[str, str | None]]:
    """(path, endpoint override) of every place the repo's writes land: FileSources, saved
    datasets and feature logging directories, relative paths resolved against the repo."""
    from repast.definitions import FileSource

    contents = store.registry.contents()
    default_endpoint = getattr(store.config.offline_store, "endpoint_override", None)
    places: list[tuple[str, str | None]] = []
    sources = [*contents.data_sources.values(), *(view.batch_source for view in contents.feature_views.values())]
    for source in sources:
        source = getattr(source, "batch_source", None) or source  # a PushSource writes to its batch source
        if isinstance(source, FileSource):
            places.append((source.path, source.s3_endpoint_override or default_endpoint))
    for dataset in contents.saved_datasets.values():
        storage = dataset.storage
        places.append((storage.to_dict()["path"], getattr(storage, "s3_endpoint_override", None) or default_endpoint))
    for service in contents.feature_services.values():
        path = getattr(getattr(service.logging_config, "destination", None), "path", None)
        if path:
            places.append((path, None))
    return [(p if "://" in p or os.path.isabs(p) else str(store.repo_path / p), e) for p, e in places]


def find_leftovers(store: Any, older_than_seconds: float) -> list[tuple[Any, str | None]]:
    from repast.offline import leftovers
    from repast.offline.storage_paths import scheme_of, use_timeouts

    bounds = store.config.object_storage
    use_timeouts(bounds.connect_timeout_seconds, bounds.read_timeout_seconds)
    found: dict[str, tuple[Any, str | None]] = {}
    prefixes = set()
    for path, endpoint in write_locations(store):
        scheme = scheme_of(path)
        if scheme == "s3":
            prefix = leftovers.write_prefix(path)
            if (prefix, endpoint) in prefixes:
                continue
            prefixes.add((prefix, endpoint))
            for leftover in leftovers.incomplete_uploads(prefix, older_than_seconds, endpoint):
                found[leftover.location + leftover.upload_id] = (leftover, endpoint)
        elif scheme in ("", "file"):
            directory = leftovers.local_directory(path)
            if os.path.isdir(directory):
                for leftover in leftovers.temporary_files(directory, older_than_seconds):
                    found[leftover.location] = (leftover, None)
        # gs://: an interrupted resumable upload is never an object and expires by itself.
    return sorted(found.values(), key=lambda item: item[0].location)


@user_errors
def gc(older_than: str = typer.Option("1h", "--older-than", metavar="AGE",
                                      help="Only leftovers started longer ago than this (30m, 1h, 2d): a "
                                           "younger upload may belong to a writer still running."),
       yes: bool = typer.Option(False, "--yes", "-y", help="Abort and remove them; without it, only list them.")
       ) -> None:
    """List what killed writers left: incomplete S3 multipart uploads under the repo's paths and
    temporary files beside local sources; --yes aborts and removes them."""
    from repast.offline.leftovers import remove

    seconds = parse_age(older_than)
    store = open_store()
    found = find_leftovers(store, seconds)
    if not found:
        console.print(f"Nothing left behind older than {older_than} under the paths of project '{store.project}'.")
        return
    for leftover, _ in found:  # one line each, whole: locations are long and scripts read them
        console.print(f"{leftover.kind}: {leftover.location} (started {leftover.started:%Y-%m-%d %H:%M:%S} UTC)",
                      highlight=False, soft_wrap=True, markup=False)
    if not yes:
        console.print(f"{len(found)} leftover(s) older than {older_than}; nothing was changed. Run "
                      f"`repast gc --older-than {older_than} --yes` to abort and remove them.")
        return
    for leftover, endpoint in found:
        remove(leftover, endpoint)
    console.print(f"Aborted or removed {len(found)} leftover(s).")
