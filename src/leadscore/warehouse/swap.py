"""Replacing tables together with only DML inside the transaction (any backend).

Reads and writes the tables it is given. BigQuery allows only DML (and temporary tables)
between ``BEGIN TRANSACTION`` and ``COMMIT TRANSACTION``, so no stage creates or drops a table
inside ``wh.transaction()``. A stage that replaces tables which must change together:

1. builds each new content into its scratch table :func:`next_table` (``CREATE OR REPLACE``,
   outside any transaction: a failure or crash here leaves the tables as they were);
2. opens :func:`replacing`, which makes each table exist with its scratch table's columns
   (a table that is missing, or whose columns changed, is created empty first), then in one
   transaction deletes every row of each table and inserts the scratch rows in their order,
   with whatever DML the block adds (the ingest log, a merge); then drops the scratch tables.

On DuckDB, whose DDL is transactional, step 2 is instead ``DROP`` + ``ALTER TABLE … RENAME``
of the scratch table in one transaction: the same result without copying the rows again (the
BigQuery form is what the GoogleSQL test analyzes; the crash tests run both).

A crash can leave a scratch table behind (the next run replaces it) or, only when a table's
columns changed, that table empty; it never leaves one table replaced and another not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from leadscore.faults import crash_point
from leadscore.warehouse.base import Warehouse


def next_table(table: str) -> str:
    """The scratch table that holds ``table``'s new content until :func:`replacing` swaps it."""
    return f"_next_{table}"


@contextmanager
def replacing(wh: Warehouse, names: Sequence[str]) -> Iterator[None]:
    """One transaction that replaces each table in ``names`` with its :func:`next_table` rows.

    The block runs inside the same transaction, after the rows are swapped (DML only).
    The scratch tables are dropped afterwards, also when the block fails.
    """
    try:
        if wh.dialect == "duckdb":
            crash_point("swap_staged")
            with wh.transaction():  # DuckDB's DDL is transactional: rename, no copy
                for name in names:
                    wh.execute(f'DROP TABLE IF EXISTS "{name}"')
                    wh.execute(f'ALTER TABLE "{next_table(name)}" RENAME TO "{name}"')
                    crash_point("swap_in_transaction")
                yield
        else:
            for name in names:
                _match_columns(wh, name)
            crash_point("swap_staged")
            with wh.transaction():
                for name in names:
                    wh.execute(f'DELETE FROM "{name}" WHERE TRUE')
                    wh.execute(f'INSERT INTO "{name}" SELECT * FROM "{next_table(name)}"')
                    crash_point("swap_in_transaction")
                yield
        crash_point("swap_committed")
    finally:
        for name in names:
            wh.execute(f'DROP TABLE IF EXISTS "{next_table(name)}"')


def replace_tables(wh: Warehouse, names: Sequence[str]) -> None:
    """Replace each table in ``names`` with its :func:`next_table` rows, all in one transaction."""
    with replacing(wh, names):
        pass


def _match_columns(wh: Warehouse, name: str) -> None:
    """Create ``name`` empty with the scratch table's columns unless it already has them."""
    scratch = f'SELECT * FROM "{next_table(name)}"'
    if wh.table_exists(name):
        current = wh.query(f'SELECT * FROM "{name}" LIMIT 0').schema
        if current.equals(wh.query(f"{scratch} LIMIT 0").schema):
            return
    wh.execute(f'CREATE OR REPLACE TABLE "{name}" AS {scratch} WHERE FALSE')
