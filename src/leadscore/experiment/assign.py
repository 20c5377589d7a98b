"""Experiment stage, ``assign``: reproducible arms for new leads (or SGAs), blocked by AUM tier.

Reads ``crm_leads`` and the leads' point-in-time AUM tier (the catalog's ``aum_tier`` segment,
built through the scoring SQL into ``ab_covariates``); writes ``ab_assignments`` (append-only:
a unit keeps its arm). Each unit's randomness is a salted, seeded SHA-256 hash of its id, so
the same ids, salt and seed always give the same arms, on any machine, in any order of runs.

Blocking: within each (batch, stratum), units are ordered by their hash and paired; a second
hash of the pair's first unit decides which of the two is treated. Each unit is treated with
probability 1/2 and each stratum's arms differ by at most one per batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.config import ExperimentConfig, Settings
from leadscore.experiment.kpi import _lit_ts
from leadscore.warehouse import Warehouse, tables

ASSIGNMENTS = "ab_assignments"
COVARIATES = "ab_covariates"
ARMS = ("treatment", "control")
SGA_STRATUM = "all SGAs"
_TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("experiment_id", pa.string()),
        ("unit", pa.string()),
        ("unit_id", pa.string()),
        ("stratum", pa.string()),
        ("arm", pa.string()),
        ("hash_u", pa.float64()),
        ("assigned_at", _TS),
    ]
)


def unit_hash(unit_id: str, salt: str, seed: int, purpose: str = "order") -> float:
    """A uniform number in [0, 1) from SHA-256 of ``salt|seed|purpose|unit_id``."""
    digest = hashlib.sha256(f"{salt}|{seed}|{purpose}|{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_units(units: pd.DataFrame, salt: str, seed: int) -> pd.DataFrame:
    """Arms for one batch of units (columns ``unit_id``, ``stratum``); one row per unit.

    Returns the units with ``hash_u`` and ``arm``, in the input order.
    """
    out = units[["unit_id", "stratum"]].copy()
    out["unit_id"] = out["unit_id"].astype(str)
    out["hash_u"] = [unit_hash(u, salt, seed) for u in out["unit_id"]]
    flips = np.array([unit_hash(u, salt, seed, "flip") < 0.5 for u in out["unit_id"]], bool)
    out["_flip"] = flips
    arms = pd.Series("control", index=out.index)
    for _, group in out.sort_values(["stratum", "hash_u"]).groupby("stratum", sort=True):
        idx, flip = group.index.to_numpy(), group["_flip"].to_numpy()
        pos = np.arange(len(idx))
        first_treated = flip[pos - pos % 2]  # the pair's first unit decides the pair
        treated = np.where(pos % 2 == 0, first_treated, ~first_treated)
        arms.loc[idx] = np.where(treated, "treatment", "control")
    out["arm"] = arms
    return out.drop(columns="_flip")


@dataclass(frozen=True)
class AssignResult:
    """What one ``assign`` run added."""

    experiment_id: str
    unit: str
    n_new: int
    n_total: int
    by_arm: dict[str, int]
    by_stratum_arm: dict[str, dict[str, int]]


def existing_units(wh: Warehouse, experiment_id: str) -> set[str]:
    """Units already assigned in this experiment."""
    if not wh.table_exists(ASSIGNMENTS):
        return set()
    rows = wh.query(
        f"SELECT unit_id FROM {ASSIGNMENTS} WHERE experiment_id = '{experiment_id}'"
    ).column("unit_id")
    return set(rows.to_pylist())


def lead_strata(
    wh: Warehouse, cfg: Settings, lead_ids: list[str], as_of: datetime
) -> pd.DataFrame:
    """Each lead's AUM tier at its point in time, through the scoring SQL (``ab_covariates``)."""
    from leadscore.catalog import load_catalog
    from leadscore.dataset import build_scoring_set

    catalog = load_catalog()
    build_scoring_set(wh, cfg, catalog, lead_ids, as_of=as_of, table=COVARIATES)
    frame = wh.query(f"SELECT lead_id, aum_tier FROM {COVARIATES}").to_pandas()
    strata = frame.set_index("lead_id")["aum_tier"].fillna("Unknown")
    return pd.DataFrame(
        {"unit_id": lead_ids, "stratum": strata.reindex(lead_ids).fillna("Unknown")}
    )


def _candidates(wh: Warehouse, cfg: Settings, as_of: datetime) -> list[str]:
    c, start = cfg.crm, cfg.experiment.start
    col = c.owner_col if cfg.experiment.unit == "sga" else c.lead_id_col
    since = f"AND {c.contacted_ts_col} >= {_lit_ts(start)}" if start else ""
    rows = wh.query(
        f"SELECT DISTINCT {col} AS unit_id FROM {tables.LEADS} WHERE {c.contacted_ts_col}"
        f" <= {_lit_ts(as_of)} AND {col} IS NOT NULL {since} ORDER BY 1"
    )
    return [str(u) for u in rows.column("unit_id").to_pylist()]


def assign_new(wh: Warehouse, cfg: Settings, as_of: datetime) -> AssignResult:
    """Assign every unit contacted by ``as_of`` that has no arm yet; append to the table."""
    exp = cfg.experiment
    seen = existing_units(wh, exp.experiment_id)
    new = [u for u in _candidates(wh, cfg, as_of) if u not in seen]
    if exp.unit == "sga":
        units = pd.DataFrame({"unit_id": new, "stratum": SGA_STRATUM})
    else:
        units = (
            lead_strata(wh, cfg, new, as_of)
            if new
            else pd.DataFrame(columns=["unit_id", "stratum"])
        )
    assigned = assign_units(units, exp.salt, cfg.project.global_seed)
    if len(assigned):
        save_assignments(wh, assigned, exp, as_of)
    return summarize(wh, exp, n_new=len(assigned))


def save_assignments(
    wh: Warehouse, assigned: pd.DataFrame, exp: ExperimentConfig, as_of: datetime
) -> None:
    """Append assigned units (from :func:`assign_units`) to ``ab_assignments``."""
    n = len(assigned)
    table = pa.table(
        {
            "experiment_id": pa.array([exp.experiment_id] * n, pa.string()),
            "unit": pa.array([exp.unit] * n, pa.string()),
            "unit_id": pa.array(assigned["unit_id"].astype(str).tolist(), pa.string()),
            "stratum": pa.array(assigned["stratum"].astype(str).tolist(), pa.string()),
            "arm": pa.array(assigned["arm"].tolist(), pa.string()),
            "hash_u": pa.array(assigned["hash_u"].astype(float).tolist(), pa.float64()),
            "assigned_at": pa.array([as_of.astimezone(UTC)] * n, _TS),
        },
        schema=SCHEMA,
    )
    with wh.transaction():
        wh.load_arrow(ASSIGNMENTS, table, mode="append")


def assignments(wh: Warehouse, experiment_id: str) -> pd.DataFrame:
    """The experiment's rows of ``ab_assignments`` (empty frame when there are none)."""
    if not wh.table_exists(ASSIGNMENTS):
        return pd.DataFrame(columns=SCHEMA.names)
    return wh.query(
        f"SELECT * FROM {ASSIGNMENTS} WHERE experiment_id = '{experiment_id}' ORDER BY unit_id"
    ).to_pandas()


def summarize(wh: Warehouse, exp: ExperimentConfig, n_new: int) -> AssignResult:
    """Counts per arm and per stratum x arm of the experiment's assignments."""
    rows = assignments(wh, exp.experiment_id)
    by_stratum = rows.groupby(["stratum", "arm"]).size().unstack(fill_value=0)
    return AssignResult(
        experiment_id=exp.experiment_id,
        unit=exp.unit,
        n_new=n_new,
        n_total=len(rows),
        by_arm={a: int((rows["arm"] == a).sum()) for a in ARMS},
        by_stratum_arm={
            str(s): {str(a): int(v) for a, v in r.items()} for s, r in by_stratum.iterrows()
        },
    )


def lead_arms(wh: Warehouse, cfg: Settings) -> pd.DataFrame:
    """Arm of every lead in the experiment (``lead_id``, ``arm``, ``stratum``).

    Under assignment by SGA a lead takes its owner's arm and its stratum is the SGA stratum.
    """
    exp, c = cfg.experiment, cfg.crm
    rows = assignments(wh, exp.experiment_id)
    if exp.unit == "lead" or rows.empty:
        return rows.rename(columns={"unit_id": "lead_id"})[["lead_id", "arm", "stratum"]]
    leads = wh.query(
        f"SELECT {c.lead_id_col} AS lead_id, {c.owner_col} AS owner_id FROM {tables.LEADS}"
    ).to_pandas()
    merged = leads.merge(rows, left_on="owner_id", right_on="unit_id", how="inner")
    return merged[["lead_id", "arm", "stratum"]]
