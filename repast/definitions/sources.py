"""Data sources: where a feature view's rows come from.

Pure data: a source never opens a file or a connection. Offline engines read them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from repast.definitions.entity import Field
from repast.errors import DefinitionError


class DataSource:
    """Common attributes of every source. `field_mapping` maps source column -> feature name."""

    kind: ClassVar[str] = "data_source"
    source_type: ClassVar[str] = ""

    def __init__(self, name: str, timestamp_field: str = "", created_timestamp_column: str = "",
                 field_mapping: dict[str, str] | None = None, description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "") -> None:
        if not name or not isinstance(name, str):
            raise DefinitionError(f"{type(self).__name__} needs a non-empty name, got {name!r}")
        self.name = name
        self.timestamp_field = timestamp_field
        self.created_timestamp_column = created_timestamp_column
        self.field_mapping = dict(field_mapping or {})
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner

    def _common(self) -> dict[str, Any]:
        return {"type": self.source_type, "name": self.name, "timestamp_field": self.timestamp_field,
                "created_timestamp_column": self.created_timestamp_column,
                "field_mapping": self.field_mapping, "description": self.description,
                "tags": self.tags, "owner": self.owner}

    def to_dict(self) -> dict[str, Any]:
        return self._common()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSource:
        """The source `to_dict()` described; each kind of source rebuilds its own fields."""
        raise DefinitionError(f"{cls.__name__} cannot be rebuilt from the registry")

    def source_column(self, feature_name: str) -> str:
        """The column of this source that holds `feature_name` (inverse of field_mapping)."""
        for col, feat in self.field_mapping.items():
            if feat == feature_name:
                return col
        return feature_name

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.source_type, self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class FileSource(DataSource):
    """Parquet (a file, a directory of part files, or a glob) or CSV, read in place."""

    source_type = "file"

    def __init__(self, *, path: str, name: str = "", timestamp_field: str = "",
                 created_timestamp_column: str = "", field_mapping: dict[str, str] | None = None,
                 file_format: Any = None, description: str = "", tags: dict[str, str] | None = None,
                 owner: str = "", event_timestamp_column: str = "",
                 s3_endpoint_override: str | None = None) -> None:
        if not path or not isinstance(path, str):
            raise DefinitionError(f"FileSource '{name}': path must be a non-empty string")
        super().__init__(name or path, timestamp_field or event_timestamp_column,
                         created_timestamp_column, field_mapping, description, tags, owner)
        self.path = path
        self.file_format = _file_format(path, file_format)
        # An S3-compatible server for this source's s3:// path (path-style addressing); without it
        # the offline store's endpoint_override, then AWS's own settings, apply.
        self.s3_endpoint_override = s3_endpoint_override or None

    def to_dict(self) -> dict[str, Any]:
        d = {**self._common(), "path": self.path, "file_format": self.file_format}
        if self.s3_endpoint_override:  # only when set: specs applied before it existed stay equal
            d["s3_endpoint_override"] = self.s3_endpoint_override
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileSource:
        return cls(path=d["path"], name=d["name"], file_format=d.get("file_format"),
                   s3_endpoint_override=d.get("s3_endpoint_override"), **time_args(d), **common_args(d))


def _file_format(path: str, file_format: Any) -> str:
    if file_format is None:
        return "csv" if path.lower().endswith(".csv") else "parquet"
    text = file_format if isinstance(file_format, str) else type(file_format).__name__
    text = text.lower().replace("format", "")
    if text not in ("parquet", "csv"):
        raise DefinitionError(f"FileSource '{path}': file_format must be parquet or csv, got {file_format!r}")
    return text


class ParquetFormat:
    """Feast-compatible marker: `FileSource(file_format=ParquetFormat())`."""


class CsvFormat:
    """Marker for CSV files: `FileSource(file_format=CsvFormat())`."""


class PostgreSQLSource(DataSource):
    """A PostgreSQL table or query, read by the postgres offline engine."""

    source_type = "postgres"

    def __init__(self, name: str = "", query: str | None = None, table: str | None = None,
                 timestamp_field: str = "", created_timestamp_column: str = "",
                 field_mapping: dict[str, str] | None = None, description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "") -> None:
        if bool(query) == bool(table):
            raise DefinitionError(f"PostgreSQLSource '{name}': give exactly one of query= or table=")
        super().__init__(name or str(table), timestamp_field, created_timestamp_column,
                         field_mapping, description, tags, owner)
        self.query = query
        self.table = table

    def to_dict(self) -> dict[str, Any]:
        return {**self._common(), "query": self.query, "table": self.table}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PostgreSQLSource:
        return cls(name=d["name"], query=d.get("query"), table=d.get("table"), **time_args(d), **common_args(d))

    def from_clause(self) -> str:
        """SQL usable after FROM: the table name or the query in parentheses."""
        return str(self.table) if self.table else f"({self.query})"


class PushSource(DataSource):
    """Fresh rows pushed by applications; `batch_source` holds the history offline."""

    source_type = "push"

    def __init__(self, *, name: str, batch_source: DataSource, description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "") -> None:
        if not isinstance(batch_source, DataSource) or isinstance(batch_source, (PushSource, RequestSource)):
            raise DefinitionError(f"PushSource '{name}': batch_source must be a FileSource or PostgreSQLSource")
        super().__init__(name, batch_source.timestamp_field, batch_source.created_timestamp_column,
                         batch_source.field_mapping, description, tags, owner)
        self.batch_source = batch_source

    def to_dict(self) -> dict[str, Any]:
        return {**self._common(), "batch_source": self.batch_source.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PushSource:
        """`d["batch_source"]` is the batch source itself, rebuilt first by source_from_dict."""
        return cls(name=d["name"], batch_source=d["batch_source"], **common_args(d))


class RequestSource(DataSource):
    """Values that arrive with the request (online) or the entity frame (offline)."""

    source_type = "request"

    def __init__(self, *, name: str, schema: list[Field], description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "") -> None:
        super().__init__(name, description=description, tags=tags, owner=owner)
        if not schema:
            raise DefinitionError(f"RequestSource '{name}': schema is empty")
        self.schema = list(schema)

    def to_dict(self) -> dict[str, Any]:
        return {**self._common(), "schema": [f.to_dict() for f in self.schema]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequestSource:
        return cls(name=d["name"], schema=[Field.from_dict(f) for f in d["schema"]], **common_args(d))


def common_args(d: dict[str, Any]) -> dict[str, Any]:
    return {"description": d.get("description") or "", "tags": d.get("tags"), "owner": d.get("owner") or ""}


def time_args(d: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp_field": d.get("timestamp_field", ""),
            "created_timestamp_column": d.get("created_timestamp_column", ""), "field_mapping": d.get("field_mapping")}
