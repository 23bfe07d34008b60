"""Feast's import path: `from repast.data_format import ParquetFormat`."""

from repast.definitions.sources import CsvFormat, ParquetFormat

__all__ = ["CsvFormat", "ParquetFormat"]
