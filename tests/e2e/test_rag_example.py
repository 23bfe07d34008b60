"""examples/rag, run as a user would: ingest local files, ask through the SDK, push a file, ask over HTTP."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.e2e.test_server_harness import ServerProcess

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "examples" / "rag"
READ = "rag-read-token"


def load_example(directory: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("rag_example", directory / "rag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, Path]]:
    directory = tmp_path_factory.mktemp("rag") / "rag"
    shutil.copytree(EXAMPLE, directory)
    rag = load_example(directory)
    repo = directory / "feature_repo"
    assert rag.ingest(repo, directory / "corpus") == 15
    yield rag, repo


def test_a_question_finds_the_chunk_that_answers_it(example: tuple[ModuleType, Path]) -> None:
    rag, repo = example
    hits = rag.ask(repo, "how long should pasta cook?")
    assert hits[0]["source"] == "pasta.txt"
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)


def test_a_pushed_file_is_searchable_at_once(example: tuple[ModuleType, Path], tmp_path: Path) -> None:
    rag, repo = example
    note = tmp_path / "chess.txt"
    note.write_text("In chess the knight moves in an L shape and can jump over other pieces.")
    assert rag.add(repo, note) == 1
    assert rag.ask(repo, "how does the knight move in chess?")[0]["source"] == "chess.txt"


def test_the_feature_server_answers_as_the_sdk_with_a_read_token(example: tuple[ModuleType, Path]) -> None:
    rag, repo = example
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text() + f"feature_server:\n  auth: {{type: token, read_tokens: [{READ}], "
                      "write_tokens: [rag-write-token]}\n")
    question = "what does recall measure for an approximate index?"
    with ServerProcess(repo) as server:
        over_http = rag.ask(repo, question, url=server.url, token=READ)
        feast_body = {"features": ["chunks:text"], "query": rag.embed([question])[0].tolist(), "top_k": 2,
                      "api_version": 2}
        raw = httpx.post(server.url + "/retrieve-online-documents", json=feast_body,
                         headers={"Authorization": f"Bearer {READ}"}, timeout=30)
        bad = httpx.post(server.url + "/retrieve-online-documents", json={"features": ["chunks:text"], "top_k": 2},
                         headers={"Authorization": f"Bearer {READ}"}, timeout=30)
        exact = httpx.post(server.url + "/retrieve-online-documents", json={**feast_body, "exact": True},
                           headers={"Authorization": f"Bearer {READ}"}, timeout=30)
        not_bool = httpx.post(server.url + "/retrieve-online-documents", json={**feast_body, "exact": "yes"},
                              headers={"Authorization": f"Bearer {READ}"}, timeout=30)
    assert over_http == rag.ask(repo, question)
    assert over_http[0]["source"] == "vector_search.txt"
    assert raw.status_code == 200, raw.text
    assert raw.json()["metadata"]["feature_names"] == ["chunk_id", "text", "distance"]
    assert bad.status_code == 422
    assert "query" in bad.json()["detail"]
    assert exact.status_code == 200 and exact.json() == raw.json()  # SQLite ranks exactly either way
    assert not_bool.status_code == 422
