"""Store calls run inline while fast, and on the thread pool for a while after a slow or failed one."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from repast.errors import StoreUnavailable
from repast.server.dispatch import StoreCalls


def _thread_of_call(calls: StoreCalls, sleep: float = 0.0) -> bool:
    """True when the call ran on the event loop's own thread."""
    def fn() -> int:
        time.sleep(sleep)
        return threading.get_ident()

    async def go() -> bool:
        return await calls.call(fn) == threading.get_ident()
    return asyncio.run(go())


def test_fast_calls_run_inline() -> None:
    calls = StoreCalls(slow_seconds=1.0)
    assert _thread_of_call(calls) and _thread_of_call(calls)


def test_a_slow_call_moves_later_calls_to_threads_until_the_cool_off_ends() -> None:
    calls = StoreCalls(slow_seconds=0.01, cool_off_seconds=0.2)
    assert _thread_of_call(calls)
    assert _thread_of_call(calls, sleep=0.02)
    assert not _thread_of_call(calls)
    time.sleep(0.25)
    assert _thread_of_call(calls)


def test_a_slow_first_call_warming_up_keeps_calls_inline() -> None:
    calls = StoreCalls(slow_seconds=0.01, cool_off_seconds=60)
    assert _thread_of_call(calls, sleep=0.02)
    assert calls.inline


def test_a_store_failing_by_a_timeout_moves_calls_to_threads() -> None:
    calls = StoreCalls(slow_seconds=0.01, cool_off_seconds=60)

    def frozen() -> None:
        time.sleep(0.02)
        raise StoreUnavailable("timed out")

    with pytest.raises(StoreUnavailable):
        asyncio.run(calls.call(frozen))
    assert not calls.inline


def test_a_store_refusing_at_once_keeps_calls_inline() -> None:
    calls = StoreCalls(slow_seconds=1.0, cool_off_seconds=60)

    def down() -> None:
        raise StoreUnavailable("connection refused")

    with pytest.raises(StoreUnavailable):
        asyncio.run(calls.call(down))
    assert calls.inline


def test_a_threaded_call_past_the_deadline_is_store_unavailable() -> None:
    calls = StoreCalls(deadline_seconds=0.05)

    with pytest.raises(StoreUnavailable, match="did not answer within"):
        asyncio.run(calls.threaded(time.sleep, 1.0))


def test_a_store_reading_on_threads_of_its_own_is_always_called_on_a_thread() -> None:
    calls = StoreCalls(always_threaded=True)
    assert not calls.inline
    assert not _thread_of_call(calls)



def test_without_a_deadline_a_threaded_call_is_awaited_to_its_end() -> None:
    calls = StoreCalls(deadline_seconds=None, always_threaded=True)
    assert asyncio.run(calls.call(lambda: time.sleep(0.05) or 7)) == 7
