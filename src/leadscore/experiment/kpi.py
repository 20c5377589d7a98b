"""Experiment stage, the KPI: MQLs per 100 dials within 30 days of contact, per lead and per arm.

Reads ``crm_leads`` and ``crm_tasks`` (``lead_outcomes``); everything else is pure arithmetic.
A lead's dials count when they fall in ``[contact, contact + window]`` and not after its MQL;
its MQL counts when the call is scheduled in the same window. A lead is *matured* once its
window has closed at ``as_of``; only matured leads enter an estimate.

The ratio's variance comes from the delta method: with ``R = sum(y) / sum(d)`` over n
independent units, ``Var(R) ~= Var(y - R d) / (n * mean(d)^2)``. Under assignment by SGA the
units are the SGAs (their totals), which is the cluster-robust version of the same formula.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from leadscore.config import CrmConfig
from leadscore.warehouse import Warehouse, tables


def _lit_ts(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return f"TIMESTAMPTZ '{ts.astimezone(UTC).isoformat()}'"


def outcomes_sql(
    crm: CrmConfig, as_of: datetime, start: datetime | None, window_days: int = 30
) -> str:
    """SQL of one row per contacted lead: owner, contact time, MQL flag, in-window dials."""
    c = crm
    since = f"AND l.{c.contacted_ts_col} >= {_lit_ts(start)}" if start else ""
    window = f"INTERVAL {int(window_days)} DAY"
    return f"""
-- 1. contacted leads up to as_of (conversions before contact are data errors: left out)
WITH lead AS (
  SELECT l.{c.lead_id_col} AS lead_id, l.{c.owner_col} AS owner_id,
         l.{c.contacted_ts_col} AS contact_ts, l.crd_status AS crd_status,
         CASE WHEN l.{c.converted_ts_col} <= {_lit_ts(as_of)}
              THEN l.{c.converted_ts_col} END AS mql_ts
  FROM {tables.LEADS} l
  WHERE l.{c.contacted_ts_col} IS NOT NULL AND l.{c.contacted_ts_col} <= {_lit_ts(as_of)} {since}
    AND (l.{c.converted_ts_col} IS NULL OR l.{c.converted_ts_col} >= l.{c.contacted_ts_col})
),
-- 2. dials in [contact, contact + window], none after the MQL, none after as_of
dial AS (
  SELECT lead.lead_id, COUNT(*) AS n_dials
  FROM lead JOIN {tables.TASKS} t ON t.{c.task_lead_col} = lead.lead_id
  WHERE t.{c.task_type_col} = '{c.dial_type}'
    AND t.{c.task_ts_col} >= lead.contact_ts
    AND t.{c.task_ts_col} <= lead.contact_ts + {window}
    AND (lead.mql_ts IS NULL OR t.{c.task_ts_col} <= lead.mql_ts)
    AND t.{c.task_ts_col} <= {_lit_ts(as_of)}
  GROUP BY lead.lead_id
)
-- 3. one row per lead: the MQL flag in the window, and whether the window has closed
SELECT lead.lead_id, lead.owner_id, lead.contact_ts, lead.crd_status,
       CAST(lead.mql_ts IS NOT NULL AND lead.mql_ts <= lead.contact_ts + {window} AS INTEGER)
         AS mql,
       COALESCE(dial.n_dials, 0) AS n_dials,
       lead.contact_ts + {window} <= {_lit_ts(as_of)} AS matured
FROM lead LEFT JOIN dial USING (lead_id)
ORDER BY lead.contact_ts, lead.lead_id
"""


def lead_outcomes(
    wh: Warehouse,
    crm: CrmConfig,
    as_of: datetime,
    start: datetime | None = None,
    window_days: int = 30,
) -> pd.DataFrame:
    """Per-lead KPI inputs (one row per contacted lead): see :func:`outcomes_sql`."""
    return wh.query(outcomes_sql(crm, as_of, start, window_days)).to_pandas()


@dataclass(frozen=True)
class RatioEstimate:
    """MQLs per dial over a group of units, with its delta-method standard error."""

    n_units: int
    n_leads: int
    mqls: int
    dials: int
    ratio: float
    se: float

    def per_100(self, z: float = 1.959964) -> tuple[float, float, float]:
        """MQLs per 100 dials with its normal interval (``z`` = 1.96 for 95%)."""
        return 100 * self.ratio, 100 * (self.ratio - z * self.se), 100 * (self.ratio + z * self.se)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def ratio_estimate(
    y: np.ndarray, d: np.ndarray, clusters: np.ndarray | None = None
) -> RatioEstimate:
    """``sum(y) / sum(d)`` and its delta-method SE; units are the clusters when given."""
    y, d = np.asarray(y, dtype=float), np.asarray(d, dtype=float)
    n_leads = len(y)
    if clusters is not None:
        frame = pd.DataFrame({"y": y, "d": d, "c": np.asarray(clusters)})
        sums = frame.groupby("c", sort=True)[["y", "d"]].sum()
        y, d = sums["y"].to_numpy(), sums["d"].to_numpy()
    n = len(y)
    if n < 2 or d.sum() <= 0:
        return RatioEstimate(n, n_leads, int(y.sum()), int(d.sum()), float("nan"), float("nan"))
    ratio = y.sum() / d.sum()
    resid = y - ratio * d
    se = float(np.sqrt(resid.var(ddof=1) / n) / d.mean())
    return RatioEstimate(n, n_leads, int(y.sum()), int(d.sum()), float(ratio), se)


@dataclass(frozen=True)
class LiftEstimate:
    """Treatment vs control: relative lift of the ratio, its 95% interval, z and p-value."""

    lift: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    log_ratio: float
    se_log: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def compare_ratios(
    treat: RatioEstimate, control: RatioEstimate, level: float = 0.95, df: int | None = None
) -> LiftEstimate:
    """Lift ``R_t / R_c - 1`` on the log scale: ``Var(log R) ~= (se / R)^2`` per arm.

    With ``df`` (few clusters: ``n_clusters - 2``) the interval and p-value use Student's t,
    and ``z`` is the normal quantile of that p-value, so z-scale boundaries still apply.
    """
    from scipy import stats  # imported on use: the daily run's assignment needs no SciPy

    nan = float("nan")
    if not (treat.ratio > 0 and control.ratio > 0):
        return LiftEstimate(nan, nan, nan, nan, nan, nan, nan)
    log_ratio = float(np.log(treat.ratio / control.ratio))
    se_log = float(np.hypot(treat.se / treat.ratio, control.se / control.ratio))
    stat = log_ratio / se_log if se_log > 0 else nan
    dist = stats.t(df) if df else stats.norm
    q = float(dist.ppf(0.5 + level / 2))
    p_value = float(2 * dist.sf(abs(stat))) if np.isfinite(stat) else nan
    z = float(np.sign(stat) * stats.norm.isf(p_value / 2)) if df and np.isfinite(stat) else stat
    return LiftEstimate(
        lift=float(np.expm1(log_ratio)),
        ci_low=float(np.expm1(log_ratio - q * se_log)),
        ci_high=float(np.expm1(log_ratio + q * se_log)),
        z=z,
        p_value=p_value,
        log_ratio=log_ratio,
        se_log=se_log,
    )


def arm_estimates(frame: pd.DataFrame, cluster_col: str | None = None) -> dict[str, RatioEstimate]:
    """Ratio per arm over the frame's rows (columns ``arm``, ``mql``, ``n_dials``)."""
    out: dict[str, RatioEstimate] = {}
    for arm in ("treatment", "control"):
        rows = frame[frame["arm"] == arm]
        clusters = rows[cluster_col].to_numpy() if cluster_col else None
        out[arm] = ratio_estimate(rows["mql"].to_numpy(), rows["n_dials"].to_numpy(), clusters)
    return out
