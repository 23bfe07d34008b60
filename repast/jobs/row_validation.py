"""`FeatureView(enable_validation=True)`: rows pushed or materialized are checked against the
view's schema before anything is written, instead of being coerced or skipped.

Without validation, the stores skip rows without a join key or event time and the engines cast
source columns to the declared types. With it, such rows and a source column whose type cannot
hold the declared type (a float column for an Int64 feature, text for a Float32) are an
InputError naming the view and the column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from repast.errors import InputError
from repast.types import source_column_holds

if TYPE_CHECKING:
    from repast.definitions import FeatureView

EVENT_TS = "event_timestamp"


def check_source_types(view: FeatureView, schema: pa.Schema) -> None:
    """Each declared feature's source column exists and its type can hold the declared type."""
    source = view.batch_source
    for f in view.features:
        column = source.source_column(f.name)
        if column not in schema.names:
            raise InputError(f"feature view '{view.name}' (enable_validation): source '{source.name}' has no "
                             f"column '{column}' for feature '{f.name}'")
        actual = schema.field(column).type
        if not source_column_holds(f.dtype, actual):
            raise InputError(f"feature view '{view.name}' (enable_validation): column '{column}' of source "
                             f"'{source.name}' is {actual}, which does not hold {f.dtype} values")


def check_rows(view: FeatureView, rows: pa.Table | pa.RecordBatch, what: str) -> None:
    """Rows in the engine column contract: none without a join key or an event time."""
    for column in [*view.join_keys, EVENT_TS]:
        if column in rows.schema.names:
            nulls = pc.sum(pc.is_null(rows.column(column))).as_py() or 0
            if nulls:
                raise InputError(f"{what}: feature view '{view.name}' (enable_validation): {nulls} row(s) have "
                                 f"no '{column}'")
