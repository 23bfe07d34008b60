"""A sealed spool of the served-feature log as the log's Arrow table, parsed in C++ (DuckDB's JSON
reader) and laid out with Arrow compute: no Python per served row (the per-line orjson parse it
replaces cost ~65 us per row; the formats are in repast/jobs/served_log.py).

DuckDB reads every line's `i`, `t`, `q` and `r` (the answer's feature names, and per output its
`values` as JSON text, `statuses` and `event_timestamps`), then one aggregate finds each column's
JSON type over the whole spool (so a column null in the first rows still gets its type), and each
output's values are read as that type. The per-response lists are flattened into rows with Arrow
(`list_flatten`, the request id and time taken by `list_parent_indices`). Types follow what
`pa.array` infers from the same values (integers int64, numbers mixing integers and decimals
float64, text, bool, all-null, lists of those); a spool with anything else (a column mixing text
and numbers, objects, integers beyond int64) or with a line that is not a served record returns
None, and the caller converts it the Python way, line by line (`served_log.served_tables`).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

UTC_US = pa.timestamp("us", tz="UTC")
_EPOCH_ISO = "1970-01-01T00:00:00Z"  # the event time an answer gives a value without one
_ANSWER = ('STRUCT(metadata STRUCT(feature_names VARCHAR[]), '
           'results STRUCT("values" JSON, statuses VARCHAR[], event_timestamps VARCHAR[])[])')
_SCALARS = {"UBIGINT": "BIGINT", "BIGINT": "BIGINT", "HUGEINT": "BIGINT", "DOUBLE": "DOUBLE",
            "VARCHAR": "VARCHAR", "BOOLEAN": "BOOLEAN", "NULL": "NULL"}


class Unsupported(Exception):
    """The spool holds something the C++ path does not lay out as the Python path would."""


def spool_table(spool: str, id_prefix: str, complete_lines: int) -> pa.Table | None:
    """The log rows of the spool file `spool` (`complete_lines`: its newline-terminated lines; a
    torn last line is skipped); None when it needs the line-by-line conversion."""
    con = duckdb.connect()
    try:
        return _read(con, spool, id_prefix, complete_lines)
    except (Unsupported, duckdb.Error, pa.ArrowException):
        return None
    finally:
        con.close()


def _read(con: duckdb.DuckDBPyConnection, spool: str, id_prefix: str, complete_lines: int) -> pa.Table | None:
    con.execute("CREATE TEMP TABLE spool AS SELECT * FROM read_json(?, format='newline_delimited', "
                f"columns={{i: 'UBIGINT', t: 'BIGINT', q: 'JSON', r: '{_ANSWER}'}}, ignore_errors=true) "
                "WHERE i IS NOT NULL AND t IS NOT NULL AND q IS NOT NULL "
                "AND r.results IS NOT NULL", [spool])
    rows = _one(con, "SELECT count(*) FROM spool")[0]
    if rows != complete_lines:  # a line in the middle is not a served record: the Python way says which
        raise Unsupported(f"{complete_lines - rows} bad lines")
    if rows == 0:
        return None
    shapes = con.execute("SELECT json_keys(q), r.metadata.feature_names, min(i) FROM spool "
                         "GROUP BY ALL ORDER BY 3").fetchall()
    if len(shapes) == 1:
        return _shape_table(con, "TRUE", [], shapes[0][0], shapes[0][1], id_prefix, ordered=False)
    tables = [_shape_table(con, "json_keys(q) = ? AND r.metadata.feature_names = ?", [keys, names], keys, names,
                           id_prefix, ordered=True) for keys, names, _ in shapes]
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.take(pc.sort_indices(table, [("__i", "ascending")]))  # a stable sort: rows in served order
    return table.drop_columns(["__i"])


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    rows = con.execute(sql, params or []).fetchall()
    return tuple(rows[0])


def _shape_table(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], keys: list[str],
                 names: list[str], id_prefix: str, ordered: bool) -> pa.Table:
    """The rows of the responses of one shape (request columns `keys`, outputs `names`)."""
    if not names:
        raise Unsupported("an answer without outputs")
    request_only = [k for k in keys if k not in names]
    types = _one(con, "SELECT " + ", ".join(
        [f"json_group_structure(r.results[{k + 1}].values)" for k in range(len(names))] +
        ["json_group_structure(q)"]) + f" FROM spool WHERE {where}", params)
    requested = json.loads(types[-1])
    select = ["i", "t", "? || lower(lpad(to_hex(i), 16, '0')) AS id"]
    for n, key in enumerate(request_only):
        select.append(f"from_json(q->'$.{_quoted(key)}', '{_list_type(json.dumps(requested[key]))}') AS q{n}")
    for k, structure in enumerate(types[:-1]):
        result = f"r.results[{k + 1}]"
        select += [f"from_json({result}.values, '{_list_type(structure)}') AS v{k}",
                   f"{result}.statuses AS s{k}", f"{result}.event_timestamps AS e{k}"]
    served = con.sql(f"SELECT {', '.join(select)} FROM spool WHERE {where}",
                     params=[id_prefix, *params]).to_arrow_table()
    rows = pc.list_parent_indices(served.column("v0").combine_chunks())
    columns: dict[str, Any] = {
        "__request_id": served.column("id").take(rows).cast(pa.string()),
        "__log_timestamp": served.column("t").take(rows).cast(UTC_US)}
    for n, key in enumerate(request_only):
        columns[key] = _flat(served.column(f"q{n}"))
    for k, name in enumerate(names):
        columns[name] = _flat(served.column(f"v{k}"))
        if name not in keys:  # a join key gets no status or event time
            columns[f"{name}__status"] = _flat(served.column(f"s{k}")).cast(pa.string())
            columns[f"{name}__timestamp"] = event_times(_flat(served.column(f"e{k}")))
    if ordered:
        columns["__i"] = served.column("i").take(rows)
    return pa.table(columns)


def _quoted(key: str) -> str:
    return '"' + key.replace("'", "''").replace('"', '\\"') + '"'


def _list_type(structure: str) -> str:
    """The DuckDB structure reading a JSON array of one column's values as the type `pa.array`
    would give them; Unsupported for mixed or object values."""
    parsed = json.loads(structure)
    if not isinstance(parsed, list) or len(parsed) != 1:
        raise Unsupported(structure)
    return json.dumps([_element_type(parsed[0])]).replace("'", "''")


def _element_type(element: Any) -> Any:
    if isinstance(element, list) and len(element) == 1:
        return [_element_type(element[0])]
    if isinstance(element, str) and element in _SCALARS:
        return _SCALARS[element]
    raise Unsupported(str(element))


def _flat(column: pa.ChunkedArray) -> pa.Array:
    """One served row per list element; lists of lists become `pa.array`'s list<item: ...>."""
    values = pc.list_flatten(column.combine_chunks())
    return _plain(values)


def _plain(values: pa.Array) -> pa.Array:
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        inner = _plain(values.flatten())
        return pa.ListArray.from_arrays(values.offsets, inner, mask=values.is_null())
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        return values.cast(pa.string())
    return values


def event_times(text: pa.Array) -> pa.Array:
    """Event times as ISO text (the epoch means none) as timestamps."""
    text = pc.if_else(pc.equal(text, _EPOCH_ISO), pa.scalar(None, pa.string()), text)
    return text.cast(UTC_US)
