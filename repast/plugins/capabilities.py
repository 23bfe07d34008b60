"""What a backend can do, declared as data: callers ask before they call, and a backend never
meets an interface by raising from the methods it cannot do.

A backend class lists its abilities in `capabilities`; `require` is the one place that turns a
missing ability into an error, with the backend's own explanation (`read_only_reason`).
"""

from __future__ import annotations

import enum
from typing import Any

from repast.errors import ConfigError


class Capability(enum.StrEnum):
    """An ability a backend may have beyond reading."""

    WRITE = "write"  # create storage, write rows or definitions, record watermarks
    # An offline engine that writes the latest rows to the online store from where they are
    # computed (Spark executors), instead of streaming them through the driver.
    WRITE_ONLINE_IN_PLACE = "write_online_in_place"


def has(backend: Any, capability: Capability) -> bool:
    return capability in getattr(backend, "capabilities", frozenset())


def require(backend: Any, capability: Capability, action: str) -> None:
    """Raise ConfigError naming `action` and the backend's reason when it lacks `capability`."""
    if has(backend, capability):
        return
    reason = getattr(backend, "read_only_reason", None)
    raise ConfigError(reason(action) if callable(reason) else
                      f"{type(backend).__name__} cannot {action}: it does not support '{capability}'")
