"""Vector retrieval: the semantics every store follows (semantics), the search capability online
stores declare (base) and its SQLite and PostgreSQL implementations, and document retrieval online
(documents) and point-in-time from the offline store (offline)."""
