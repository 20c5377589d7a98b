"""The BigQuery half of the offline check: what the real backend would send, recorded.

:class:`RecordingClient` stands in for ``google.cloud.bigquery.Client`` and records every query
script and load job; :class:`ShadowWarehouse` drives the real :class:`BigQueryWarehouse` over it
and a real DuckDB warehouse with the same calls (DuckDB answers). ``googlesql.py`` analyzes
what was recorded.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.warehouse.base import WriteMode
from leadscore.warehouse.bigquery import BigQueryWarehouse
from leadscore.warehouse.duckdb import DuckDBWarehouse

DATASET = "LeadScoring"


# ----------------------------------------------------------------------------- recording
@dataclass(frozen=True)
class Sent:
    """One request the BigQuery client received: a query script, or a load job."""

    label: str  # the workload that sent it
    script: str = ""  # query jobs: the SQL text, possibly several statements
    load_table: str = ""  # load jobs: "dataset.table"
    load_schema: pa.Schema | None = None
    write_disposition: str = ""
    source_format: str = ""


class _Job:
    def result(self) -> _Job:
        return self

    def to_arrow(self) -> pa.Table:
        return pa.table({})


@dataclass
class RecordingClient:
    """Stands in for ``google.cloud.bigquery.Client``: records what it is sent, runs nothing."""

    sent: list[Sent] = field(default_factory=list)
    label: str = ""

    def query(self, sql: str) -> _Job:
        self.sent.append(Sent(self.label, script=sql))
        return _Job()

    def load_table_from_file(self, file: Any, destination: str, job_config: Any = None) -> _Job:
        schema = pq.read_schema(io.BytesIO(file.read()))
        self.sent.append(
            Sent(
                self.label,
                load_table=destination,
                load_schema=schema,
                write_disposition=str(job_config.write_disposition),
                source_format=str(job_config.source_format),
            )
        )
        return _Job()

    def close(self) -> None:
        """Nothing to release."""


class ShadowWarehouse:
    """The real BigQuery backend (over a :class:`RecordingClient`) and a real DuckDB warehouse,
    driven by the same calls. Reports ``dialect = "bigquery"`` so stage code takes its BigQuery
    branches; DuckDB answers queries and table listings.

    Also checks what neither half sees alone: a ``query`` inside ``transaction()`` would return
    no rows on BigQuery (the script only runs at COMMIT), so it is recorded as a problem.
    """

    dialect = "bigquery"

    def __init__(self, path: Path, dataset: str = DATASET) -> None:
        self.client = RecordingClient()
        self.bigquery = BigQueryWarehouse(project="test", dataset=dataset, client=self.client)
        self.duckdb = DuckDBWarehouse(path)
        self.problems: list[str] = []
        self._depth = 0

    @contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        """Tag everything sent inside the block with ``label`` (the workload's name)."""
        self.client.label = label
        try:
            yield
        finally:
            self.client.label = ""

    def execute(self, sql: str) -> None:
        self.bigquery.execute(sql)
        self.duckdb.execute(sql)

    def query(self, sql: str) -> pa.Table:
        if self._depth:
            self.problems.append(f"query inside a transaction returns nothing on BigQuery: {sql}")
        self.bigquery.query(sql)
        return self.duckdb.query(sql)

    def load_arrow(self, table: str, data: pa.Table, mode: WriteMode = "replace") -> None:
        self.bigquery.load_arrow(table, data, mode)
        self.duckdb.load_arrow(table, data, mode)

    def load_parquet(self, table: str, path: Path, mode: WriteMode = "replace") -> None:
        self.bigquery.load_parquet(table, path, mode)
        self.duckdb.load_parquet(table, path, mode)

    def create_view(self, name: str, sql: str) -> None:
        self.bigquery.create_view(name, sql)
        self.duckdb.create_view(name, sql)

    def table_exists(self, name: str) -> bool:
        return self.duckdb.table_exists(name)

    def list_tables(self, prefix: str = "") -> list[str]:
        return self.duckdb.list_tables(prefix)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(self.bigquery.transaction())
            stack.enter_context(self.duckdb.transaction())
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    def close(self) -> None:
        self.bigquery.close()
        self.duckdb.close()
