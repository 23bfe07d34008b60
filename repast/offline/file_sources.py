"""File access for FileSources: which files a source is made of, and adding rows to it.

Every reader (the DuckDB engine for training and materialization, schema reads at plan and
apply) lists a source's files here, and every offline writer adds rows here, so they agree.

Writes never modify a file: each write adds one new, immutable part file with a unique name.
It is written under a hidden temporary name in the directory it belongs to and then renamed,
so a reader sees the whole part or nothing, and a writer killed at any point leaves at most a
hidden temporary file that no reader lists. On object storage (no rename) the same design holds
with one upload of the part under its final name, which is atomic there: the part is serialized
in memory first and a failed upload is aborted; a killed writer can leave an incomplete
multipart upload (never an object), which `repast gc` aborts (repast/offline/leftovers.py).

A source's files are read in one order, its **source order**: the original file first, then the
parts by name, and part names begin with the time they were written. Among rows with equal event
and created timestamps, the one that comes last in the source's order wins (in training data and
in materialization alike), so a correction written later wins, as it does in the online store.

Where the parts of a source go:
- a directory source: inside the directory;
- a glob source (`data/*.parquet`): in the glob's directory, named to match the glob;
- a single file (`data/driver_stats.parquet`): in the sibling directory
  `data/driver_stats.parquet.parts/`; the source is then the file plus every part in there.

Paths go through pyarrow.fs (repast/offline/storage_paths.py), so the same rules hold for local
paths, file://, s3:// and gs://. `endpoint` below is the S3/GCS endpoint override in force for the
source (its own `s3_endpoint_override`, else the offline store's `endpoint_override`).
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
import time
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from repast.errors import DefinitionError, InputError
from repast.offline.leftovers import write_whole
from repast.offline.storage_paths import explain, filesystem_for, is_remote, scheme_of

if TYPE_CHECKING:
    from repast.definitions import FileSource

PARTS_SUFFIX = ".parts"
_GLOB_CHARS = "*?["


def source_location(source: FileSource, repo_path: str) -> str:
    """The source's path, absolute (a relative local path is relative to the feature repo)."""
    if "://" in source.path or os.path.isabs(source.path):
        return source.path
    return os.path.join(repo_path, source.path)


def source_filesystem(source: FileSource, repo_path: str, endpoint: str | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding the source and its path there (`bucket/key` on object storage)."""
    return filesystem_for(source_location(source, repo_path), source.s3_endpoint_override or endpoint)


def _setting(source: FileSource) -> str:
    return f"FileSource '{source.name}' path '{source.path}'"


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


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Shell glob semantics on object keys: `*` and `?` stay within one path segment, `**` crosses them."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            out.append(pattern[i:end + 1] if end > 0 else re.escape("["))
            i = end + 1 if end > 0 else i + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _glob_files(fs: pafs.FileSystem, pattern: str, ext: str, remote: bool) -> list[str]:
    if not remote:  # the shell's own semantics, on the local disk
        return sorted(f for f in glob.glob(pattern, recursive=True) if _is_data_file(f, ext) and os.path.isfile(f))
    base = pattern[:min(pattern.find(c) for c in _GLOB_CHARS if c in pattern)].rpartition("/")[0]
    regex = _glob_regex(pattern)
    return [f for f in _files_under(fs, base, ext) if regex.match(f)]


def list_source_files(source: FileSource, repo_path: str, endpoint: str | None = None) -> list[str]:
    """Every file of the source (paths inside its filesystem), in a stable order: the original data
    first, then parts by name.

    Raises DefinitionError naming the source when it has no file at all, ObjectStoreError when
    object storage refuses the listing.
    """
    fs, path = source_filesystem(source, repo_path, endpoint)
    ext = "." + source.file_format
    try:
        if _is_glob(path):
            files = _glob_files(fs, path, ext, is_remote(source.path))
        elif fs.get_file_info(path).type == pafs.FileType.Directory:
            files = _files_under(fs, path, ext)
        else:
            original = [path] if fs.get_file_info(path).type == pafs.FileType.File else []
            files = original + _files_under(fs, path + PARTS_SUFFIX, ext)
    except OSError as e:
        raise explain(e, source.path, _setting(source)) from None
    if not files:
        raise DefinitionError(f"FileSource '{source.name}': no {source.file_format} files at '{source.path}'")
    return files


def schema_file(source: FileSource, repo_path: str, endpoint: str | None = None) -> str:
    """One file of the source whose columns are the source's (every part is written conformed to
    them): the original file of a single-file source, else the first data file found. Cheaper than
    listing every file, which matters once a source has many parts."""
    if is_remote(source.path):
        return list_source_files(source, repo_path, endpoint)[0]
    path = os.path.abspath(source_location(source, repo_path).removeprefix("file://"))
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
    return list_source_files(source, repo_path, endpoint)[0]


def parts_directory(source: FileSource, repo_path: str, endpoint: str | None = None) -> str:
    """The directory new part files of the source are written to (see the module docstring)."""
    fs, path = source_filesystem(source, repo_path, endpoint)
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


def write_part(source: FileSource, repo_path: str, table: pa.Table, endpoint: str | None = None,
               part_name: str | None = None) -> str:
    """Add `table` to the source as one new immutable part file; returns its path.

    The rows are first conformed to the existing files' columns and types (so every file reads
    as one table); a frame that does not fit raises InputError before anything is written.
    `part_name` (without the extension) names the part instead of the time and a random id: a
    writer that names its parts by what they hold (the stream consumer: topic, partition, offset
    range) rewrites the same part, whole, when it writes the same rows again.
    """
    try:
        return _write_part(source, repo_path, table, endpoint, part_name)
    except OSError as e:
        raise explain(e, source.path, _setting(source)) from None


def _write_part(source: FileSource, repo_path: str, table: pa.Table, endpoint: str | None,
                part_name: str | None) -> str:
    fs, path = source_filesystem(source, repo_path, endpoint)
    directory = parts_directory(source, repo_path, endpoint)
    try:
        existing = [schema_file(source, repo_path, endpoint)]
    except DefinitionError:
        existing = []
    table = conform(source, table, existing, fs)
    # Names sort in write order (the time first), which is the source's order for the tie rule.
    name = f"{part_name or f'part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}'}.{source.file_format}"
    final = posixpath.join(directory, name)
    if _is_glob(path) and not _glob_regex(path).match(final):
        raise DefinitionError(f"FileSource '{source.name}': a new part file would not match '{source.path}'")
    if is_remote(source.path):
        # One upload under the final name: object storage makes it visible whole or not at all. A
        # failed upload is aborted; a killed writer's large (multipart) upload is `repast gc`'s.
        write_whole(f"{scheme_of(source.path)}://{final}", fs, final, lambda out: _serialize(source, table, out),
                    source.s3_endpoint_override or endpoint)
        return final
    fs.create_dir(directory, recursive=True)
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
        _serialize(source, table, out)


def _serialize(source: FileSource, table: pa.Table, out: pa.NativeFile) -> None:
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


def read_schema(source: FileSource, path: str, fs: pafs.FileSystem | None = None) -> pa.Schema:
    """The columns of one file of the source, from its metadata (Parquet) or header (CSV)."""
    fs = fs or pafs.LocalFileSystem()
    if source.file_format == "csv":
        import pyarrow.csv as pcsv

        with fs.open_input_stream(path) as stream, pcsv.open_csv(stream) as reader:
            return reader.schema
    import pyarrow.parquet as pq

    return pq.read_schema(path, filesystem=fs)


def conform(source: FileSource, table: pa.Table, existing: list[str], fs: pafs.FileSystem | None = None) -> pa.Table:
    """The rows in the existing files' column order and types, so all parts read as one."""
    if not existing:
        return table
    schema = read_schema(source, existing[0], fs)
    missing = [n for n in schema.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in schema.names]
    if missing or extra:
        raise InputError(f"rows for FileSource '{source.name}' must have exactly its columns {schema.names}; "
                         f"missing {missing}, unknown {extra}")
    try:
        columns = [_conformed_column(table.column(f.name), f.type, f.name) for f in schema]
        return pa.Table.from_arrays(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputError(f"rows for FileSource '{source.name}' do not match its column types: {e}") from None


def _conformed_column(column: pa.ChunkedArray, target: pa.DataType, name: str) -> pa.ChunkedArray | pa.Array:
    """`column` cast to the files' type. A Map feature's map<string, X> rows go into a file whose
    column is a struct (what pandas writes for a column of dicts, as Feast's templates do) field
    by field; a key the struct has no field for is refused rather than dropped."""
    if column.type == target:
        return column
    if not (pa.types.is_map(column.type) and pa.types.is_struct(target)):
        return column.cast(target)
    arr = column.combine_chunks()
    names = [target.field(i).name for i in range(target.num_fields)]
    unknown = sorted({str(k) for k in arr.keys.to_pylist()} - set(names))
    if unknown:
        raise pa.ArrowInvalid(f"column '{name}': map keys {unknown} are not fields of the files' struct "
                              f"column ({', '.join(names)}); the rows would lose them")
    children = [pc.map_lookup(arr, pa.scalar(n, arr.type.key_type), "first").cast(target.field(i).type)
                for i, n in enumerate(names)]
    return pa.StructArray.from_arrays(children, fields=list(target), mask=arr.is_null())
