"""The API reference: every public name documented, `make docs-build` builds it with no broken reference
(issue 27)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import repast
import repast.types
from repast import FeatureStore

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = (repast, repast.types)


def undocumented_methods(cls: type) -> list[str]:
    members = inspect.getmembers(cls, lambda o: inspect.isfunction(o) or isinstance(o, property))
    return [name for name, member in members if not name.startswith("_") and not (member.__doc__ or "").strip()]


def test_every_public_feature_store_method_has_a_docstring() -> None:
    assert not undocumented_methods(FeatureStore)


@pytest.mark.parametrize("module", DOCUMENTED, ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module: object) -> None:
    doc = pytest.importorskip("pdoc.doc", reason="pdoc (the docs extra) builds the reference")
    members = doc.Module(module).members
    missing = [name for name, member in members.items() if not member.docstring.strip()]
    assert not missing
    if module is repast:
        store = members["FeatureStore"].members
        assert not [name for name, member in store.items() if not name.startswith("_") and not member.docstring.strip()]


def test_star_import_of_types_gives_the_types_not_module_internals() -> None:
    names: dict[str, object] = {}
    exec("from repast.types import *", names)
    assert {"Int64", "Array", "ValueType", "PrimitiveFeastType"} <= set(names)
    assert not {"annotations", "dataclass", "DefinitionError", "pa"} & set(names)


def test_make_docs_builds_the_reference_and_every_reference_resolves(tmp_path: Path) -> None:
    pytest.importorskip("pdoc", reason="pdoc (the docs extra) builds the reference")
    result = subprocess.run(["make", "-C", str(ROOT), "docs-build", f"BIN={Path(sys.executable).parent}",
                             f"DOCS_DIR={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    pages = [tmp_path / "repast.html", tmp_path / "repast" / "types.html"]
    public = {name for module in DOCUMENTED for name in module.__all__} | {"repast"}
    broken: list[str] = []
    for page in pages:
        html = re.sub(r"<a [^>]*><code>[^<]*</code></a>", "", page.read_text())  # references pdoc linked
        for code in re.findall(r"<code>([^<]+)</code>", html):
            dotted = re.fullmatch(r"[A-Za-z_]\w*(\.\w+)+", code)
            if dotted and code.split(".")[0] in public:
                broken.append(f"{page.name}: `{code}`")
    assert not broken, "references the reference cannot resolve: " + ", ".join(sorted(set(broken)))
