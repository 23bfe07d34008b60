"""Sources rebuilt from the registry's JSON: the class of each `type` is the plugin table's
SOURCE entry, so a new kind of source is one module and one line in the table."""

from __future__ import annotations

from typing import Any

from repast.definitions.sources import DataSource
from repast.errors import DefinitionError
from repast.plugins.table import SOURCE, plugin_class


def source_from_dict(d: dict[str, Any]) -> DataSource:
    """Rebuild a source from `to_dict()` output (registry JSON); a push source's batch source first."""
    kind = d.get("type")
    try:
        source_class = plugin_class(SOURCE, str(kind), DataSource)
    except KeyError:
        raise DefinitionError(f"unknown data source type '{kind}' in registry") from None
    if isinstance(d.get("batch_source"), dict):
        d = {**d, "batch_source": source_from_dict(d["batch_source"])}
    return source_class.from_dict(d)
