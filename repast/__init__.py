"""repast: a feature store for machine learning. Feast-compatible names, built for speed."""

from repast import types
from repast.client import Client
from repast.config import RepoConfig
from repast.definitions import (
    BatchFeatureView,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PostgreSQLSource,
    PushSource,
    RequestSource,
    SparkSource,
)
from repast.push import PushMode
from repast.store import FeatureStore
from repast.types import ValueType
from repast.version import __version__ as __version__

__all__ = [
    "BatchFeatureView", "Client", "Entity", "FeatureService", "FeatureStore", "FeatureView", "Field", "FileSource",
    "OnDemandFeatureView", "PostgreSQLSource", "PushMode", "PushSource", "RepoConfig", "RequestSource", "ValueType",
    "types", "SparkSource",
]
