"""Feast module paths, kept so `from feast.infra... import X` works as `from repast.infra... import X`."""
