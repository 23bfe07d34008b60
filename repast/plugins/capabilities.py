"""What a backend can do, declared as data: callers ask before they call, and a backend never
meets an interface by raising from the methods it cannot do.

Every backend class carries one frozen `Capabilities` record (`capabilities`, a class attribute);
a backend that declares none has the defaults. `require_write` is the one place that turns a
missing ability into an error, with the backend's own explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

from repast.errors import ConfigError


@dataclass(frozen=True)
class Capabilities:
    """Abilities beyond the interface every backend of a kind has."""

    # Registry stores: apply definitions, record watermarks and runs. (An online store that cannot
    # write is an OnlineReader without writer methods; it declares write=False for the message.)
    write: bool = True
    # Why `write` is False: completes "cannot {action}"; may name `{backend.<attribute>}`.
    read_only_reason: str = ""
    # Offline engines: the latest rows are written to the online store from where they are
    # computed (Spark executors), instead of streaming through the driver.
    write_online_in_place: bool = False
    # Online stores: a read waits for a thread of the store's own (its bound on a frozen server),
    # so the feature server waits for it on one of its store threads, never on its event loop.
    reads_on_own_thread: bool = False
    # Online stores: keeps aggregation tiles (repast.online.base.TileStorage): materialization and
    # push write them, reads merge them. Without it, `tiles_reason` says why.
    tiles: bool = False
    tiles_reason: str = ""


DEFAULT = Capabilities()


def capabilities_of(backend: object) -> Capabilities:
    declared = getattr(backend, "capabilities", DEFAULT)
    return declared if isinstance(declared, Capabilities) else DEFAULT


def write_refused(backend: object, action: str) -> ConfigError:
    """The error for `action` on a backend that cannot write, in the backend's own words."""
    reason = capabilities_of(backend).read_only_reason
    if reason:
        return ConfigError(reason.format(backend=backend, action=action))
    return ConfigError(f"{type(backend).__name__} cannot {action}: it is read-only")


def require_write(backend: object, action: str) -> None:
    """Raise ConfigError naming `action` and the backend's reason unless it can write."""
    if not capabilities_of(backend).write:
        raise write_refused(backend, action)
