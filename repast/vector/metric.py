"""The distance metrics a vector field declares, by their canonical names (and Feast's aliases)."""

from __future__ import annotations

import enum

from repast.errors import DefinitionError


class Metric(enum.StrEnum):
    L2 = "L2"
    COSINE = "COSINE"
    INNER_PRODUCT = "INNER_PRODUCT"


_ALIASES = {"L2": Metric.L2, "EUCLIDEAN": Metric.L2, "COSINE": Metric.COSINE,
            "INNER_PRODUCT": Metric.INNER_PRODUCT, "IP": Metric.INNER_PRODUCT, "DOT": Metric.INNER_PRODUCT}


def parse_metric(name: str | None, what: str) -> Metric:
    """A Metric from its name in any case (also IP, DOT, EUCLIDEAN); None is L2."""
    if name is None or name == "":
        return Metric.L2
    metric = _ALIASES.get(str(name).upper())
    if metric is None:
        raise DefinitionError(f"{what}: vector_search_metric {name!r} is not one of L2, COSINE, INNER_PRODUCT")
    return metric
