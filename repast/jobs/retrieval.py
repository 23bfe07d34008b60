"""Training data: `get_historical_features` as users call it.

It resolves the feature list against the registry's definitions and normalizes the entity input;
the offline engine does the rest (repast/offline/point_in_time.py has the steps every engine shares).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.definitions.feature_refs import FeatureRequest, resolve_features
from repast.errors import InputError
from repast.offline.base import EntityInput, RetrievalJob, SpineRange
from repast.offline.point_in_time import TIMESTAMP_COLUMN
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.definitions import RepoContents
    from repast.offline.base import OfflineEngine


def get_historical_features(contents: RepoContents, engine: OfflineEngine, entity_df: Any, features: Any,
                            full_feature_names: bool, start_date: datetime | None,
                            end_date: datetime | None) -> RetrievalJob:
    """Point-in-time correct training rows as a lazy RetrievalJob (see DESIGN.md for the semantics).

    `entity_df` is a pandas DataFrame, a pyarrow Table or an SQL query in the engine's dialect.
    Without it, the spine is every distinct (join keys, event timestamp) of the requested views'
    rows in [start_date, end_date]. Raises FeatureNotFound, InputError or EntityKeyError before
    any data is read.
    """
    if features is None:
        raise InputError("features is required: a list of 'view:feature' references or a FeatureService")
    request = resolve_features(contents, features, full_feature_names)
    entity = entity_input(entity_df, request, start_date, end_date)
    return engine.get_historical_features(entity, request, full_feature_names)


def entity_input(entity_df: Any, request: FeatureRequest, start_date: datetime | None,
                 end_date: datetime | None) -> EntityInput:
    """Normalize what the user passed: pandas -> Arrow; no frame -> a SpineRange with defaults."""
    if entity_df is not None:
        if start_date is not None or end_date is not None:
            raise InputError("pass either entity_df or start_date/end_date, not both")
        if isinstance(entity_df, str):
            return entity_df
        if type(entity_df).__module__.startswith("pyspark."):
            return entity_df  # a Spark DataFrame, for the Spark engine
        if isinstance(entity_df, pa.Table):
            return parse_string_timestamps(entity_df)
        if isinstance(entity_df, pa.RecordBatch):
            return parse_string_timestamps(pa.Table.from_batches([entity_df]))
        import pandas as pd

        if isinstance(entity_df, pd.DataFrame):
            return parse_string_timestamps(pa.Table.from_pandas(entity_df, preserve_index=False))
        raise InputError(f"entity_df must be a pandas DataFrame, a pyarrow Table, an SQL query string "
                         f"or (with the spark engine) a Spark DataFrame, "
                         f"got {type(entity_df).__name__}")
    if request.request_columns:
        raise InputError(f"on-demand views need request columns {request.request_columns}, which only an "
                         "entity_df can supply; pass entity_df")
    end = as_utc(end_date) if end_date is not None else datetime.now(UTC)
    if start_date is None:
        ttls = [vr.view.ttl for vr in request.views]
        if not ttls or min(ttls).total_seconds() == 0:
            raise InputError("start_date is required without entity_df when a view has no ttl")
        start = end - max(ttls)
    else:
        start = as_utc(start_date)
    if start > end:
        raise InputError(f"start_date {start.isoformat()} is after end_date {end.isoformat()}")
    return SpineRange(start, end)


def parse_string_timestamps(entity: pa.Table) -> pa.Table:
    """An `event_timestamp` column of text (ISO 8601, as Feast accepts) as timestamp[us, UTC]; text
    without a zone is UTC. A value that is not a time is an InputError naming it."""
    if TIMESTAMP_COLUMN not in entity.column_names:
        return entity
    column = entity.column(TIMESTAMP_COLUMN)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return entity
    import pandas as pd

    try:
        parsed = pd.to_datetime(column.to_pandas(), utc=True, format="ISO8601")
    except (ValueError, TypeError) as e:
        raise InputError(f"entity frame column '{TIMESTAMP_COLUMN}' holds text that is not an ISO 8601 time: "
                         f"{e}") from None
    times = pa.array(parsed, pa.timestamp("ns", tz="UTC")).cast(pa.timestamp("us", tz="UTC"))
    return entity.set_column(entity.column_names.index(TIMESTAMP_COLUMN), TIMESTAMP_COLUMN, times)
