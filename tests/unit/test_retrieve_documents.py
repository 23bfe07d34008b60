"""Point-in-time document retrieval from the offline store, and its agreement with the online store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from repast.types import Array, Float32, String, ValueType

NOW = datetime.now(UTC).replace(microsecond=0)
T0, T1, T2 = NOW - timedelta(days=20), NOW - timedelta(days=10), NOW - timedelta(days=5)


def make_store(tmp_path: Path, frame: pd.DataFrame, ttl: timedelta, metric: str = "COSINE") -> FeatureStore:
    frame.to_parquet(tmp_path / "docs.parquet")
    config = RepoConfig.model_validate({"project": "rag", "repo_path": tmp_path, "registry": str(tmp_path / "r.db"),
                                        "online_store": {"type": "sqlite", "path": str(tmp_path / "online.db")}})
    store = FeatureStore(config=config)
    doc = Entity(name="doc", join_keys=["doc_id"], value_type=ValueType.INT64)
    dim = len(frame["embedding"].iloc[0])
    view = FeatureView(name="docs", entities=[doc], ttl=ttl, source=FileSource(path=str(tmp_path / "docs.parquet"),
                       timestamp_field="event_timestamp"), schema=[
        Field(name="embedding", dtype=Array(Float32), vector_index=True, vector_length=dim,
              vector_search_metric=metric),
        Field(name="text", dtype=String), Field(name="topic", dtype=String)])
    store.apply([doc, view])
    return store


def random_docs(n: int, dim: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = ["retrieval", "feature", "store", "vector", "index", "latency", "cats"]
    return pd.DataFrame({
        "doc_id": np.arange(n), "embedding": list(rng.normal(size=(n, dim)).astype(np.float32)),
        "text": [" ".join(rng.choice(words, 3)) for _ in range(n)],
        "topic": rng.choice(["a", "b"], n),
        # Each document has two versions; the later one wins.
        "event_timestamp": [T1 + timedelta(minutes=int(m)) for m in rng.integers(0, 600, n)]})


@pytest.mark.parametrize("metric", ["L2", "COSINE", "INNER_PRODUCT"])
def test_as_of_now_returns_the_online_hits(tmp_path: Path, metric: str) -> None:
    old, new = random_docs(400, 12, seed=1), random_docs(400, 12, seed=2)
    new["event_timestamp"] = [t + timedelta(days=2) for t in new["event_timestamp"]]
    store = make_store(tmp_path, pd.concat([old, new]), ttl=timedelta(days=30), metric=metric)
    store.materialize(NOW - timedelta(days=30), NOW)
    rng = np.random.default_rng(9)
    features = ["docs:text", "docs:embedding"]
    for query in rng.normal(size=(5, 12)).tolist():
        for kwargs in ({}, {"query_string": "vector latency"}, {"filters": {"topic": "b"}}):
            online = store.retrieve_online_documents_v2(features, query=query, top_k=10, **kwargs).to_dict()
            offline = store.retrieve_documents(features, query=query, top_k=10, as_of=NOW, **kwargs).to_dict()
            assert offline == online


def test_as_of_a_past_time_sees_the_documents_as_they_were(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "doc_id": [1, 1, 2, 3],
        "embedding": [[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [1.0, 0.01]],
        "text": ["first version", "second version", "other", "written later"],
        "topic": ["a"] * 4,
        "event_timestamp": [T0, T2, T0, T2]})
    store = make_store(tmp_path, frame, ttl=timedelta(0))
    got = store.retrieve_documents(["docs:text"], query=[1.0, 0.0], top_k=5, as_of=T1).to_dict()
    assert got["doc_id"] == [1, 2]  # document 3 did not exist yet
    assert got["text"] == ["first version", "other"]
    now = store.retrieve_documents(["docs:text"], query=[1.0, 0.0], top_k=5).to_dict()
    assert now["doc_id"] == [3, 2, 1]


def test_as_of_applies_the_view_ttl(tmp_path: Path) -> None:
    frame = pd.DataFrame({"doc_id": [1, 2], "embedding": [[1.0, 0.0], [0.0, 1.0]], "text": ["old", "fresh"],
                          "topic": ["a", "a"], "event_timestamp": [T0, T2]})
    store = make_store(tmp_path, frame, ttl=timedelta(days=7))
    assert store.retrieve_documents(["docs:text"], query=[1.0, 0.0], top_k=5, as_of=NOW).to_dict()["doc_id"] == [2]
    assert store.retrieve_documents(["docs:text"], query=[1.0, 0.0], top_k=5,
                                    as_of=T0 + timedelta(days=1)).to_dict()["doc_id"] == [1]


def test_as_of_a_time_before_every_document_finds_nothing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"doc_id": [1], "embedding": [[1.0, 0.0]], "text": ["later"], "topic": ["a"],
                          "event_timestamp": [T2]})
    store = make_store(tmp_path, frame, ttl=timedelta(0))
    got = store.retrieve_documents(["docs:text"], query=[1.0, 0.0], top_k=5, as_of=T0).to_dict()
    assert got == {"doc_id": [], "text": [], "distance": []}
