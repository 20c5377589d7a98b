"""BigQuery warehouse (production), through the official ``google-cloud-bigquery`` client.

SQL arrives in DuckDB's dialect with bare names; it is transpiled with sqlglot and every bare
table is qualified with the dataset (``LeadScoring.snapshot_reps_2024_q1``).
BigQuery has no multi-statement transaction across load jobs, so ``transaction`` runs its
statements as one BigQuery script inside ``BEGIN TRANSACTION ... COMMIT TRANSACTION``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from leadscore.warehouse.base import WarehouseError, WriteMode
from leadscore.warehouse.dialect import transpile


class BigQueryWarehouse:
    """Warehouse on BigQuery. Credentials come from the environment (ADC), never from config."""

    dialect = "bigquery"

    def __init__(
        self, project: str | None, dataset: str, location: str = "US", client: Any = None
    ) -> None:
        if client is None:
            from google.cloud import bigquery

            client = bigquery.Client(project=project, location=location)
        self.client = client
        self.dataset = dataset
        self._script: list[str] | None = None

    def to_sql(self, sql: str) -> list[str]:
        """The BigQuery statements this warehouse would run for DuckDB-dialect ``sql``."""
        return transpile(sql, "bigquery", dataset=self.dataset)

    def _run(self, statements: list[str]) -> Any:
        if self._script is not None:
            self._script.extend(statements)
            return None
        try:
            return self.client.query(";\n".join(statements)).result()
        except Exception as exc:  # the client raises many google.api_core types
            raise WarehouseError(f"{exc}\n-- in statement:\n{statements[0][:2000]}") from exc

    def execute(self, sql: str) -> None:
        self._run(self.to_sql(sql))

    def query(self, sql: str) -> pa.Table:
        result = self._run(self.to_sql(sql))
        return result.to_arrow() if result is not None else pa.table({})

    def load_arrow(self, table: str, data: pa.Table, mode: WriteMode = "replace") -> None:
        """Load ``data`` as Parquet, so the table gets exactly the Arrow types. (Through pandas
        an INT64 column with a NULL would arrive as FLOAT64 and an all-NULL column untyped.)"""
        import pyarrow.parquet as pq
        from google.cloud import bigquery

        buffer = io.BytesIO()
        pq.write_table(data, buffer)
        buffer.seek(0)
        job_config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition="WRITE_TRUNCATE" if mode == "replace" else "WRITE_APPEND",
        )
        target = f"{self.dataset}.{table}"
        try:
            self.client.load_table_from_file(buffer, target, job_config=job_config).result()
        except Exception as exc:
            raise WarehouseError(f"loading {target}: {exc}") from exc

    def load_parquet(self, table: str, path: Path, mode: WriteMode = "replace") -> None:
        import pyarrow.parquet as pq

        self.load_arrow(table, pq.read_table(path), mode)

    def create_view(self, name: str, sql: str) -> None:
        self.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')

    def table_exists(self, name: str) -> bool:
        return name in self.list_tables(name)

    def list_tables(self, prefix: str = "") -> list[str]:
        names = [t.table_id for t in self.client.list_tables(self.dataset)]
        return sorted(n for n in names if n.startswith(prefix))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._script is not None:
            yield
            return
        self._script = []
        try:
            yield
            statements = ["BEGIN TRANSACTION", *self._script, "COMMIT TRANSACTION"]
        finally:
            script, self._script = self._script, None
        if script:
            self._run(statements)

    def close(self) -> None:
        self.client.close()
