"""docs/feast.md's "Not supported" table lists nothing repast has (issue 27)."""

from __future__ import annotations

import re
from pathlib import Path

import repast
from repast import FeatureStore
from repast.config.feast_surface import REFUSED, parts

FEAST_MD = Path(__file__).resolve().parents[2] / "docs" / "feast.md"
# A name on its own in a cell (not qualified: "`ValueType` numbers", "the SDK's `get_online_features`").
BARE_NAME = re.compile(r"(?:^|, |\(|and )`(\w+)(\(_v2\))?`(?=\s*(?:,|\)|$| and\b))")


def not_supported_names() -> list[str]:
    section = FEAST_MD.read_text().split("## Not supported", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| Feast name"):
            for name, v2 in BARE_NAME.findall(line.split("|")[1].strip()):
                names += [name, name + "_v2"] if v2 else [name]
    return names


def test_not_supported_table_lists_no_name_repast_provides() -> None:
    refused = {name for name, part in parts("method", "FeatureStore").items() if part.support == REFUSED}
    provided = [name for name in not_supported_names()
                if hasattr(repast, name) or (hasattr(FeatureStore, name) and name not in refused)]
    assert not provided, f"docs/feast.md lists as not supported what repast provides: {provided}"


def test_the_table_is_found() -> None:
    assert "KinesisSource" in not_supported_names()
