"""Saved datasets: a training frame stored once, with what it was built from, so it can be rebuilt.

A SavedDataset records the feature references, the entity frame's fingerprint (a SHA-256 of its
Arrow IPC bytes) and the registry version the frame was built at, next to where it is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from repast.errors import DefinitionError


class SavedDatasetStorage:
    """Where a saved dataset's rows live."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class SavedDatasetFileStorage(SavedDatasetStorage):
    """One Parquet file at `path` (relative paths are resolved against the repo)."""

    def __init__(self, path: str, file_format: Any = None, s3_endpoint_override: str | None = None) -> None:
        if not path or not isinstance(path, str):
            raise DefinitionError(f"SavedDatasetFileStorage: path must be a non-empty string, got {path!r}")
        if file_format is not None and "parquet" not in type(file_format).__name__.lower() \
                and str(file_format).lower() != "parquet":
            raise DefinitionError("SavedDatasetFileStorage: only Parquet is supported (file_format=ParquetFormat())")
        self.path = path
        self.s3_endpoint_override = s3_endpoint_override

    def to_dict(self) -> dict[str, Any]:
        return {"type": "file", "path": self.path}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SavedDatasetFileStorage) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)


class SavedDataset:
    """A registered, stored training frame. `to_df()` / `to_arrow()` read it back."""

    kind = "saved_dataset"

    def __init__(self, *, name: str, features: list[str], join_keys: list[str], storage: SavedDatasetStorage,
                 full_feature_names: bool = False, tags: dict[str, str] | None = None,
                 feature_service_name: str | None = None, entity_fingerprint: str = "",
                 registry_version: int = 0, created_at: datetime | None = None, row_count: int = 0) -> None:
        if not name or not isinstance(name, str):
            raise DefinitionError(f"SavedDataset needs a non-empty name, got {name!r}")
        self.name = name
        self.features = list(features)
        self.join_keys = list(join_keys)
        self.storage = storage
        self.full_feature_names = full_feature_names
        self.tags = dict(tags or {})
        self.feature_service_name = feature_service_name
        self.entity_fingerprint = entity_fingerprint
        self.registry_version = registry_version
        self.created_at = created_at
        self.row_count = row_count
        self.repo_path: str | None = None  # where relative storage paths resolve; set by the store

    def _path(self) -> str:
        import os

        path = self.storage.to_dict()["path"]
        if "://" in path or os.path.isabs(path) or self.repo_path is None:
            return str(path)
        return os.path.join(self.repo_path, path)

    def to_arrow(self) -> Any:
        import pyarrow.parquet as pq

        from repast.offline.storage_paths import explain, filesystem_for, is_remote  # as FileSource paths

        path = self._path()
        fs, inner = filesystem_for(path, getattr(self.storage, "s3_endpoint_override", None))
        try:
            return pq.read_table(inner, filesystem=fs)
        except OSError as e:
            if not is_remote(path):
                raise
            raise explain(e, path, f"saved dataset '{self.name}' storage path") from None

    def to_df(self) -> Any:
        return self.to_arrow().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "features": self.features, "join_keys": self.join_keys,
                "storage": self.storage.to_dict(), "full_feature_names": self.full_feature_names,
                "tags": self.tags, "feature_service_name": self.feature_service_name,
                "entity_fingerprint": self.entity_fingerprint, "registry_version": self.registry_version,
                "created_at": self.created_at.isoformat() if self.created_at else None, "row_count": self.row_count}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SavedDataset:
        created = datetime.fromisoformat(d["created_at"]) if d.get("created_at") else None
        return cls(name=d["name"], features=d["features"], join_keys=d["join_keys"],
                   storage=SavedDatasetFileStorage(d["storage"]["path"]), full_feature_names=d["full_feature_names"],
                   tags=d.get("tags"), feature_service_name=d.get("feature_service_name"),
                   entity_fingerprint=d.get("entity_fingerprint", ""), registry_version=d.get("registry_version", 0),
                   created_at=created, row_count=d.get("row_count", 0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SavedDataset) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(("saved_dataset", self.name))

    def __repr__(self) -> str:
        return f"SavedDataset(name={self.name!r})"
