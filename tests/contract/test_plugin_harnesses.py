"""Every backend in the plugin table runs its kind's contract suite: each variant the suite runs has
a harness, and a variant without one fails loudly instead of being set up as another backend."""

from __future__ import annotations

import pytest

from repast.plugins.table import OFFLINE, ONLINE, REGISTRY
from tests.contract.offline_harness import OFFLINE_HARNESSES
from tests.contract.plugins import harness_for, suite_variants
from tests.contract.test_online_store import ONLINE_HARNESSES
from tests.contract.test_registry import REGISTRY_HARNESSES

SUITES = {OFFLINE: OFFLINE_HARNESSES, ONLINE: ONLINE_HARNESSES, REGISTRY: REGISTRY_HARNESSES}


@pytest.mark.parametrize("kind", SUITES)
def test_every_variant_of_every_plugin_table_entry_has_a_harness(kind: str) -> None:
    assert suite_variants(kind) - set(SUITES[kind]) == set()


def test_a_variant_without_a_harness_is_refused_by_name() -> None:
    with pytest.raises(LookupError, match="no contract-suite harness for 'cassandra'"):
        harness_for(ONLINE_HARNESSES, "cassandra", "ONLINE_HARNESSES")
