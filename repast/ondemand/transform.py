"""On-demand feature views run on Arrow tables: after the offline join, and on online reads.

The input table holds every source feature as `{projection}__{feature}` (the projection name
of the on-demand view's source, as `ViewRequest.output_name(feature, True)` names it) and the
request-source columns. Each view's function sees those under both the long and the short
feature name, as Feast's do.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from repast.definitions.feature_refs import OnDemandRequest
from repast.errors import DefinitionError


def apply_on_demand(table: pa.Table, on_demand: list[OnDemandRequest], full_feature_names: bool) -> pa.Table:
    """`table` with each requested on-demand feature appended, typed as declared.

    Columns are named `request.output_name(feature, full_feature_names)`. pandas-mode functions
    get a DataFrame, python-mode ones a dict of column -> list. A function that returns the
    wrong columns or row count raises DefinitionError naming the view.
    """
    for odr in on_demand:
        inputs = _inputs(table, odr)
        if odr.view.mode == "pandas":
            result = _columns_from_pandas(odr, odr.view.transform(inputs.to_pandas()), table.num_rows)
        else:
            result = _columns_from_python(odr, odr.view.transform(inputs.to_pydict()), table.num_rows)
        for feature, column in result.items():
            table = table.append_column(odr.output_name(feature, full_feature_names), column)
    return table


def _inputs(table: pa.Table, odr: OnDemandRequest) -> pa.Table:
    """The table plus short-name aliases of the view's source features."""
    names, columns = list(table.column_names), list(table.columns)
    for projection in odr.view.source_views:
        for feature in projection.features:
            long_name = f"{projection.name}__{feature}"
            if long_name not in table.column_names:
                raise DefinitionError(f"on-demand view '{odr.name}' needs '{long_name}', which was not read")
            if feature not in names:
                names.append(feature)
                columns.append(table.column(long_name))
    return pa.Table.from_arrays(columns, names=names)


def _declared(odr: OnDemandRequest) -> dict[str, pa.DataType]:
    return {f.name: f.dtype.to_arrow() for f in odr.view.schema}


def _check(odr: OnDemandRequest, names: Any, length: int, rows: int) -> None:
    missing = [f for f in odr.features if f not in names]
    if missing:
        raise DefinitionError(f"on-demand view '{odr.name}' returned no column(s) {missing}")
    if length != rows:
        raise DefinitionError(f"on-demand view '{odr.name}' returned {length} rows for {rows} input rows")


def _columns_from_pandas(odr: OnDemandRequest, frame: Any, rows: int) -> dict[str, pa.Array]:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DefinitionError(f"on-demand view '{odr.name}' (pandas mode) must return a DataFrame, "
                              f"got {type(frame).__name__}")
    _check(odr, frame.columns, len(frame), rows)
    types = _declared(odr)
    return {f: pa.array(frame[f], from_pandas=True).cast(types[f], safe=False) for f in odr.features}


def _columns_from_python(odr: OnDemandRequest, result: Any, rows: int) -> dict[str, pa.Array]:
    if not isinstance(result, dict):
        raise DefinitionError(f"on-demand view '{odr.name}' (python mode) must return a dict of lists, "
                              f"got {type(result).__name__}")
    lengths = {len(result[f]) for f in odr.features if f in result}
    _check(odr, result, lengths.pop() if len(lengths) == 1 else -1, rows)
    types = _declared(odr)
    return {f: pa.array(list(result[f]), type=types[f]) for f in odr.features}


def on_demand_values(odr: OnDemandRequest, inputs: dict[str, list[Any]], rows: int) -> dict[str, list[Any]]:
    """One on-demand view on plain columns (the online path): the same function call, checks and
    declared-type casts as `apply_on_demand`, so serving computes what training computed.

    `inputs` holds each source feature under its short and its `{projection}__{feature}` name,
    the join keys and the request columns.
    """
    if odr.view.mode == "pandas":
        import pandas as pd

        result = _columns_from_pandas(odr, odr.view.transform(pd.DataFrame(inputs)), rows)
    else:
        result = _columns_from_python(odr, odr.view.transform(inputs), rows)
    return {f: column.to_pylist() for f, column in result.items()}
