"""One log line per kind of failure per interval; repeats are counted, not logged."""

from __future__ import annotations

import logging

import pytest

from repast.log_limit import FailureLog


def test_repeats_of_a_failure_within_the_interval_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    failures = FailureLog(logging.getLogger("test.failures"), interval_seconds=60)
    with caplog.at_level(logging.WARNING, "test.failures"):
        for _ in range(100):
            failures.report("redis down", "Redis cannot be reached", level=logging.WARNING)
    assert [r.getMessage() for r in caplog.records] == ["Redis cannot be reached"]


def test_each_kind_of_failure_gets_its_own_line(caplog: pytest.LogCaptureFixture) -> None:
    failures = FailureLog(logging.getLogger("test.failures"), interval_seconds=60)
    with caplog.at_level(logging.WARNING, "test.failures"):
        failures.report("redis", "Redis down")
        failures.report("registry", "registry down")
    assert len(caplog.records) == 2


def test_the_next_line_after_the_interval_counts_the_repeats(caplog: pytest.LogCaptureFixture) -> None:
    failures = FailureLog(logging.getLogger("test.failures"), interval_seconds=60)
    with caplog.at_level(logging.WARNING, "test.failures"):
        for _ in range(3):
            failures.report("redis", "Redis down")
        failures.interval = 0
        failures.report("redis", "Redis down")
    assert caplog.records[-1].getMessage() == "Redis down (2 more like this since the last such line, not logged)"
