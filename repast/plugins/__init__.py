"""The one table of backends of every kind (table), the config models they share (base_config),
how a `type:` string becomes a class (loader) and what a backend can do, as data (capabilities)."""
