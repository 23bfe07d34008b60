"""How much one get-online-features request may ask for, checked before any store read.

The body size limit (feature_server.max_body_bytes) bounds what is parsed; these bound what is
read and answered: 10 MB of ids once asked for 1.4 million entities and got a 222 MB answer, and
four such requests in parallel took a worker from 156 MB to 1.5 GB. A request over a limit is
refused with 413 and a detail naming the limit and its key, so a client knows to split it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from repast.server.errors import ApiError

if TYPE_CHECKING:
    from repast.config.repo_config import FeatureServerConfig


@dataclass(frozen=True)
class HeaderBounds:
    """How long a request's headers may take to arrive and how large they may be (enforced by
    repast.server.protocol; feature_server.header_timeout_seconds and max_header_bytes)."""

    timeout_seconds: float = 10.0
    max_bytes: int = 16384

    @classmethod
    def from_config(cls, config: FeatureServerConfig) -> HeaderBounds:
        return cls(config.header_timeout_seconds, config.max_header_bytes)


@dataclass(frozen=True)
class RequestLimits:
    max_entity_rows: int
    max_feature_values: int

    @classmethod
    def from_config(cls, config: FeatureServerConfig) -> RequestLimits:
        return cls(config.max_entity_rows, config.max_feature_values)

    def check_rows(self, rows: int) -> None:
        """413 when `rows` entity rows are more than `max_entity_rows`."""
        if rows > self.max_entity_rows:
            raise ApiError(413, "too_many_entity_rows",
                           f"the request asks for {rows} entity rows; the limit is {self.max_entity_rows} "
                           "(feature_server.max_entity_rows): split it into smaller requests")

    def check_values(self, rows: int, features: int) -> None:
        """413 when features x rows is over `max_feature_values`."""
        if rows * features > self.max_feature_values:
            raise ApiError(413, "too_many_feature_values",
                           f"the request asks for {features} features x {rows} entity rows = {rows * features} "
                           f"values; the limit is {self.max_feature_values} (feature_server.max_feature_values): "
                           "split it into smaller requests")
