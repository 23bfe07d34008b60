"""Chunks of text files as documents: an embedding (searched by cosine distance), the text, its file."""

from datetime import timedelta

from repast import Entity, FeatureView, Field, FileSource, PushSource
from repast.types import Array, Float32, String, ValueType

DIMENSION = 256  # the hashing embedder's output size (examples/rag/rag.py)

chunk = Entity(name="chunk", join_keys=["chunk_id"], value_type=ValueType.INT64)

chunks_push = PushSource(
    name="chunks_push",
    batch_source=FileSource(name="chunks_source", path="data/chunks", timestamp_field="event_timestamp"),
)

chunks = FeatureView(
    name="chunks",
    entities=[chunk],
    ttl=timedelta(0),
    source=chunks_push,
    schema=[
        Field(name="embedding", dtype=Array(Float32), vector_index=True, vector_length=DIMENSION,
              vector_search_metric="COSINE"),
        Field(name="text", dtype=String),
        Field(name="source", dtype=String),
    ],
)
