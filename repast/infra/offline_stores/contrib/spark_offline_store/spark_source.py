"""Feast's module path for SparkSource: `from repast.infra.offline_stores.contrib.spark_offline_store.spark_source
import SparkSource`."""

from repast.definitions.spark_source import SparkSource

__all__ = ["SparkSource"]
