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
    # Online stores with vector search: an approximate index answers searches of a vector field
    # (`exact=True` still scans); the contract's index tests (recall, updates, deletes, ttl) run on them.
    approximate_vector_index: bool = False
    # Online stores: keeps aggregation tiles (repast.online.base.TileStorage): materialization and
    # push write them, reads merge them. Without it, `tiles_reason` says why.
    tiles: bool = False
    tiles_reason: str = ""
    # Online stores: a read of aggregated features comes back merged (a feature server's client,
    # whose server merges the tiles at its own now), so the reader asks it as for any feature.
    merges_aggregations: bool = False
    # Online stores with tiles: a version token per entity key that changes with every write to
    # the key's tiles (repast.online.base.TileVersionReader), so a reader may keep merged values
    # and check them with one cheap look-up instead of reading the window's tiles again.
    tile_versions: bool = False


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
