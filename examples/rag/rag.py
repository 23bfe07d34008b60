"""Retrieval for a RAG application with repast: chunk local text files, embed, store, ask.

    python examples/rag/rag.py ingest examples/rag/feature_repo examples/rag/corpus
    python examples/rag/rag.py ask examples/rag/feature_repo "how long do I cook pasta?"
    python examples/rag/rag.py add examples/rag/feature_repo notes.txt      # push one more file
    repast serve --repo examples/rag/feature_repo &                          # then, over HTTP:
    python examples/rag/rag.py ask examples/rag/feature_repo "what is recall?" --url http://127.0.0.1:6566

The embedder is scikit-learn's HashingVectorizer: stateless (a question is embedded the same way
in any process) and nothing to download. Swap in any model whose output length matches the
view's vector_length.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DIMENSION = 256
FEATURES = ["chunks:text", "chunks:source"]


def embed(texts: list[str]) -> np.ndarray:
    """One L2-normalized float32 vector per text (bag of words, hashed into DIMENSION buckets)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(n_features=DIMENSION, alternate_sign=False, norm="l2", stop_words="english")
    return vectorizer.transform(texts).toarray().astype(np.float32)  # type: ignore[no-any-return]


def chunk_files(paths: list[Path], first_id: int = 0) -> pd.DataFrame:
    """Paragraphs of the files as chunks: chunk_id, embedding, text, source, event_timestamp."""
    rows = [(p.name, para.strip()) for p in sorted(paths) for para in p.read_text().split("\n\n") if para.strip()]
    vectors = embed([text for _, text in rows])
    keep = [i for i, v in enumerate(vectors) if v.any()]  # a chunk of stop words only has no direction
    now = datetime.now(UTC)
    return pd.DataFrame({"chunk_id": [first_id + i for i in range(len(keep))],
                         "embedding": [vectors[i] for i in keep], "text": [rows[i][1] for i in keep],
                         "source": [rows[i][0] for i in keep], "event_timestamp": [now] * len(keep)})


def ingest(repo: Path, corpus: Path) -> int:
    """Chunk the corpus into the view's source, register the definitions, materialize: chunks loaded."""
    from repast import FeatureStore

    frame = chunk_files(list(corpus.glob("*.txt")))
    (repo / "data" / "chunks").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(repo / "data" / "chunks" / "corpus.parquet")
    store = FeatureStore(repo)
    store.apply_repo()
    store.materialize_incremental(datetime.now(UTC))
    return len(frame)


def add(repo: Path, path: Path) -> int:
    """Push the chunks of one more file, online and offline: searchable at once."""
    from repast import FeatureStore

    store = FeatureStore(repo)
    first = int(pd.read_parquet(repo / "data" / "chunks")["chunk_id"].max()) + 1
    frame = chunk_files([path], first_id=first)
    store.push("chunks_push", frame, to="online_and_offline")
    return len(frame)


def ask(repo: Path, question: str, top_k: int = 3, url: str | None = None, token: str | None = None,
        hybrid: bool = False) -> list[dict[str, Any]]:
    """The top_k chunks for a question, nearest first: through the SDK, or a feature server at `url`."""
    query = embed([question])[0].tolist()
    query_string = question if hybrid else None
    if url is not None:
        from repast import Client

        with Client(url, token=token) as client:
            response = client.retrieve_online_documents_v2(FEATURES, top_k=top_k, query=query,
                                                           query_string=query_string)
    else:
        from repast import FeatureStore

        response = FeatureStore(repo).retrieve_online_documents_v2(FEATURES, top_k=top_k, query=query,
                                                                   query_string=query_string)
    columns = response.to_dict()
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("repo", type=Path)
    p.add_argument("corpus", type=Path)
    p = sub.add_parser("add")
    p.add_argument("repo", type=Path)
    p.add_argument("file", type=Path)
    p = sub.add_parser("ask")
    p.add_argument("repo", type=Path)
    p.add_argument("question")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--hybrid", action="store_true", help="also match the question's words (reciprocal rank fusion)")
    args = parser.parse_args(argv)
    if args.command == "ingest":
        print(f"{ingest(args.repo, args.corpus)} chunks ingested")
    elif args.command == "add":
        print(f"{add(args.repo, args.file)} chunks pushed")
    else:
        for hit in ask(args.repo, args.question, args.top_k, args.url, args.token, args.hybrid):
            print(f"{hit['distance']:.3f}  {hit['source']}: {hit['text'][:100]}")


if __name__ == "__main__":
    main(sys.argv[1:])
