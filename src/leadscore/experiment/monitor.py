"""Experiment stage, ``monitor`` (daily): KPI per arm, sample-ratio mismatch, balance, adoption.

Reads per-lead outcomes (``crm_leads``, ``crm_tasks``), ``ab_assignments``, the leads' point-in-
time features (rebuilt into ``ab_covariates``) and ``lead_scores``; returns a
:class:`MonitorResult`. The KPI interval uses matured leads only (their 30-day window closed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import stats

from leadscore.config import Settings
from leadscore.experiment.assign import ARMS, COVARIATES, lead_arms, lead_strata
from leadscore.experiment.kpi import arm_estimates, lead_outcomes
from leadscore.warehouse import Warehouse, tables

SMD_FLAG = 0.1
MIN_LEADS_PER_DAY = 2


@dataclass(frozen=True)
class ArmRow:
    """One arm's running figures."""

    arm: str
    leads: int
    matured_leads: int
    dials: int
    mqls: int
    mqls_per_100_dials: float  # matured leads only
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class SrmCheck:
    """Sample-ratio mismatch: chi-square of the arm counts against the planned 50/50."""

    counts: dict[str, int]
    chi2: float
    p_value: float
    flagged: bool


@dataclass(frozen=True)
class MonitorResult:
    """The daily monitoring figures of one experiment."""

    experiment_id: str
    as_of: str
    arms: list[ArmRow]
    srm: SrmCheck
    balance: list[dict[str, float | str | bool]]
    adoption: dict[str, float | int]
    adoption_by_day: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def srm_check(counts: dict[str, int], alpha: float = 0.001) -> SrmCheck:
    """Chi-square goodness of fit of the arm counts to equal allocation; flag when p < alpha."""
    observed = np.array([counts.get("treatment", 0), counts.get("control", 0)], float)
    if observed.sum() == 0:
        return SrmCheck(counts, 0.0, 1.0, False)
    chi2, p = stats.chisquare(observed)
    return SrmCheck(counts, float(chi2), float(p), bool(p < alpha))


def arm_rows(frame: pd.DataFrame, cluster_col: str | None = None) -> list[ArmRow]:
    """Per-arm counts over all leads; the ratio and its 95% interval on matured leads."""
    matured = frame[frame["matured"].astype(bool)]
    estimates = arm_estimates(matured, cluster_col)
    rows = []
    for arm, est in estimates.items():
        everyone = frame[frame["arm"] == arm]
        value, low, high = est.per_100()
        rows.append(
            ArmRow(
                arm, len(everyone), est.n_leads, int(everyone["n_dials"].sum()),
                int(everyone["mql"].sum()), round(value, 4), round(low, 4), round(high, 4),
            )
        )  # fmt: skip
    return rows


def standardized_difference(treat: np.ndarray, control: np.ndarray) -> float:
    """``(mean_t - mean_c) / sqrt((var_t + var_c) / 2)``; 0 when both are constant."""
    pooled = np.sqrt((np.var(treat, ddof=1) + np.var(control, ddof=1)) / 2)
    diff = float(np.mean(treat) - np.mean(control))
    return diff / pooled if pooled > 0 else 0.0


def balance_table(covariates: pd.DataFrame, arm: pd.Series) -> list[dict[str, float | str | bool]]:
    """Means per arm and standardized differences of each numeric covariate column."""
    is_t = (arm == "treatment").to_numpy()
    rows: list[dict[str, float | str | bool]] = []
    for col in covariates.columns:
        values = covariates[col].to_numpy(float)
        if is_t.sum() < 2 or (~is_t).sum() < 2:
            continue
        smd = standardized_difference(values[is_t], values[~is_t])
        rows.append(
            {
                "covariate": col,
                "treatment_mean": round(float(values[is_t].mean()), 4),
                "control_mean": round(float(values[~is_t].mean()), 4),
                "std_diff": round(smd, 4),
                "flagged": bool(abs(smd) > SMD_FLAG),
            }
        )
    return rows


def lead_covariates(
    wh: Warehouse, cfg: Settings, leads: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
    """Feature availability, CRD match and AUM tier indicators; one row per lead, by id."""
    from leadscore.catalog import load_catalog

    ids = leads["lead_id"].astype(str).tolist()
    strata = lead_strata(wh, cfg, ids, as_of).set_index("unit_id")["stratum"]
    names = load_catalog().model_features()
    present = " + ".join(f'CAST("{n}" IS NOT NULL AS INTEGER)' for n in names)
    avail = (
        wh.query(f"SELECT lead_id, ({present}) / {len(names)}.0 AS availability FROM {COVARIATES}")
        .to_pandas()
        .set_index("lead_id")["availability"]
    )
    out = pd.DataFrame(index=pd.Index(ids, name="lead_id"))
    out["feature_availability"] = avail.reindex(ids).fillna(0.0).to_numpy()
    out["crd_match"] = (leads["crd_status"].to_numpy() == "ok").astype(float)
    for tier in sorted(strata.unique()):
        out[f"aum_tier={tier}"] = (strata.reindex(ids).to_numpy() == tier).astype(float)
    return out


def adoption_by_day(dials: pd.DataFrame, scores: pd.Series) -> pd.DataFrame:
    """Rank correlation of dial order with score order, per SGA-day.

    Args:
        dials: one row per dial of treatment leads: ``owner_id``, ``lead_id``, ``dial_ts``.
        scores: score of each lead (index ``lead_id``); higher means call earlier.

    Returns one row per SGA-day with at least ``MIN_LEADS_PER_DAY`` scored leads dialled:
    ``owner_id``, ``day``, ``n_leads``, ``rho`` (Spearman of dial position vs score rank, ties
    averaged; 1 = called exactly in score order; NaN when every score that day is equal).
    """
    frame = dials.assign(day=pd.to_datetime(dials["dial_ts"], utc=True).dt.floor("D"))
    frame = frame[frame["lead_id"].isin(scores.index)]
    first = frame.sort_values("dial_ts", kind="stable").drop_duplicates(
        ["owner_id", "day", "lead_id"]
    )
    first = first.assign(score=first["lead_id"].map(scores).to_numpy(float))
    groups = first.groupby(["owner_id", "day"], sort=True)
    first = first.assign(
        order_rank=groups.cumcount().to_numpy(float) + 1,
        score_rank=groups["score"].rank(ascending=False, method="average").to_numpy(),
        n_leads=groups["score"].transform("size").to_numpy(),
    )
    first = first[first["n_leads"] >= MIN_LEADS_PER_DAY]
    return _group_pearson(first, "order_rank", "score_rank")


def _group_pearson(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Pearson correlation of two columns within each (owner_id, day) group (vectorised)."""
    keys = ["owner_id", "day"]
    centred = frame[keys].copy()
    grouped = frame.groupby(keys, sort=True)
    centred["dx"] = frame[x] - grouped[x].transform("mean")
    centred["dy"] = frame[y] - grouped[y].transform("mean")
    centred["xy"], centred["xx"] = centred["dx"] * centred["dy"], centred["dx"] ** 2
    centred["yy"] = centred["dy"] ** 2
    sums = centred.groupby(keys, sort=True)[["xy", "xx", "yy"]].sum()
    denom = (sums["xx"] * sums["yy"]) ** 0.5
    out = pd.DataFrame(
        {
            "n_leads": grouped.size(),
            "rho": (sums["xy"] / denom.where(denom > 0)).astype(float),
        }
    ).reset_index()
    return out[["owner_id", "day", "n_leads", "rho"]]


def adoption_summary(by_day: pd.DataFrame, threshold: float = 0.5) -> dict[str, float | int]:
    """Mean rank correlation and the share of SGA-days that follow the score order."""
    rho = by_day["rho"].dropna()
    if rho.empty:
        return {"sga_days": 0, "mean_rho": float("nan"), "share_following": float("nan")}
    return {
        "sga_days": len(rho),
        "mean_rho": round(float(rho.mean()), 4),
        "share_following": round(float((rho >= threshold).mean()), 4),
    }


def _dials_and_scores(
    wh: Warehouse, cfg: Settings, leads: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    c = cfg.crm
    if not leads or not wh.table_exists(tables.LEAD_SCORES):
        return pd.DataFrame(columns=["owner_id", "lead_id", "dial_ts"]), pd.Series(dtype=float)
    id_list = ", ".join("'" + i.replace("'", "''") + "'" for i in leads)
    dials = wh.query(
        f"SELECT {c.task_owner_col} AS owner_id, {c.task_lead_col} AS lead_id,"
        f" {c.task_ts_col} AS dial_ts FROM {tables.TASKS} WHERE {c.task_type_col} ="
        f" '{c.dial_type}' AND {c.task_lead_col} IN ({id_list})"
    ).to_pandas()
    scores = wh.query(
        f"SELECT lead_id, arg_max(score, scored_at) AS score FROM {tables.LEAD_SCORES}"
        f" WHERE lead_id IN ({id_list}) GROUP BY lead_id"
    ).to_pandas()
    return dials, scores.set_index("lead_id")["score"].astype(float)


def experiment_frame(wh: Warehouse, cfg: Settings, as_of: datetime) -> pd.DataFrame:
    """Per-lead outcomes of the experiment's leads, with ``arm`` and ``stratum``."""
    outcomes = lead_outcomes(wh, cfg.crm, as_of, cfg.experiment.start)
    return outcomes.merge(lead_arms(wh, cfg), on="lead_id", how="inner")


def monitor_experiment(wh: Warehouse, cfg: Settings, as_of: datetime) -> MonitorResult:
    """Today's monitoring figures for the configured experiment."""
    exp = cfg.experiment
    frame = experiment_frame(wh, cfg, as_of)
    if frame.empty:
        raise ValueError(f"experiment {exp.experiment_id} has no assigned leads by {as_of}")
    cluster = "owner_id" if exp.unit == "sga" else None
    # the randomised units: leads, or SGAs (whose lead volumes differ by nature, not by chance)
    unit_col = "owner_id" if exp.unit == "sga" else "lead_id"
    counts = {a: int(frame.loc[frame["arm"] == a, unit_col].nunique()) for a in ARMS}
    covariates = lead_covariates(wh, cfg, frame, as_of)
    treated = frame.loc[frame["arm"] == "treatment", "lead_id"].astype(str).tolist()
    by_day = adoption_by_day(*_dials_and_scores(wh, cfg, treated))
    return MonitorResult(
        experiment_id=exp.experiment_id,
        as_of=as_of.isoformat(),
        arms=arm_rows(frame, cluster),
        srm=srm_check(counts, exp.srm_alpha),
        balance=balance_table(covariates, frame["arm"].reset_index(drop=True)),
        adoption=adoption_summary(by_day),
        adoption_by_day=[
            {str(k): v for k, v in r.items()}
            for r in by_day.assign(day=by_day["day"].astype(str)).to_dict("records")
        ],
    )
