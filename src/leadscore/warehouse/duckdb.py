"""DuckDB warehouse: a single embedded file, the default backend."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from leadscore.warehouse.base import WarehouseBusy, WarehouseError, WriteMode

_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def _connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the file; a lock held by another process or a refused file is a one-line error."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "Could not set lock" in text:
            held = _HOLDER.search(text)
            who = f"PID {held.group(2)} ({held.group(1)})" if held else "another process"
            raise WarehouseBusy(
                f"warehouse {path} is in use by {who}; wait for that run to finish"
            ) from exc
        if "Permission denied" in text or "Read-only file system" in text:
            raise PermissionError(f"cannot open warehouse {path}: permission denied") from exc
        raise WarehouseError(f"cannot open warehouse {path}: {text.splitlines()[0]}") from exc


class DuckDBWarehouse:
    """Warehouse in one DuckDB file (or in memory with ``path=":memory:"``)."""

    dialect = "duckdb"

    def __init__(
        self,
        path: Path | str,
        threads: int = 2,
        memory_limit: str = "8GB",
        *,
        read_only: bool = False,
    ) -> None:
        if str(path) != ":memory:" and not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con = _connect(path, read_only)
        self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self._in_tx = False

    def execute(self, sql: str) -> None:
        try:
            self.con.execute(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"{exc}\n-- in statement:\n{sql[:2000]}") from exc

    def query(self, sql: str) -> pa.Table:
        try:
            return self.con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise WarehouseError(f"{exc}\n-- in query:\n{sql[:2000]}") from exc

    def load_arrow(self, table: str, data: pa.Table, mode: WriteMode = "replace") -> None:
        self.con.register("__leadscore_load", data)
        try:
            if mode == "replace" or not self.table_exists(table):
                self.execute(
                    f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM __leadscore_load'
                )
            else:
                self.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM __leadscore_load')
        finally:
            self.con.unregister("__leadscore_load")

    def load_parquet(self, table: str, path: Path, mode: WriteMode = "replace") -> None:
        source = f"read_parquet('{Path(path).as_posix()}')"
        if mode == "replace" or not self.table_exists(table):
            self.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM {source}')
        else:
            self.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM {source}')

    def create_view(self, name: str, sql: str) -> None:
        self.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')

    def table_exists(self, name: str) -> bool:
        # fetchall, not fetchone: DuckDB 2 refuses new work while a result is unfinished
        rows = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()
        return bool(rows and rows[0][0])

    def list_tables(self, prefix: str = "") -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE starts_with(table_name, ?)"
            " ORDER BY table_name",
            [prefix],
        ).fetchall()
        return [r[0] for r in rows]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_tx:  # nested blocks join the outer transaction
            yield
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._in_tx = False

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
