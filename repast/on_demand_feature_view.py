"""Feast's import path: `from repast.on_demand_feature_view import on_demand_feature_view`."""

from repast.definitions.on_demand import OnDemandFeatureView, on_demand_feature_view

__all__ = ["OnDemandFeatureView", "on_demand_feature_view"]
