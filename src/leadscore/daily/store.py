"""Daily stage, warehouse side: which leads are open, which need a score, the call list, and the
``daily_runs`` and ``daily_events`` tables.

Reads ``crm_leads``, ``lead_scores``, ``score_rejects`` and the vintage views; writes
``daily_runs`` (one row per run: its health) and ``daily_events`` (append-only, per run and lead:
scored, fallback, kept (a retried lead still without vendor data) or rejected), from which
"scored exactly once per model version" and "rejected once per reason" are checked, and which
stops a retried lead from being retried again until something newer happens.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import pandas as pd
import pyarrow as pa

from leadscore.config import Settings
from leadscore.dataset import CRD_REASONS
from leadscore.score.tables import ensure_tables, stage
from leadscore.warehouse import Warehouse, tables
from leadscore.warehouse.sql import text as _lit
from leadscore.warehouse.sql import timestamp as _ts

#: Unmatched at contact, but a later vintage may know the CRD: retried when one arrives.
LATE_VINTAGE_REASONS: Final = ("crd_not_found", "no_snapshot_yet")
DAILY_RUNS: Final = "daily_runs"
DAILY_EVENTS: Final = "daily_events"
_TS = pa.timestamp("us", tz="UTC")
RUN_SCHEMA: Final = pa.schema(
    [
        ("run_id", pa.string()),
        ("as_of", _TS),
        ("model_version", pa.string()),
        ("shadow", pa.bool_()),
        ("record", pa.string()),  # the whole run record as JSON
    ]
)
EVENT_SCHEMA: Final = pa.schema(
    [
        ("run_id", pa.string()),
        ("as_of", _TS),
        ("lead_id", pa.string()),
        ("model_version", pa.string()),
        ("event", pa.string()),  # scored | fallback | kept | rejected
        ("reason", pa.string()),
    ]
)
_SQL = {pa.string(): "VARCHAR", _TS: "TIMESTAMPTZ", pa.bool_(): "BOOLEAN"}


def ensure_daily_tables(wh: Warehouse) -> None:
    """The score tables plus ``daily_runs`` and ``daily_events``."""
    ensure_tables(wh)
    for name, schema in ((DAILY_RUNS, RUN_SCHEMA), (DAILY_EVENTS, EVENT_SCHEMA)):
        cols = ", ".join(f'"{f.name}" {_SQL[f.type]}' for f in schema)
        wh.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({cols})')


def last_as_of(wh: Warehouse) -> datetime | None:
    """``as_of`` of the latest daily run, or None before the first."""
    if not wh.table_exists(DAILY_RUNS):
        return None
    value = wh.query(f'SELECT max(as_of) AS t FROM "{DAILY_RUNS}"').to_pylist()[0]["t"]
    return value if isinstance(value, datetime) else None


def open_leads_sql(cfg: Settings, as_of: datetime) -> str:
    """Leads contacted within the label window before ``as_of`` and not converted by then:
    the leads an SGA may still call. One row per Id."""
    c = cfg.crm
    start = as_of - timedelta(days=cfg.dataset.label_window_days)
    return f"""SELECT CAST("{c.lead_id_col}" AS VARCHAR) AS lead_id,
  "{c.contacted_ts_col}" AS contact_ts, "{c.owner_col}" AS owner_id,
  "{c.modified_ts_col}" AS modified_ts
FROM {tables.LEADS}
WHERE "{c.contacted_ts_col}" > {_ts(start)} AND "{c.contacted_ts_col}" <= {_ts(as_of)}
  AND ("{c.converted_ts_col}" IS NULL OR "{c.converted_ts_col}" > {_ts(as_of)})
QUALIFY row_number() OVER (PARTITION BY "{c.lead_id_col}"
  ORDER BY "{c.contacted_ts_col}") = 1"""


def select_candidates(
    wh: Warehouse, cfg: Settings, as_of: datetime, version: str, fallback: str
) -> pd.DataFrame:
    """Open leads that need scoring now: ``new`` (no score from this model or its fallback,
    not rejected by it) and ``retry`` (fallback-scored or rejected, and the lead record changed
    since, e.g. a corrected CRD; or fallback-scored because no vintage knew the CRD, and a
    vintage arrived since). Ordered by contact time, then Id."""
    crd_reasons = ", ".join(_lit(r) for r in CRD_REASONS)
    late = ", ".join(_lit(f"no_vendor_data: {r}") for r in LATE_VINTAGE_REASONS)
    sql = f"""WITH open AS ({open_leads_sql(cfg, as_of)}),
main AS (SELECT lead_id FROM {tables.LEAD_SCORES} WHERE model_version = {_lit(version)}),
fb AS (SELECT lead_id, max(scored_at) AS at, max(flag) AS flag FROM {tables.LEAD_SCORES}
       WHERE model_version = {_lit(fallback)} GROUP BY lead_id),
newest AS ({newest_vintage_sql(as_of)}),
seen AS (SELECT lead_id, max(as_of) AS at FROM {DAILY_EVENTS} GROUP BY lead_id),
rej AS (SELECT lead_id, max(rejected_at) AS at FROM {tables.SCORE_REJECTS}
        WHERE model_version = {_lit(version)} AND reason NOT IN ({crd_reasons})
        GROUP BY lead_id)
SELECT o.lead_id, o.contact_ts,
  CASE WHEN fb.lead_id IS NULL AND rej.lead_id IS NULL THEN 'new' ELSE 'retry' END AS why,
  fb.lead_id IS NOT NULL AS has_fallback
FROM open AS o
LEFT JOIN fb ON fb.lead_id = o.lead_id
LEFT JOIN rej ON rej.lead_id = o.lead_id
LEFT JOIN seen ON seen.lead_id = o.lead_id
WHERE o.lead_id NOT IN (SELECT lead_id FROM main)
  AND (fb.lead_id IS NULL OR o.modified_ts > greatest(fb.at, coalesce(seen.at, fb.at))
       OR (fb.flag IN ({late})
           AND (SELECT t FROM newest) > greatest(fb.at, coalesce(seen.at, fb.at))))
  AND (rej.lead_id IS NULL OR o.modified_ts > greatest(rej.at, coalesce(seen.at, rej.at)))
ORDER BY o.contact_ts, o.lead_id"""
    return wh.query(sql).to_pandas()


def call_list(
    wh: Warehouse, cfg: Settings, as_of: datetime, version: str, owner: str | None = None
) -> pd.DataFrame:
    """The open leads in call order (tier, then score, then earliest contact): the main
    model's score where there is one, else its fallback's. Shadow scores never appear."""
    owner_filter = "" if owner is None else f"AND o.owner_id = {_lit(owner)}"
    sql = f"""WITH open AS ({open_leads_sql(cfg, as_of)}),
best AS (
  SELECT *, row_number() OVER (PARTITION BY lead_id
    ORDER BY CASE WHEN model_version = {_lit(version)} THEN 0 ELSE 1 END, scored_at DESC) AS rn
  FROM {tables.LEAD_SCORES}
  WHERE model_version IN ({_lit(version)}, {_lit(version + "-fallback")})
    AND shadow IS NOT TRUE AND scored_at <= {_ts(as_of)}
)
SELECT o.lead_id, o.owner_id, o.contact_ts, b.tier, b.score, b.bucket, b.probability,
  b.flag, b.model_version, b.drivers_text
FROM open AS o JOIN best AS b ON b.lead_id = o.lead_id AND b.rn = 1
WHERE TRUE {owner_filter}
ORDER BY b.tier, b.score DESC, o.contact_ts, o.lead_id"""
    return wh.query(sql).to_pandas()


def n_open_unscored(wh: Warehouse, cfg: Settings, as_of: datetime, version: str) -> int:
    """Open leads with neither a main nor a fallback score (0 after a healthy run)."""
    sql = f"""WITH open AS ({open_leads_sql(cfg, as_of)})
SELECT count(*) AS n FROM open WHERE lead_id NOT IN (
  SELECT lead_id FROM {tables.LEAD_SCORES}
  WHERE model_version IN ({_lit(version)}, {_lit(version + "-fallback")}))"""
    return int(wh.query(sql).to_pylist()[0]["n"])


def newest_vintage_sql(as_of: datetime) -> str:
    """One row, column ``t``: availability time of the newest reps vintage at ``as_of``."""
    return (
        f"SELECT max(available_at) AS t FROM {tables.REPS_ALL_VINTAGES} "
        f"WHERE available_at <= {_ts(as_of)}"
    )


def newest_vintage(wh: Warehouse, as_of: datetime) -> datetime | None:
    """When the newest reps vintage available at ``as_of`` became available."""
    if not wh.table_exists(tables.REPS_ALL_VINTAGES):
        return None
    value = wh.query(newest_vintage_sql(as_of)).to_pylist()[0]["t"]
    return value if isinstance(value, datetime) else None


def newest_vintage_age_days(wh: Warehouse, as_of: datetime) -> float | None:
    """Days between ``as_of`` and the newest reps vintage available at it."""
    newest = newest_vintage(wh, as_of)
    return None if newest is None else (as_of - newest).total_seconds() / 86_400


def stage_events(wh: Warehouse, events: pd.DataFrame) -> None:
    """Load this run's events into the staging table (before the transaction)."""
    stage(wh, DAILY_EVENTS, events, EVENT_SCHEMA)


def insert_staged_events(wh: Warehouse) -> None:
    """Append the staged events. Call inside the run's transaction."""
    wh.execute(f'INSERT INTO "{DAILY_EVENTS}" SELECT * FROM "_stage_{DAILY_EVENTS}"')


def clear_crd_rejects(wh: Warehouse, version: str) -> None:
    """Leads now scored by the fallback are not rejects of the main model any more: drop their
    unmatched-CRD reject rows (left by a ``score`` run). Call inside the transaction."""
    reasons = ", ".join(_lit(r) for r in CRD_REASONS)
    wh.execute(
        f"DELETE FROM {tables.SCORE_REJECTS} WHERE model_version = {_lit(version)} "
        f"AND reason IN ({reasons}) AND lead_id IN (SELECT lead_id FROM "
        f"{tables.LEAD_SCORES} WHERE model_version = {_lit(version + '-fallback')})"
    )


def set_fallback_flag(wh: Warehouse, fallback: str, lead_id: str, flag: str) -> None:
    """Keep a fallback score's reason current (a retried lead still without vendor data)."""
    wh.execute(
        f"UPDATE {tables.LEAD_SCORES} SET flag = {_lit(flag)} WHERE lead_id = {_lit(lead_id)} "
        f"AND model_version = {_lit(fallback)}"
    )


def mark_shadow_exported(wh: Warehouse, run_id: str) -> None:
    """Shadow scores are never exported: mark them so no later export picks them up."""
    wh.execute(
        f"UPDATE {tables.LEAD_SCORES} SET sf_export_run_id = {_lit('shadow:' + run_id)} "
        f"WHERE run_id = {_lit(run_id)} AND sf_export_run_id IS NULL"
    )


def record_daily_run(wh: Warehouse, run_id: str, as_of: datetime, version: str,
                     shadow: bool, record_json: str) -> None:  # fmt: skip
    """Upsert the run's row in ``daily_runs``."""
    frame = pd.DataFrame(
        [{"run_id": run_id, "as_of": as_of, "model_version": version, "shadow": shadow,
          "record": record_json}]
    )  # fmt: skip
    stage(wh, DAILY_RUNS, frame, RUN_SCHEMA)
    with wh.transaction():
        wh.execute(f'DELETE FROM "{DAILY_RUNS}" WHERE run_id = {_lit(run_id)}')
        wh.execute(f'INSERT INTO "{DAILY_RUNS}" SELECT * FROM "_stage_{DAILY_RUNS}"')


def drop_staging(wh: Warehouse) -> None:
    """Drop the staging tables a run leaves behind."""
    for name in (DAILY_RUNS, DAILY_EVENTS, tables.LEAD_SCORES, tables.SCORE_REJECTS):
        wh.execute(f'DROP TABLE IF EXISTS "_stage_{name}"')
