"""Replacing tables with only DML inside the transaction: all or nothing, also under SIGKILL.

``leadscore.warehouse.swap`` is how ingest and build replace tables that change together
without creating or dropping a table inside ``BEGIN TRANSACTION ... COMMIT`` (which BigQuery
refuses). The crash tests run the swap in a subprocess that kills itself at a named step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from leadscore.faults import CRASH_ENV
from leadscore.warehouse.bigquery import BigQueryWarehouse
from leadscore.warehouse.duckdb import DuckDBWarehouse
from leadscore.warehouse.swap import next_table, replace_tables, replacing

NAMES = ["a", "b"]
DRIVER = """
import sys
from leadscore.warehouse.duckdb import DuckDBWarehouse
from leadscore.warehouse.swap import replace_tables
wh = DuckDBWarehouse(sys.argv[1])
wh.dialect = sys.argv[2]
replace_tables(wh, ["a", "b"])
wh.close()
"""
#: The swap's two forms, both run on DuckDB: its own (DROP + RENAME in the transaction) and
#: BigQuery's (DML only in the transaction).
DIALECTS = ["duckdb", "bigquery"]


def _open(path: Path, dialect: str) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(path)
    wh.dialect = dialect  # the form the swap takes; the SQL still runs on DuckDB
    return wh


def _world(path: Path) -> None:
    """Tables ``a`` and ``b`` holding old rows, their scratch tables holding new ones."""
    wh = DuckDBWarehouse(path)
    for name in NAMES:
        wh.execute(f"CREATE TABLE {name} AS SELECT 'old' AS v, range AS i FROM range(3)")
        wh.execute(f"CREATE TABLE {next_table(name)} AS SELECT 'new' AS v, range AS i "
                   "FROM range(5) ORDER BY i DESC")  # fmt: skip
    wh.close()


def _state(path: Path) -> dict[str, list[tuple[str, int]]]:
    wh = DuckDBWarehouse(path)
    try:
        return {
            name: [(r["v"], r["i"]) for r in wh.query(f'SELECT * FROM "{name}"').to_pylist()]
            for name in wh.list_tables()
        }
    finally:
        wh.close()


OLD = [("old", i) for i in range(3)]
NEW = [("new", i) for i in (4, 3, 2, 1, 0)]  # the scratch table's order is kept


@pytest.mark.parametrize("dialect", DIALECTS)
def test_both_tables_are_replaced_in_order_and_the_scratch_tables_dropped(
    tmp_path: Path, dialect: str
) -> None:
    _world(tmp_path / "w.duckdb")
    wh = _open(tmp_path / "w.duckdb", dialect)
    replace_tables(wh, NAMES)
    wh.close()
    assert _state(tmp_path / "w.duckdb") == {"a": NEW, "b": NEW}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_failure_inside_the_block_leaves_both_tables_as_they_were(
    tmp_path: Path, dialect: str
) -> None:
    _world(tmp_path / "w.duckdb")
    wh = _open(tmp_path / "w.duckdb", dialect)
    with pytest.raises(RuntimeError, match="log insert failed"), replacing(wh, NAMES):
        raise RuntimeError("log insert failed")
    wh.close()
    assert _state(tmp_path / "w.duckdb") == {"a": OLD, "b": OLD}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_missing_table_or_changed_columns_are_handled(tmp_path: Path, dialect: str) -> None:
    wh = _open(tmp_path / "w.duckdb", dialect)
    wh.execute("CREATE TABLE a AS SELECT 1 AS other")  # columns changed
    for name in NAMES:
        wh.execute(f"CREATE TABLE {next_table(name)} AS SELECT 'new' AS v, 7 AS i")
    replace_tables(wh, NAMES)
    assert [wh.query(f"SELECT * FROM {n}").to_pylist() for n in NAMES] == [
        [{"v": "new", "i": 7}]
    ] * 2
    wh.close()


STAGED = {"a": OLD, "b": OLD, "_next_a": NEW[::-1], "_next_b": NEW[::-1]}


@pytest.mark.parametrize(
    ("dialect", "step", "expected"),
    [
        ("duckdb", "swap_staged", STAGED),
        ("duckdb", "swap_in_transaction", STAGED),
        ("duckdb", "swap_committed", {"a": NEW, "b": NEW}),  # renamed: no scratch table left
        ("bigquery", "swap_staged", STAGED),
        ("bigquery", "swap_in_transaction", STAGED),
        (
            "bigquery",
            "swap_committed",
            {"a": NEW, "b": NEW, **{k: v for k, v in STAGED.items() if k.startswith("_")}},
        ),
    ],
)
def test_a_kill_leaves_both_old_or_both_new_never_one_of_each(
    tmp_path: Path, dialect: str, step: str, expected: dict[str, list[tuple[str, int]]]
) -> None:
    path = tmp_path / "w.duckdb"
    _world(path)
    src = Path(__file__).parent.parent / "src"
    env = {**os.environ, CRASH_ENV: step, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(path), dialect], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    after = _state(path)
    after = {k: sorted(v) if k.startswith("_next_") else v for k, v in after.items()}
    assert after == {k: sorted(v) if k.startswith("_next_") else v for k, v in expected.items()}
    # the re-run completes the swap and leaves no scratch table
    wh = _open(path, dialect)
    for name in NAMES:
        if not wh.table_exists(next_table(name)):
            wh.execute(f'CREATE TABLE "{next_table(name)}" AS SELECT * FROM "{name}"')
    replace_tables(wh, NAMES)
    wh.close()
    assert _state(path) == {"a": NEW, "b": NEW}


class _Client:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def query(self, sql: str) -> _Client:
        self.sent.append(sql)
        return self

    def result(self) -> None:
        return None

    def list_tables(self, dataset: str) -> list[object]:
        return []


def test_on_bigquery_the_transaction_holds_only_dml() -> None:
    client = _Client()
    bq = BigQueryWarehouse(project="p", dataset="LeadScoring", client=client)
    with replacing(bq, NAMES):
        bq.execute("INSERT INTO ingest_log VALUES ('f')")
    (script,) = [s for s in client.sent if s.startswith("BEGIN TRANSACTION")]
    statements = [s.split()[0] for s in script.split(";\n")]
    assert statements == ["BEGIN", *["DELETE", "INSERT"] * 2, "INSERT", "COMMIT"]
    # the tables are created (empty, with the scratch columns) before it, the scratch
    # tables dropped after it
    creates = [s.split(" AS")[0] for s in client.sent if s.startswith("CREATE")]
    assert creates == [f"CREATE OR REPLACE TABLE LeadScoring.`{n}`" for n in NAMES]
    assert client.sent[-2:] == [f"DROP TABLE IF EXISTS LeadScoring.`_next_{n}`" for n in NAMES]
