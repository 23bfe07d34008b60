"""repast: a feature store for machine learning. Feast-compatible names, built for speed."""

from repast import types
from repast.client import Client
from repast.config.repo_config import RepoConfig
from repast.definitions import (
    Aggregation,
    BatchFeatureView,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    KafkaSource,
    OnDemandFeatureView,
    PostgreSQLSource,
    PushSource,
    RequestSource,
    SparkSource,
    StreamFeatureView,
)
from repast.definitions.label_view import ConflictPolicy, LabelView
from repast.definitions.logging_config import FileLoggingDestination, LoggingConfig
from repast.definitions.project import Project
from repast.definitions.saved_dataset import SavedDataset, SavedDatasetFileStorage
from repast.definitions.stream_sources import AvroFormat, JsonFormat
from repast.feast_paths import install as _install_feast_paths
from repast.jobs.push import PushMode
from repast.store import FeatureStore
from repast.types import ValueType
from repast.version import __version__ as __version__

_install_feast_paths()  # Feast's module paths: `from repast.data_source import PushMode` (see feast_paths.py)

__all__ = [
    "Aggregation", "BatchFeatureView", "Client", "Entity", "FeatureService", "FeatureStore", "FeatureView", "Field",
    "FileSource",
    "OnDemandFeatureView", "PostgreSQLSource", "PushMode", "PushSource", "RepoConfig", "RequestSource", "ValueType",
    "types", "ConflictPolicy", "LabelView", "FileLoggingDestination", "LoggingConfig", "Project", "SavedDataset",
    "SavedDatasetFileStorage", "SparkSource", "KafkaSource", "StreamFeatureView", "JsonFormat", "AvroFormat",
]
