"""`repast stream`: Kafka sources into the online and offline stores, exactly once in effect
(docs/streaming.md)."""
