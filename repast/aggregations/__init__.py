"""Windowed aggregations online: tiles of partial aggregates, written by materialization and push,
merged at read time over the window ending at the request time.

- spec.py: what a view's aggregations need from tiles (function, column, window, tile size)
- layout.py: the partial-aggregate columns a view's tile rows hold (the same in every store)
- partials.py: tiles computed from events (DuckDB over Arrow) and two tile rows merged (push)
- merge.py: the value of each aggregation at time t from the tiles of its window
"""
