"""DuckDB warehouse: a single embedded file, the default backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from leadscore.warehouse.base import WarehouseError, WriteMode


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
        self.con = duckdb.connect(str(path), read_only=read_only)
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
