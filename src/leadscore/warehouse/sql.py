"""SQL literals for statements written in DuckDB's dialect (carried to BigQuery by sqlglot).

One definition of each, used by every stage that writes SQL text.
"""

from __future__ import annotations

from datetime import UTC, datetime


def ident(name: str) -> str:
    """A quoted identifier (``"name"``, inner quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def text(value: str) -> str:
    """A string literal (``'value'``, inner quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def timestamp(ts: datetime) -> str:
    """A UTC timestamp literal; a naive datetime is refused (every timestamp carries a zone)."""
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} must carry a time zone")
    return f"CAST('{ts.astimezone(UTC).isoformat()}' AS TIMESTAMPTZ)"
