"""Score stage, warehouse side: the ``lead_scores``, ``score_rejects`` and ``scoring_runs``
tables and the SQL that keeps them exactly-once.

Writes go through a staging table loaded *before* the transaction and a DELETE + INSERT
inside it, so the all-or-nothing part is plain SQL on every backend (BigQuery load jobs
cannot join a multi-statement transaction).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from leadscore.catalog import segment_column
from leadscore.config import Settings
from leadscore.warehouse import Warehouse, tables
from leadscore.warehouse.sql import ident as _q
from leadscore.warehouse.sql import text as _lit

_TS = pa.timestamp("us", tz="UTC")

#: ``lead_scores``: one row per (lead_id, model_version).
SCORE_SCHEMA = pa.schema(
    [
        ("lead_id", pa.string()),
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("OwnerId", pa.string()),
        ("RepCRD", pa.int64()),
        ("contact_ts", _TS),
        (segment_column(), pa.string()),
        ("probability", pa.float64()),
        ("margin", pa.float64()),
        ("score", pa.int64()),
        ("bucket", pa.string()),
        ("tier", pa.string()),
        ("drivers_text", pa.string()),
        ("drivers_json", pa.string()),
        ("reps_snapshot_quarter", pa.date32()),
        ("firms_snapshot_quarter", pa.date32()),
        ("scored_at", _TS),
        # daily: "no_vendor_data: <reason>" for a fallback score; True for a shadow run's rows
        ("flag", pa.string()),
        ("shadow", pa.bool_()),
    ]
)
#: ``score_rejects``: one row per (lead_id, model_version) that could not be scored last time.
REJECT_SCHEMA = pa.schema(
    [
        ("lead_id", pa.string()),
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("contact_ts", _TS),
        ("rejected_at", _TS),
    ]
)
#: ``scoring_runs``: one row per run.
RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("model_version", pa.string()),
        ("as_of", _TS),
        ("scored_at", _TS),
        ("n_considered", pa.int64()),
        ("n_scored", pa.int64()),
        ("n_rejected", pa.int64()),
        ("rejected_by_reason", pa.string()),
        ("success_rate", pa.float64()),
        ("feature_availability", pa.string()),
        ("n_batches", pa.int64()),
        ("n_exported", pa.int64()),
        ("wall_seconds", pa.float64()),
        ("scores_per_second", pa.float64()),
        ("record_path", pa.string()),
        ("salesforce_csv", pa.string()),
        ("status", pa.string()),
    ]
)
#: Lead Ids written to one run's upsert file (staged, then marked exported in one transaction).
EXPORT_SCHEMA = pa.schema([("lead_id", pa.string())])
#: ``scoring_runs.status``: reserved and in flight (or crashed), finished, repaired after a crash.
RUN_STARTED, RUN_COMPLETE, RUN_INTERRUPTED = "started", "complete", "interrupted"
_EXPORT_STAGE = "sf_export"
_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
    _TS: "TIMESTAMPTZ",
    pa.bool_(): "BOOLEAN",
}
#: Exported to Salesforce by run ... (NULL until a run's upsert file included the row).
_EXPORT_COL = "sf_export_run_id"
_KEYS = {
    tables.LEAD_SCORES: ("lead_id", "model_version"),
    tables.SCORE_REJECTS: ("lead_id", "model_version"),
    tables.SCORING_RUNS: ("run_id",),
}


def _stage_name(table: str) -> str:
    return f"_stage_{table}"


def _ddl(table: str, schema: pa.Schema, extra: Sequence[str] = ()) -> str:
    cols = [f"{_q(f.name)} {_SQL_TYPES[f.type]}" for f in schema] + list(extra)
    return f"CREATE TABLE IF NOT EXISTS {_q(table)} ({', '.join(cols)})"


def ensure_tables(wh: Warehouse) -> None:
    """Create the three output tables when they do not exist yet."""
    wh.execute(_ddl(tables.LEAD_SCORES, SCORE_SCHEMA, [f"{_q(_EXPORT_COL)} VARCHAR"]))
    for name in ("flag", "shadow"):  # added by the daily stage; older tables lack them
        sql_type = _SQL_TYPES[SCORE_SCHEMA.field(name).type]
        wh.execute(
            f"ALTER TABLE {_q(tables.LEAD_SCORES)} ADD COLUMN IF NOT EXISTS {name} {sql_type}"
        )
    wh.execute(_ddl(tables.SCORE_REJECTS, REJECT_SCHEMA))
    wh.execute(_ddl(tables.SCORING_RUNS, RUN_SCHEMA))
    if wh.dialect == "duckdb":  # a warehouse from before run statuses: NULL = finished run
        wh.execute(
            f"ALTER TABLE {_q(tables.SCORING_RUNS)} ADD COLUMN IF NOT EXISTS status VARCHAR"
        )


def select_candidates(
    wh: Warehouse, cfg: Settings, model_version: str, as_of: datetime
) -> pd.DataFrame:
    """Leads that entered Contacting at or before ``as_of`` with no score from this version,
    ordered by contact time then Id (so batches are deterministic)."""
    lead, contact = _q(cfg.crm.lead_id_col), _q(cfg.crm.contacted_ts_col)
    sql = f"""
SELECT DISTINCT CAST(l.{lead} AS VARCHAR) AS lead_id, l.{contact} AS contact_ts
FROM {_q(tables.LEADS)} AS l
WHERE l.{contact} IS NOT NULL
  AND l.{contact} <= CAST({_lit(as_of.isoformat())} AS TIMESTAMPTZ)
  AND NOT EXISTS (
    SELECT 1 FROM {_q(tables.LEAD_SCORES)} AS s
    WHERE s.lead_id = CAST(l.{lead} AS VARCHAR) AND s.model_version = {_lit(model_version)}
  )
ORDER BY contact_ts, lead_id"""
    frame = wh.query(sql).to_pandas()
    # a duplicated lead Id keeps its earliest contact, as the builder does
    return frame.drop_duplicates("lead_id", keep="first").reset_index(drop=True)


def stage(wh: Warehouse, table: str, rows: pd.DataFrame, schema: pa.Schema) -> None:
    """Load ``rows`` (the schema's columns) into the staging table of ``table``."""
    rows = rows.reindex(columns=schema.names)
    arrays = [_array(rows[f.name], f.type) for f in schema]
    wh.load_arrow(_stage_name(table), pa.Table.from_arrays(arrays, schema=schema), "replace")


def _array(col: pd.Series, type_: pa.DataType) -> pa.Array:
    """One typed column; an empty or all-null column keeps its declared type."""
    if pa.types.is_timestamp(type_):
        col = pd.to_datetime(col, utc=True)
    elif pa.types.is_date(type_):
        col = pd.to_datetime(col).dt.date
    values = [None if _missing(v) else v for v in col.astype(object).tolist()]
    if pa.types.is_string(type_):
        values = [None if v is None else str(v) for v in values]
    elif pa.types.is_integer(type_):
        values = [None if v is None else int(v) for v in values]
    return pa.array(values, type=type_)


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _delete_matching(wh: Warehouse, table: str, stage_of: str) -> None:
    keys = _KEYS[table]
    match = " AND ".join(f"s.{_q(k)} = {_q(table)}.{_q(k)}" for k in keys)
    wh.execute(
        f"DELETE FROM {_q(table)} WHERE EXISTS "
        f"(SELECT 1 FROM {_q(_stage_name(stage_of))} AS s WHERE {match})"
    )


def _insert_staged(wh: Warehouse, table: str, schema: pa.Schema) -> None:
    cols = ", ".join(_q(n) for n in schema.names)
    wh.execute(f"INSERT INTO {_q(table)} ({cols}) SELECT {cols} FROM {_q(_stage_name(table))}")


def write_scores(wh: Warehouse) -> None:
    """Upsert the staged scores on (lead_id, model_version). Call inside a transaction."""
    _delete_matching(wh, tables.LEAD_SCORES, tables.LEAD_SCORES)
    _insert_staged(wh, tables.LEAD_SCORES, SCORE_SCHEMA)


def write_rejects(wh: Warehouse) -> None:
    """Replace the rejects of the staged leads: scored leads leave the table, rejected ones
    (re)enter it with this run's reason. Call inside a transaction."""
    _delete_matching(wh, tables.SCORE_REJECTS, tables.LEAD_SCORES)
    _delete_matching(wh, tables.SCORE_REJECTS, tables.SCORE_REJECTS)
    _insert_staged(wh, tables.SCORE_REJECTS, REJECT_SCHEMA)


def export_pending(wh: Warehouse, model_version: str) -> pd.DataFrame:
    """Scores of this version not yet in any upsert file (including those of a crashed run)."""
    return wh.query(
        f"SELECT * FROM {_q(tables.LEAD_SCORES)} WHERE model_version = {_lit(model_version)}"
        f" AND {_q(_EXPORT_COL)} IS NULL ORDER BY contact_ts, lead_id"
    ).to_pandas()


def stage_run(wh: Warehouse, run: Mapping[str, Any]) -> None:
    """Stage one ``scoring_runs`` row (dict fields stored as JSON text)."""
    row = {
        k: (json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)
        for k, v in run.items()
        if k in RUN_SCHEMA.names
    }
    frame = pd.DataFrame([row])
    for col in ("as_of", "scored_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    stage(wh, tables.SCORING_RUNS, frame, RUN_SCHEMA)


def record_run(wh: Warehouse, run: Mapping[str, Any]) -> None:
    """Upsert one ``scoring_runs`` row (dict fields stored as JSON text)."""
    stage_run(wh, run)
    with wh.transaction():
        _delete_matching(wh, tables.SCORING_RUNS, tables.SCORING_RUNS)
        _insert_staged(wh, tables.SCORING_RUNS, RUN_SCHEMA)


def drop_staging(wh: Warehouse) -> None:
    """Drop every staging table of the score stage (``_stage_*``); they hold copies of rows."""
    for name in wh.list_tables("_stage_"):
        wh.execute(f"DROP TABLE IF EXISTS {_q(name)}")


def run_ids(wh: Warehouse, prefix: str) -> set[str]:
    """Run ids in ``scoring_runs`` that start with ``prefix``."""
    rows = wh.query(
        f"SELECT run_id FROM {_q(tables.SCORING_RUNS)} WHERE starts_with(run_id, {_lit(prefix)})"
    ).to_pylist()
    return {str(r["run_id"]) for r in rows}


def runs_with_status(wh: Warehouse, status: str | None = None) -> list[dict[str, Any]]:
    """``scoring_runs`` rows (all that carry a status, or those with ``status``)."""
    where = "status IS NOT NULL" if status is None else f"status = {_lit(status)}"
    return wh.query(
        f"SELECT * FROM {_q(tables.SCORING_RUNS)} WHERE {where} ORDER BY run_id"
    ).to_pylist()


def stage_export(wh: Warehouse, lead_ids: Sequence[str]) -> None:
    """Stage the Lead Ids of one upsert file (before the marking transaction)."""
    stage(wh, _EXPORT_STAGE, pd.DataFrame({"lead_id": list(lead_ids)}), EXPORT_SCHEMA)


def _mark_staged(model_version: str, run_id: str) -> str:
    return (
        f"UPDATE {_q(tables.LEAD_SCORES)} SET {_q(_EXPORT_COL)} = {_lit(run_id)}"
        f" WHERE model_version = {_lit(model_version)} AND {_q(_EXPORT_COL)} IS NULL"
        f" AND lead_id IN (SELECT lead_id FROM {_q(_stage_name(_EXPORT_STAGE))})"
    )


def mark_staged_exported(wh: Warehouse, model_version: str, run_id: str) -> None:
    """One transaction: mark the staged Ids of ``model_version`` exported by ``run_id`` (call
    only once the upsert file holding them is complete on disk)."""
    with wh.transaction():
        wh.execute(_mark_staged(model_version, run_id))


def commit_export(wh: Warehouse, model_version: str, run_id: str) -> None:
    """One transaction: mark the staged Ids exported by ``run_id`` and write the staged
    ``scoring_runs`` row, so the marks and the run's record never disagree."""
    with wh.transaction():
        wh.execute(_mark_staged(model_version, run_id))
        _delete_matching(wh, tables.SCORING_RUNS, tables.SCORING_RUNS)
        _insert_staged(wh, tables.SCORING_RUNS, RUN_SCHEMA)


def close_interrupted(wh: Warehouse, model_version: str, run_id: str, csv_kept: bool) -> None:
    """One transaction for a crashed run: mark the staged Ids of its upsert file (when the
    file is complete on disk) and set its counts from the rows it left."""
    run = _lit(run_id)
    with wh.transaction():
        if csv_kept:
            wh.execute(_mark_staged(model_version, run_id))
        wh.execute(
            f"UPDATE {_q(tables.SCORING_RUNS)} SET status = {_lit(RUN_INTERRUPTED)},"
            f" n_scored = (SELECT count(*) FROM {_q(tables.LEAD_SCORES)} WHERE run_id = {run}),"
            f" n_rejected = (SELECT count(*) FROM {_q(tables.SCORE_REJECTS)}"
            f" WHERE run_id = {run}),"
            f" n_exported = (SELECT count(*) FROM {_q(tables.LEAD_SCORES)}"
            f" WHERE {_q(_EXPORT_COL)} = {run}),"
            f" salesforce_csv = {'salesforce_csv' if csv_kept else 'NULL'}"
            f" WHERE run_id = {run}"
        )


def count_contacted_after(wh: Warehouse, cfg: Settings, as_of: datetime) -> int:
    """Leads whose contact time is after ``as_of`` (never scored as of then; a data error when
    ``as_of`` is the extraction time)."""
    lead, contact = _q(cfg.crm.lead_id_col), _q(cfg.crm.contacted_ts_col)
    rows = wh.query(
        f"SELECT count(DISTINCT {lead}) AS n FROM {_q(tables.LEADS)}"
        f" WHERE {contact} > CAST({_lit(as_of.isoformat())} AS TIMESTAMPTZ)"
    ).to_pylist()
    return int(rows[0]["n"])
