"""Monitoring stage, warehouse side: ``monitor_bins`` (each scored lead's reference bin per
feature and for the score) and ``monitor_alerts`` (one open alert per rule and subject).

Reads ``lead_scores``, the scoring set built for a run's leads and ``crm_leads``; writes the
two monitoring tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.config import Settings
from leadscore.monitor.reference import SCORE_FEATURE, assign_bins
from leadscore.warehouse import Warehouse, tables
from leadscore.warehouse.sql import text as lit
from leadscore.warehouse.sql import timestamp as ts

BINS = "monitor_bins"
ALERTS = "monitor_alerts"
_TS = pa.timestamp("us", tz="UTC")
BIN_SCHEMA = pa.schema(
    [
        ("lead_id", pa.string()),
        ("scored_at", _TS),
        ("feature", pa.string()),
        ("bin", pa.int64()),
        ("contact_ts", _TS),
    ]
)
_DDL = {
    BINS: '"lead_id" VARCHAR, "scored_at" TIMESTAMPTZ, "feature" VARCHAR, "bin" BIGINT, '
    '"contact_ts" TIMESTAMPTZ',
    ALERTS: '"rule" VARCHAR, "subject" VARCHAR, "level" VARCHAR, "opened_at" TIMESTAMPTZ, '
    '"last_seen" TIMESTAMPTZ, "closed_at" TIMESTAMPTZ, "value" DOUBLE, "threshold" DOUBLE, '
    '"detail" VARCHAR, "clear_runs" BIGINT',
}
#: Columns added after the first release: tables created before them gain them in place.
_ADDED = {BINS: (("contact_ts", "TIMESTAMPTZ"),), ALERTS: (("clear_runs", "BIGINT"),)}


def ensure_tables(wh: Warehouse) -> None:
    """Create the monitoring tables when missing."""
    for name, cols in _DDL.items():
        wh.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({cols})')
        for col, sql_type in _ADDED[name]:
            wh.execute(f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS "{col}" {sql_type}')


def bin_rows(
    reference: Mapping[str, Any], features: pd.DataFrame, scores: pd.DataFrame
) -> pd.DataFrame:
    """Long rows (lead, scored_at, feature, bin) of the scored leads under the reference.

    Args:
        features: the scoring set of the leads (``lead_id`` and feature columns).
        scores: their ``lead_scores`` rows (``lead_id``, ``scored_at``, ``contact_ts``,
            ``probability``).
    """
    ref = reference["features"]
    frame = scores.merge(features, on="lead_id", how="left", suffixes=("", "_f"))
    parts = []
    for name, spec in ref.items():
        col = "probability" if name == SCORE_FEATURE else name
        values = frame[col] if col in frame.columns else pd.Series([None] * len(frame))
        parts.append(
            pd.DataFrame(
                {
                    "lead_id": frame["lead_id"].astype(str),
                    "scored_at": frame["scored_at"],
                    "feature": name,
                    "bin": assign_bins(spec, values.reset_index(drop=True)).astype(np.int64),
                    "contact_ts": frame["contact_ts"],
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=BIN_SCHEMA.names)


def append_bins(wh: Warehouse, rows: pd.DataFrame) -> None:
    """Append bin rows (a lead already binned is replaced)."""
    if rows.empty:
        return
    data = pa.Table.from_pandas(rows[BIN_SCHEMA.names], schema=BIN_SCHEMA, preserve_index=False)
    wh.load_arrow("_stage_monitor_bins", data, "replace")
    with wh.transaction():
        wh.execute(
            f'DELETE FROM "{BINS}" WHERE lead_id IN (SELECT lead_id FROM "_stage_monitor_bins")'
        )
        names = ", ".join(f'"{c}"' for c in BIN_SCHEMA.names)
        wh.execute(f'INSERT INTO "{BINS}" ({names}) SELECT {names} FROM "_stage_monitor_bins"')
    wh.execute('DROP TABLE IF EXISTS "_stage_monitor_bins"')


def window_counts(wh: Warehouse, as_of: datetime, days: int) -> pd.DataFrame:
    """Bin counts per feature over binned leads contacted in ``(as_of - days, as_of]``."""
    start = as_of - timedelta(days=days)
    return wh.query(
        f'SELECT feature, bin, count(*) AS n FROM "{BINS}" WHERE contact_ts > {ts(start)} '
        f"AND contact_ts <= {ts(as_of)} GROUP BY 1, 2"
    ).to_pandas()


def span_days(wh: Warehouse, as_of: datetime) -> float | None:
    """Days between the earliest contact of a binned lead and ``as_of`` (None: nothing
    binned yet)."""
    first = wh.query(f'SELECT min(contact_ts) AS t FROM "{BINS}"').to_pylist()[0]["t"]
    return None if first is None else (as_of - first).total_seconds() / 86_400


def window_weeks(window_days: int, span: float | None, min_span_days: int) -> int:
    """Whole weeks the PSI window covers: ``window_days`` rounded to whole weeks (at least
    one), cut to the whole weeks of contacts binned so far; 0 while fewer than
    ``min_span_days`` (or a week) are binned: PSI is then reported, not alerted.

    A window of whole weeks holds every weekday equally often, so a weekday feature does not
    drift merely because the window starts on a Friday.
    """
    weeks = max(1, round(window_days / 7))
    if span is None or span < min_span_days:
        return 0
    return min(weeks, int(span // 7))


def unbinned_runs(wh: Warehouse, version: str) -> list[tuple[str, datetime]]:
    """``(run_id, scored_at)`` of every run whose main-model scores are not binned yet (the
    initial scoring included), oldest first."""
    rows = wh.query(
        f'SELECT s.run_id, max(s.scored_at) AS t FROM "{tables.LEAD_SCORES}" s '
        f"WHERE s.model_version = {lit(version)} AND coalesce(s.shadow, false) = false "
        f'AND NOT EXISTS (SELECT 1 FROM "{BINS}" b WHERE b.lead_id = s.lead_id) '
        "GROUP BY 1 ORDER BY 2, 1"
    ).to_pylist()
    return [(str(r["run_id"]), r["t"]) for r in rows]


def matured_scores(
    wh: Warehouse, cfg: Settings, version: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """Main-model scores of leads contacted in ``(start, end]`` and their label: converted
    within the label window of contact, as the CRM knows it now. ``scored_open`` says whether
    a daily run scored the lead (it scores only leads not converted yet)."""
    c = cfg.crm
    days = cfg.dataset.label_window_days
    scored_open = (
        'coalesce(s.run_id IN (SELECT run_id FROM "daily_runs"), false)'
        if wh.table_exists("daily_runs")
        else "false"
    )
    return wh.query(
        f"SELECT s.lead_id, s.contact_ts, s.scored_at, {scored_open} AS scored_open, "
        "s.probability, s.aum_tier, "
        f'CASE WHEN l."{c.converted_ts_col}" IS NOT NULL AND l."{c.converted_ts_col}" >= '
        f"s.contact_ts AND l.\"{c.converted_ts_col}\" <= s.contact_ts + INTERVAL '{days} days' "
        f'THEN 1 ELSE 0 END AS y FROM "{tables.LEAD_SCORES}" s JOIN "{tables.LEADS}" l '
        f'ON l."{c.lead_id_col}" = s.lead_id WHERE s.model_version = {lit(version)} '
        f"AND s.contact_ts > {ts(start)} AND s.contact_ts <= {ts(end)} "
        "AND coalesce(s.shadow, false) = false"
    ).to_pandas()


def open_alerts(wh: Warehouse) -> pd.DataFrame:
    """Alerts not closed yet."""
    return wh.query(f'SELECT * FROM "{ALERTS}" WHERE closed_at IS NULL').to_pandas()


def all_alerts(wh: Warehouse) -> pd.DataFrame:
    """Every alert ever opened, oldest first."""
    return wh.query(f'SELECT * FROM "{ALERTS}" ORDER BY opened_at, rule, subject').to_pandas()
