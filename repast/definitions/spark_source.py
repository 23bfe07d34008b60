"""SparkSource: a source read by the Spark offline engine, with Feast's names.

Pure data, like every source. Exactly one of `table` (a table of the Spark catalog), `query`
(Spark SQL) or `path` (files, read with `file_format`) says where the rows are.
"""

from __future__ import annotations

from typing import Any

from repast.definitions.sources import DataSource
from repast.errors import DefinitionError

SPARK_FILE_FORMATS = ("parquet", "csv", "json", "avro", "orc", "delta")


class SparkSource(DataSource):
    """A Spark table, a Spark SQL query, or files at `path` (local, hdfs://, s3a://, gs://)."""

    source_type = "spark"

    def __init__(self, *, name: str | None = None, table: str | None = None, query: str | None = None,
                 path: str | None = None, file_format: str | None = None, created_timestamp_column: str = "",
                 field_mapping: dict[str, str] | None = None, description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "", timestamp_field: str = "") -> None:
        given = [k for k, v in (("table", table), ("query", query), ("path", path)) if v]
        if len(given) != 1:
            raise DefinitionError(f"SparkSource '{name or ''}': give exactly one of table=, query= or path= "
                                  f"(got {given or 'none'})")
        if path and not file_format:
            file_format = "parquet"
        if file_format is not None and str(file_format).lower() not in SPARK_FILE_FORMATS:
            raise DefinitionError(f"SparkSource '{name or path}': file_format must be one of "
                                  f"{', '.join(SPARK_FILE_FORMATS)}, got {file_format!r}")
        super().__init__(name or str(table or path or ""), timestamp_field, created_timestamp_column,
                         field_mapping, description, tags, owner)
        if not self.name:
            raise DefinitionError("SparkSource with a query needs a name")
        self.table = table
        self.query = query
        self.path = path
        self.file_format = str(file_format).lower() if file_format else None

    def to_dict(self) -> dict[str, Any]:
        return {**self._common(), "table": self.table, "query": self.query, "path": self.path,
                "file_format": self.file_format}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SparkSource:
        return cls(name=d["name"], table=d.get("table"), query=d.get("query"), path=d.get("path"),
                   file_format=d.get("file_format"), timestamp_field=d.get("timestamp_field", ""),
                   created_timestamp_column=d.get("created_timestamp_column", ""),
                   field_mapping=d.get("field_mapping"), description=d.get("description") or "",
                   tags=d.get("tags"), owner=d.get("owner") or "")

