"""Warehouse: DuckDB round trips for real; BigQuery via sqlglot and a recording client."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from leadscore.config import WarehouseConfig
from leadscore.warehouse import Warehouse, WarehouseError, open_warehouse, transpile
from leadscore.warehouse.bigquery import BigQueryWarehouse
from leadscore.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def wh(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "wh.duckdb")


def _frame() -> pa.Table:
    ts = pa.array([datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None], pa.timestamp("us", tz="UTC"))
    return pa.table({"id": ["a", "b"], "n": [1, 2], "ts": ts})


def test_open_warehouse_default_is_duckdb(tmp_path: Path) -> None:
    wh = open_warehouse(WarehouseConfig(path=tmp_path / "x" / "w.duckdb"))
    assert isinstance(wh, Warehouse)
    assert wh.dialect == "duckdb"
    assert (tmp_path / "x" / "w.duckdb").exists()


def test_arrow_round_trip_keeps_utc(wh: DuckDBWarehouse) -> None:
    wh.load_arrow("t", _frame())
    out = wh.query("SELECT * FROM t ORDER BY id")
    assert out.column("id").to_pylist() == ["a", "b"]
    assert out.schema.field("ts").type.tz == "UTC"
    assert out.column("ts")[0].as_py() == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_append_and_replace(wh: DuckDBWarehouse) -> None:
    wh.load_arrow("t", _frame())
    wh.load_arrow("t", _frame(), mode="append")
    assert wh.query("SELECT count(*) AS n FROM t").column("n")[0].as_py() == 4
    wh.load_arrow("t", _frame(), mode="replace")
    assert wh.query("SELECT count(*) AS n FROM t").column("n")[0].as_py() == 2


def test_parquet_load_and_views(wh: DuckDBWarehouse, tmp_path: Path) -> None:
    pq.write_table(_frame(), tmp_path / "f.parquet")
    wh.load_parquet("p", tmp_path / "f.parquet")
    wh.create_view("v_p", "SELECT id FROM p WHERE n > 1")
    assert wh.query("SELECT * FROM v_p").column("id").to_pylist() == ["b"]
    assert wh.list_tables("v_") == ["v_p"]
    assert wh.table_exists("p") and not wh.table_exists("nope")


def test_transaction_rolls_back_everything(wh: DuckDBWarehouse) -> None:
    wh.load_arrow("t", _frame())
    with pytest.raises(RuntimeError), wh.transaction():
        wh.execute("DELETE FROM t")
        wh.execute("CREATE TABLE u AS SELECT 1 AS x")
        raise RuntimeError("crash half-way")
    assert wh.query("SELECT count(*) AS n FROM t").column("n")[0].as_py() == 2
    assert not wh.table_exists("u")


def test_errors_name_the_statement(wh: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError, match="no_such_table"):
        wh.query("SELECT * FROM no_such_table")


def test_transpile_qualifies_tables_not_ctes() -> None:
    sql = (
        "WITH spine AS (SELECT Id FROM crm_leads) "
        "SELECT s.Id, r.RepCRD FROM spine s JOIN v_discovery_reps_all_vintages r ON true"
    )
    (out,) = transpile(sql, "bigquery", dataset="LeadScoring")
    assert "LeadScoring.crm_leads" in out
    assert "LeadScoring.v_discovery_reps_all_vintages" in out
    assert "LeadScoring.spine" not in out
    sqlglot.parse_one(out, read="bigquery")  # valid BigQuery


class _RecordingClient:
    """Stands in for google.cloud.bigquery.Client: records the SQL it is sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.loads: list[tuple[str, Any, pa.Table]] = []

    def query(self, sql: str) -> Any:
        self.sent.append(sql)
        return self

    def result(self) -> Any:
        return self

    def to_arrow(self) -> pa.Table:
        return pa.table({"x": [1]})

    def load_table_from_file(self, file: Any, destination: str, job_config: Any) -> Any:
        self.loads.append((destination, job_config, pq.read_table(file)))
        return self


def test_bigquery_backend_sends_bigquery_sql() -> None:
    client = _RecordingClient()
    bq = BigQueryWarehouse(project="p", dataset="LeadScoring", client=client)
    bq.create_view("v_x", "SELECT TRY_CAST(a AS BIGINT) AS a FROM snapshot_reps_2024_q1")
    out = bq.query("SELECT count(*) FROM crm_leads")
    assert out.num_rows == 1
    assert "SAFE_CAST" in client.sent[0]
    assert "LeadScoring.snapshot_reps_2024_q1" in client.sent[0]
    assert "LeadScoring.crm_leads" in client.sent[1]


def test_bigquery_transaction_is_one_script() -> None:
    client = _RecordingClient()
    bq = BigQueryWarehouse(project="p", dataset="LeadScoring", client=client)
    with bq.transaction():
        bq.execute("DELETE FROM lead_scores WHERE model_version = 'v1'")
        bq.execute("INSERT INTO lead_scores SELECT * FROM staged")
    assert len(client.sent) == 1
    assert client.sent[0].startswith("BEGIN TRANSACTION")
    assert client.sent[0].rstrip().endswith("COMMIT TRANSACTION")


def test_bigquery_load_jobs_send_parquet_with_the_arrow_types() -> None:
    client = _RecordingClient()
    bq = BigQueryWarehouse(project="p", dataset="LeadScoring", client=client)
    data = pa.table({"RepCRD": pa.array([1, None], pa.int64()), "note": pa.nulls(2, pa.string())})
    bq.load_arrow("_stage_lead_scores", data)
    bq.load_arrow("_stage_lead_scores", data, mode="append")
    (target, first, sent), (_, second, _) = client.loads
    assert target == "LeadScoring._stage_lead_scores"
    assert first.source_format == "PARQUET"
    assert (first.write_disposition, second.write_disposition) == (
        "WRITE_TRUNCATE",
        "WRITE_APPEND",
    )
    # through pandas the INT64 column with a NULL would become FLOAT64, the all-NULL one untyped
    assert sent.schema == data.schema
    assert sent.equals(data)


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the DuckDB file (as `serve` does while it reads its index)."""
    code = (
        "import sys, time, duckdb\n"
        "c = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_writer_waits_out_a_brief_reader_then_gives_up_with_one_line(tmp_path: Path) -> None:
    from leadscore.warehouse import WarehouseBusy, open_waiting

    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(path).close()
    cfg = WarehouseConfig(path=path)
    reader = _hold(path, 2.0)
    try:
        wh = open_waiting(cfg, wait_seconds=30.0)  # the reader lets go after ~2 s
        wh.close()
    finally:
        reader.wait(timeout=30)
    reader = _hold(path, 30.0)
    try:
        with pytest.raises(WarehouseBusy, match="in use by"):
            open_waiting(cfg, wait_seconds=1.0)
    finally:
        reader.kill()
        reader.wait(timeout=30)
