"""The warehouse protocol: the small contract every backend fulfils.

SQL handed to a warehouse is written once, in DuckDB's dialect, with bare table names; each
backend carries it to its own dialect (sqlglot) and qualifies the names (e.g. ``LeadScoring.x``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import pyarrow as pa

WriteMode = Literal["replace", "append"]


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message names the table or statement."""


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse; the message says which one."""


@runtime_checkable
class Warehouse(Protocol):
    """A SQL warehouse that moves data in and out as Arrow.

    Contract:
        * ``execute`` runs one or more statements and returns nothing.
        * ``query`` returns the whole result as an Arrow table; timestamps stay UTC-aware.
        * ``load_arrow`` creates (``replace``) or appends to a table from Arrow data.
        * ``transaction`` is all-or-nothing: an exception inside it leaves every table as it was.
        * Names passed in are bare (``crm_leads``); the backend qualifies them.
    """

    dialect: str

    def execute(self, sql: str) -> None:
        """Run statements written in DuckDB's dialect."""

    def query(self, sql: str) -> pa.Table:
        """Run a query and return its rows as Arrow."""

    def load_arrow(self, table: str, data: pa.Table, mode: WriteMode = "replace") -> None:
        """Write Arrow data into ``table``."""

    def load_parquet(self, table: str, path: Path, mode: WriteMode = "replace") -> None:
        """Write a Parquet file into ``table``."""

    def create_view(self, name: str, sql: str) -> None:
        """Create or replace view ``name`` as ``sql``."""

    def table_exists(self, name: str) -> bool:
        """Whether a table or view of that name exists."""

    def list_tables(self, prefix: str = "") -> list[str]:
        """Names of the tables and views that start with ``prefix``, sorted."""

    def transaction(self) -> AbstractContextManager[None]:
        """All-or-nothing block."""

    def close(self) -> None:
        """Release the connection."""
