"""Feast's module path for the Spark offline store."""
