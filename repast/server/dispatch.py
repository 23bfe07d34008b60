"""Where a store call runs: inline on the event loop while the store is fast, else on a thread.

A one-entity read from SQLite or a nearby Redis takes tens of microseconds; a hop to the thread
pool costs more than that (measured: p50 0.27 ms threaded vs 0.17 ms inline, and 60% more
requests/s). But a store that hangs (a host gone without a reset, a frozen server) must not
stall the event loop and with it every other request, /health included. So calls run inline until
one is slow (or fails slowly, by a timeout); then they run on threads for a cool-off period,
after which inline is tried again. A store whose reads wait for threads of its own (PostgreSQL,
whose client has no read timeout) is always called on a thread: inline it would save no hop and
would hold the loop for its whole bound when frozen. A threaded call is answered within
`deadline_seconds`: when the store has not answered by then the caller gets StoreUnavailable (a
503) and the thread is left to finish on its own, so a frozen store cannot hold requests for
longer than the deadline. Vector searches use calls of their own with no deadline (an exact scan
may take long on a busy host, and the store bounds its own waits).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from repast.errors import StoreUnavailable
from repast.online.base import waits_bounded_by_caller

T = TypeVar("T")

# Threads for store calls: bounded, so a frozen store ties up at most this many; calls beyond
# them wait in the queue and are refused at the deadline like the rest.
STORE_THREADS = 16


class StoreCalls:
    # Slow means a stall (a store waiting on the network), not a busy host: a loaded machine can
    # preempt a fast call for tens of milliseconds, and threads cost every request a GIL handoff.
    def __init__(self, slow_seconds: float = 0.25, cool_off_seconds: float = 5.0,
                 deadline_seconds: float | None = 1.0, always_threaded: bool = False) -> None:
        self.always_threaded = always_threaded  # a store whose reads hop to threads of its own anyway
        self.slow_seconds = slow_seconds
        self.cool_off_seconds = cool_off_seconds
        self.deadline_seconds = deadline_seconds  # None: the caller waits for the store's own bounds
        self.threaded_until = 0.0
        self._warm = False  # the first call builds plans and opens connections: slow, but not a stall
        self._executor: ThreadPoolExecutor | None = None

    @property
    def inline(self) -> bool:
        return not self.always_threaded and time.monotonic() >= self.threaded_until

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.inline:
            return await self.threaded(fn, *args)
        return self.call_inline(fn, *args)

    def call_inline(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the caller's thread (the event loop), watching for a stall."""
        start = time.monotonic()
        try:
            result = fn(*args)
        except StoreUnavailable:
            # A store that refuses at once (down) costs the loop nothing; one that failed by a
            # timeout (frozen, unreachable host) would stall it on every call.
            failed = time.monotonic()
            if failed - start > self.slow_seconds:
                self.threaded_until = failed + self.cool_off_seconds
            raise
        end = time.monotonic()
        if end - start > self.slow_seconds and self._warm:
            self.threaded_until = end + self.cool_off_seconds
        self._warm = True
        return result

    async def threaded(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on a store thread; StoreUnavailable when it has not returned by the deadline."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="repast-store")
        if self.deadline_seconds is None:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        future = asyncio.get_running_loop().run_in_executor(self._executor, _bounded_here, fn, *args)
        try:
            return await asyncio.wait_for(future, self.deadline_seconds)
        except TimeoutError:
            raise StoreUnavailable(f"the stores did not answer within {self.deadline_seconds:g} s "
                                   "(feature_server.read_deadline_seconds)") from None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _bounded_here(fn: Callable[..., T], *args: Any) -> T:
    """`fn` on a store thread, whose caller stops waiting at its deadline (threaded)."""
    with waits_bounded_by_caller():
        return fn(*args)
