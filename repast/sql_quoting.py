"""Quoting for SQL text built by the SQL backends (DuckDB, PostgreSQL, SQLite all follow the standard)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """An SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """An SQL string literal in single quotes."""
    return "'" + value.replace("'", "''") + "'"
