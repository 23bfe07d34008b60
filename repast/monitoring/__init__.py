"""Monitoring: feature statistics, drift against a reference, training/serving skew, freshness.

Statistics are computed in the offline engine (statistics_sql.py over the SQL engines' dialect
hooks) and kept by day in the registry; drift and skew checks compare them (drift.py, skew.py);
the feature server exports the latest results and the views' freshness as Prometheus gauges.
"""
