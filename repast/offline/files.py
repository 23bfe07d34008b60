"""File access for FileSources: which files a source is made of, and adding rows to it.

Every reader (the DuckDB engine for training and materialization, schema reads at plan and
apply) lists a source's files here, and every offline writer adds rows here, so they agree.

Writes never modify a file: each write adds one new, immutable part file with a unique name.
It is written under a hidden temporary name in the directory it belongs to and then renamed,
so a reader sees the whole part or nothing, and a writer killed at any point leaves at most a
hidden temporary file that no reader lists. On object storage (no rename) the same design holds
with one PUT of the part under its final name, which is atomic there.

A source's files are read in one order, its **source order**: the original file first, then the
parts by name, and part names begin with the time they were written. Among rows with equal event
and created timestamps, the one that comes last in the source's order wins (in training data and
in materialization alike), so a correction written later wins, as it does in the online store.

Where the parts of a source go:
- a directory source: inside the directory;
- a glob source (`data/*.parquet`): in the glob's directory, named to match the glob;
- a single file (`data/driver_stats.parquet`): in the sibling directory
  `data/driver_stats.parquet.parts/`; the source is then the file plus every part in there.

Paths go through pyarrow.fs, so object storage (s3://, gs://) can be added here alone.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
import time
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs

from repast.errors import DefinitionError, InputError

if TYPE_CHECKING:
    from repast.definitions import FileSource

PARTS_SUFFIX = ".parts"
_GLOB_CHARS = "*?["


def source_location(source: FileSource, repo_path: str) -> str:
    """The source's path, absolute (a relative path is relative to the feature repo)."""
    return source.path if os.path.isabs(source.path) else os.path.join(repo_path, source.path)


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    return pafs.LocalFileSystem(), os.path.abspath(path)


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in _GLOB_CHARS)


def _is_data_file(path: str, ext: str) -> bool:
    """Data files end in the format's extension; hidden (`.`) and `_` names are temporary or metadata."""
    name = posixpath.basename(path)
    return name.endswith(ext) and not name.startswith((".", "_"))


def _files_under(fs: pafs.FileSystem, directory: str, ext: str) -> list[str]:
    info = fs.get_file_info(directory)
    if info.type != pafs.FileType.Directory:
        return []
    found = fs.get_file_info(pafs.FileSelector(directory, recursive=True))
    return sorted(f.path for f in found if f.type == pafs.FileType.File and _is_data_file(f.path, ext))


def list_source_files(source: FileSource, repo_path: str) -> list[str]:
    """Every file of the source, in a stable order: the original data first, then parts by name.

    Raises DefinitionError naming the source when it has no file at all.
    """
    fs, path = _filesystem(source_location(source, repo_path))
    ext = "." + source.file_format
    if _is_glob(path):
        # Shell semantics (`*` stays within a directory, `**` crosses them), as users write globs.
        files = sorted(f for f in glob.glob(path, recursive=True) if _is_data_file(f, ext) and os.path.isfile(f))
    elif fs.get_file_info(path).type == pafs.FileType.Directory:
        files = _files_under(fs, path, ext)
    else:
        original = [path] if fs.get_file_info(path).type == pafs.FileType.File else []
        files = original + _files_under(fs, path + PARTS_SUFFIX, ext)
    if not files:
        raise DefinitionError(f"FileSource '{source.name}': no {source.file_format} files at '{source.path}'")
    return files


def schema_file(source: FileSource, repo_path: str) -> str:
    """One file of the source whose columns are the source's (every part is written conformed to
    them): the original file of a single-file source, else the first data file found. Cheaper than
    listing every file, which matters once a source has many parts."""
    path = source_location(source, repo_path)
    ext = "." + source.file_format
    if not _is_glob(path) and not os.path.isdir(path):
        if os.path.isfile(path):
            return path
        path += PARTS_SUFFIX
    if not _is_glob(path):
        for directory, subdirectories, names in os.walk(path):
            subdirectories.sort()  # the same file every time: the first in name order
            for name in sorted(names):
                if _is_data_file(name, ext):
                    return os.path.join(directory, name)
    return list_source_files(source, repo_path)[0]


def parts_directory(source: FileSource, repo_path: str) -> str:
    """The directory new part files of the source are written to (see the module docstring)."""
    fs, path = _filesystem(source_location(source, repo_path))
    if _is_glob(path):
        directory = posixpath.dirname(path)
        if _is_glob(directory):
            raise DefinitionError(f"FileSource '{source.name}': cannot write under the glob '{source.path}'; "
                                  "use a directory path or a glob only in the file name")
        return directory
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        return path
    if info.type == pafs.FileType.File or path.endswith("." + source.file_format):
        return path + PARTS_SUFFIX
    return path  # a source that does not exist yet and names no file: a directory of parts


def write_part(source: FileSource, repo_path: str, table: pa.Table) -> str:
    """Add `table` to the source as one new immutable part file; returns its path.

    The rows are first conformed to the existing files' columns and types (so every file reads
    as one table); a frame that does not fit raises InputError before anything is written.
    """
    fs, path = _filesystem(source_location(source, repo_path))
    directory = parts_directory(source, repo_path)
    try:
        existing = [schema_file(source, repo_path)]
    except DefinitionError:
        existing = []
    table = conform(source, table, existing)
    # Names sort in write order (the time first), which is the source's order for the tie rule.
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.{source.file_format}"
    if _is_glob(path) and not fnmatch.fnmatch(posixpath.join(directory, name), path):
        raise DefinitionError(f"FileSource '{source.name}': a new part file would not match '{source.path}'")
    fs.create_dir(directory, recursive=True)
    final = posixpath.join(directory, name)
    temporary = posixpath.join(directory, f".{name}.tmp")
    try:
        _write_file(fs, source, table, temporary)
        _sync(temporary)
        fs.move(temporary, final)  # atomic on one filesystem: readers see all of the part or none
    except BaseException:
        if fs.get_file_info(temporary).type == pafs.FileType.File:
            fs.delete_file(temporary)
        raise
    _sync(directory)  # the rename itself survives a crash of the machine
    return final


def _write_file(fs: pafs.FileSystem, source: FileSource, table: pa.Table, path: str) -> None:
    with fs.open_output_stream(path) as out:
        if source.file_format == "csv":
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, out)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, out)


def _sync(path: str) -> None:
    """fsync a local file or directory: an acknowledged write survives a crash of the machine."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_schema(source: FileSource, path: str) -> pa.Schema:
    """The columns of one file of the source, from its metadata (Parquet) or header (CSV)."""
    if source.file_format == "csv":
        import pyarrow.csv as pcsv

        with pcsv.open_csv(path) as reader:
            return reader.schema
    import pyarrow.parquet as pq

    return pq.read_schema(path)


def conform(source: FileSource, table: pa.Table, existing: list[str]) -> pa.Table:
    """The rows in the existing files' column order and types, so all parts read as one."""
    if not existing:
        return table
    schema = read_schema(source, existing[0])
    missing = [n for n in schema.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in schema.names]
    if missing or extra:
        raise InputError(f"rows for FileSource '{source.name}' must have exactly its columns {schema.names}; "
                         f"missing {missing}, unknown {extra}")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputError(f"rows for FileSource '{source.name}' do not match its column types: {e}") from None
