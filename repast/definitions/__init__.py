"""The declarative model: plain data, no I/O."""

from repast.definitions.aggregation import Aggregation
from repast.definitions.entity import Entity, Field
from repast.definitions.feature_service import FeatureService
from repast.definitions.feature_view import BatchFeatureView, FeatureView, Projection
from repast.definitions.on_demand import OnDemandFeatureView, on_demand_feature_view
from repast.definitions.registry_objects import KINDS, RepoContents, object_from_dict, spec_of
from repast.definitions.source_types import source_from_dict
from repast.definitions.sources import (
    CsvFormat,
    DataSource,
    FileSource,
    ParquetFormat,
    PostgreSQLSource,
    PushSource,
    RequestSource,
)
from repast.definitions.spark_source import SparkSource
from repast.definitions.stream_sources import AvroFormat, JsonFormat, KafkaSource
from repast.definitions.stream_view import StreamFeatureView

__all__ = [
    "KINDS", "Aggregation", "BatchFeatureView", "CsvFormat", "DataSource", "Entity", "FeatureService", "FeatureView",
    "Field", "FileSource", "OnDemandFeatureView", "ParquetFormat", "PostgreSQLSource", "Projection",
    "PushSource", "RepoContents", "RequestSource", "object_from_dict", "on_demand_feature_view",
    "source_from_dict", "spec_of", "SparkSource", "AvroFormat", "JsonFormat", "KafkaSource", "StreamFeatureView",
]
