"""Feature logging: where a feature service's served rows are written (Feast's LoggingConfig)."""

from __future__ import annotations

from typing import Any

from repast.errors import DefinitionError


class LoggingDestination:
    """Base of logging destinations; a destination is plain data, the feature server does the I/O."""

    destination_type = ""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class FileLoggingDestination(LoggingDestination):
    """Parquet files under `path` (a directory, relative to the repo), one file per flushed batch."""

    destination_type = "file"

    def __init__(self, *, path: str, s3_endpoint_override: str = "",
                 partition_by: list[str] | None = None) -> None:
        if not path or not isinstance(path, str):
            raise DefinitionError(f"FileLoggingDestination: path must be a non-empty string, got {path!r}")
        self.path = path
        self.s3_endpoint_override = s3_endpoint_override
        self.partition_by = list(partition_by or [])

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.destination_type, "path": self.path,
                "s3_endpoint_override": self.s3_endpoint_override, "partition_by": self.partition_by}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileLoggingDestination) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.path)


class LoggingConfig:
    """`LoggingConfig(destination=FileLoggingDestination(path="logs"), sample_rate=1.0)`."""

    def __init__(self, destination: LoggingDestination, sample_rate: float = 1.0) -> None:
        if not isinstance(destination, LoggingDestination):
            raise DefinitionError(f"LoggingConfig: destination must be a FileLoggingDestination, got {destination!r}")
        if not 0.0 < sample_rate <= 1.0:
            raise DefinitionError(f"LoggingConfig: sample_rate must be in (0, 1], got {sample_rate!r}")
        self.destination = destination
        self.sample_rate = float(sample_rate)

    def to_dict(self) -> dict[str, Any]:
        return {"destination": self.destination.to_dict(), "sample_rate": self.sample_rate}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoggingConfig:
        dest = dict(d["destination"])
        if dest.pop("type") != "file":
            raise DefinitionError(f"unknown logging destination {d['destination']!r}")
        return cls(FileLoggingDestination(**dest), d.get("sample_rate", 1.0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoggingConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.destination)
