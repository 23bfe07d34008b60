"""Validate a complete set of definitions before anything is written.

Every error names the file (when known), the object and the field. Source schemas are read
through the configured offline engine, so a source that engine cannot read fails here too.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from repast.definitions import FeatureView, Field, KafkaSource, OnDemandFeatureView, RepoContents, StreamFeatureView
from repast.definitions.registry_objects import KIND_LABELS
from repast.errors import DefinitionError, RepastError
from repast.offline.base import OfflineEngine
from repast.types import from_arrow, source_column_holds


def validate(contents: RepoContents, engine: OfflineEngine | None,
             origin: dict[tuple[str, str], str] | None = None) -> None:
    """Check references and schemas; bind entities and infer missing schemas/timestamp fields."""
    origin = origin or {}

    def where(kind: str, name: str) -> str:
        file = origin.get((kind, name))
        return f"{file}: {KIND_LABELS[kind]} '{name}'" if file else f"{KIND_LABELS[kind]} '{name}'"

    clash = set(contents.feature_views) & set(contents.on_demand_feature_views)
    if clash:
        name = sorted(clash)[0]
        raise DefinitionError(f"{where('feature_view', name)}: an on-demand feature view has the same name")
    for fv in contents.feature_views.values():
        _check_view(fv, contents, engine, where("feature_view", fv.name))
    for odfv in contents.on_demand_feature_views.values():
        _check_odfv(odfv, contents, where("on_demand_feature_view", odfv.name))
    for fs in contents.feature_services.values():
        for p in fs.projections:
            _check_projection(p.view_name, p.features, contents, where("feature_service", fs.name))


def _check_view(fv: FeatureView, contents: RepoContents, engine: OfflineEngine | None, at: str) -> None:
    for ent in fv.entities:
        if ent not in contents.entities:
            raise DefinitionError(f"{at}: entities: entity '{ent}' is not defined; "
                                  f"defined entities: {sorted(contents.entities)}")
    fv.resolve_entities(contents.entities)
    if engine is None or not fv.offline and not fv.schema:
        return
    source = fv.batch_source
    if isinstance(fv.source, KafkaSource):
        # The messages are the view's rows (the batch source may have no files before the first
        # events arrive); a udf makes rows of its own, which the consumer checks batch by batch.
        if isinstance(fv, StreamFeatureView) and fv.has_udf:
            if not fv.schema:
                raise DefinitionError(f"{at}: a stream feature view with a udf needs an explicit schema")
            return
        schema = fv.source.message_format.message_schema()
    else:
        try:
            schema = engine.schema_for_apply(source)
            if schema is None and not fv.schema:  # nothing declared: the source's columns are the schema
                schema = engine.source_schema(source)
        except RepastError as e:
            raise DefinitionError(f"{at}: source: {e}") from None
        if schema is None:  # checked when the engine first reads the source
            return
    _check_timestamps(fv, schema, at)
    if not fv.schema:
        fv.schema = _infer_schema(fv, schema)
        fv.projection.features = fv.feature_names()
    try:
        fv.check_aggregations()
    except DefinitionError as e:
        raise DefinitionError(f"{at}: {e}") from None
    for key in fv.join_keys:
        if source.source_column(key) not in schema.names:
            raise DefinitionError(f"{at}: join key '{key}' is not a column of source '{source.name}' "
                                  f"(columns: {schema.names})")
    _declare_key_types(fv, schema)
    for f in fv.schema:
        col = source.source_column(f.name)
        if col not in schema.names:
            raise DefinitionError(f"{at}: schema field '{f.name}' is not a column of source "
                                  f"'{source.name}' (columns: {schema.names})")
        if not source_column_holds(f.dtype, schema.field(col).type):
            raise DefinitionError(f"{at}: schema field '{f.name}' is declared {f.dtype} but column "
                                  f"'{col}' of source '{source.name}' is {schema.field(col).type}")


def _declare_key_types(fv: FeatureView, schema: pa.Schema) -> None:
    """Give each join key whose type neither the schema nor the entity declares (most Feast repos)
    the type of its source column, as a schema field, as Feast does at apply: reads can then refuse
    a key of the wrong type (a string id for an integer key) instead of answering NOT_FOUND."""
    from repast.online.keys import key_types

    for key, dtype in zip(fv.join_keys, key_types(fv), strict=True):
        inferred = from_arrow(schema.field(fv.batch_source.source_column(key)).type)
        if dtype is None and inferred is not None and inferred.name in ("Int32", "Int64", "String", "Bytes"):
            fv.schema.append(Field(name=key, dtype=inferred))


def _check_timestamps(fv: FeatureView, schema: pa.Schema, at: str) -> None:
    source = fv.batch_source
    if not source.timestamp_field:
        candidates = [f.name for f in schema if pa.types.is_timestamp(f.type)
                      and f.name != source.created_timestamp_column]
        if len(candidates) != 1:
            raise DefinitionError(f"{at}: source '{source.name}' has no timestamp_field and it cannot be "
                                  f"inferred (timestamp columns: {candidates}); set timestamp_field=")
        source.timestamp_field = candidates[0]
        if fv.source is not source:
            fv.source.timestamp_field = candidates[0]
    for label, col in (("timestamp_field", source.timestamp_field),
                       ("created_timestamp_column", source.created_timestamp_column)):
        if col and col not in schema.names:
            raise DefinitionError(f"{at}: source '{source.name}' {label} '{col}' is not a column "
                                  f"(columns: {schema.names})")
        if col and not (pa.types.is_timestamp(schema.field(col).type) or pa.types.is_date(schema.field(col).type)):
            raise DefinitionError(f"{at}: source '{source.name}' {label} '{col}' has type "
                                  f"{schema.field(col).type}, expected a timestamp")


def _infer_schema(fv: FeatureView, schema: pa.Schema) -> list[Field]:
    source = fv.batch_source
    skip = {source.timestamp_field, source.created_timestamp_column,
            *(source.source_column(k) for k in fv.join_keys)}
    fields = []
    for f in schema:
        dtype = from_arrow(f.type)
        if f.name not in skip and dtype is not None:
            fields.append(Field(name=source.field_mapping.get(f.name, f.name), dtype=dtype))
    return fields


def _check_odfv(odfv: OnDemandFeatureView, contents: RepoContents, at: str) -> None:
    _check_udf_signature(odfv, at)
    for p in odfv.source_views:
        if p.view_name not in contents.feature_views:
            raise DefinitionError(f"{at}: sources: feature view '{p.view_name}' is not defined")
        _check_projection(p.view_name, p.features, contents, at)


def _check_udf_signature(odfv: OnDemandFeatureView, at: str) -> None:
    """The function is called with one argument (a DataFrame, or a dict of lists in python mode):
    refuse at apply a function that cannot take it, rather than failing every read later. A view
    read from the registry keeps its stored function unread: deserializing it runs code, which only
    a process that runs the view may do (docs/security.md)."""
    import inspect

    if odfv.function_is_stored:
        return

    udf = odfv.udf
    if not callable(udf):
        raise DefinitionError(f"{at}: the transformation is a {type(udf).__name__}, not a function")
    try:
        signature = inspect.signature(udf)
    except (TypeError, ValueError):
        return  # a builtin or C function: nothing to check
    try:
        signature.bind(object())
    except TypeError:
        given = "a DataFrame" if odfv.mode == "pandas" else "a dict of lists"
        name = getattr(udf, "__name__", "the function")
        raise DefinitionError(f"{at}: function {name}{signature} must take exactly one argument ({given} of "
                              f"the input features and request data, mode={odfv.mode!r})") from None


def _check_projection(view_name: str, features: list[str], contents: RepoContents, at: str) -> None:
    view: Any = contents.feature_views.get(view_name) or contents.on_demand_feature_views.get(view_name)
    if view is None:
        raise DefinitionError(f"{at}: features: view '{view_name}' is not defined")
    unknown = [f for f in features if f not in view.feature_names()]
    if unknown:
        raise DefinitionError(f"{at}: features: view '{view_name}' has no feature {unknown[0]!r}; "
                              f"it has {view.feature_names()}")
