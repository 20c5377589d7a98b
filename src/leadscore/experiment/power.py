"""Experiment stage, ``plan``: sample size and duration of the A/B test, measured from the data.

Reads per-lead outcomes (``kpi.lead_outcomes``: ``crm_leads`` + ``crm_tasks``); writes nothing.
The KPI is a ratio (MQLs per dial); its per-lead variance comes from the delta method
(``Var(y - R d) / mean(d)^2``). The treatment arm is modelled as the control arm with a higher
MQL rate and the same dial distribution given the outcome, the rate chosen so that the ratio
rises by ``adoption * target_lift`` (non-adopters dilute the effect). Sample sizes come from
statsmodels' ``NormalIndPower``; assignment by SGA multiplies them by the design effect
``1 + (m - 1) ICC`` with the ICC of the linearised KPI between SGAs, estimated from the data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from leadscore.config import ExperimentConfig

Unit = Literal["lead", "sga"]
FOLLOW_UP_WEEKS = 30 / 7


@dataclass(frozen=True)
class KpiMoments:
    """What the power computation needs from the control world, measured on matured leads."""

    n_leads: int
    mql_rate: float  # MQLs per lead (p)
    ratio: float  # MQLs per dial (R)
    dials_mql: tuple[float, float]  # mean and second moment of dials of MQL leads
    dials_other: tuple[float, float]  # the same for leads without an MQL
    icc: float  # intra-SGA correlation of the linearised KPI (clipped at 0)
    n_sgas: int

    def lead_variance(self, p: float) -> tuple[float, float]:
        """Ratio and per-lead delta-method variance when the MQL rate is ``p``."""
        m1, s1 = self.dials_mql
        m0, s0 = self.dials_other
        mean_d = p * m1 + (1 - p) * m0
        ratio = p / mean_d
        second = p * s1 + (1 - p) * s0
        var = p - 2 * ratio * p * m1 + ratio**2 * second
        return ratio, var / mean_d**2

    def rate_for_ratio(self, ratio: float) -> float:
        """The MQL rate whose ratio is ``ratio`` (dials given the outcome held fixed)."""
        m1, m0 = self.dials_mql[0], self.dials_other[0]
        return ratio * m0 / (1 - ratio * m1 + ratio * m0)


@dataclass(frozen=True)
class Design:
    """One design: unit of assignment and adoption -> leads per arm and weeks of enrolment."""

    unit: Unit
    adoption: float
    leads_per_arm: int | None  # None: not reachable with the SGAs there are
    weeks: float | None
    design_effect: float
    weeks_to_readout: float | None = None


@dataclass(frozen=True)
class PowerPlan:
    """The plan's inputs (measured) and its designs, plus the verdict on the planned weeks."""

    baseline_rate: float
    baseline_mqls_per_100_dials: float
    weekly_leads: float
    n_baseline_leads: int
    icc: float
    n_sgas: int
    target_lift: float
    alpha: float
    power: float
    planned_weeks: int
    designs: list[Design]
    reference_proportion: list[Design] = field(default_factory=list)
    verdict: str = ""
    method: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def design(self, unit: Unit, adoption: float) -> Design:
        """The ratio-KPI design for ``unit`` at ``adoption``."""
        for d in self.designs:
            if d.unit == unit and math.isclose(d.adoption, adoption):
                return d
        raise KeyError(f"no design for unit={unit}, adoption={adoption}")


def _moments(values: np.ndarray) -> tuple[float, float]:
    return (float(values.mean()), float((values**2).mean())) if len(values) else (0.0, 0.0)


def anova_icc(values: np.ndarray, groups: np.ndarray) -> float:
    """One-way ANOVA ICC with unequal group sizes (Searle's ``n0``), clipped at 0."""
    frame = pd.DataFrame({"v": values, "g": groups})
    sizes = frame.groupby("g")["v"].size()
    k, n = len(sizes), len(frame)
    if k < 2 or n <= k:
        return 0.0
    means = frame.groupby("g")["v"].mean()
    grand = frame["v"].mean()
    msb = float((sizes * (means - grand) ** 2).sum() / (k - 1))
    msw = float(((frame["v"] - frame["g"].map(means)) ** 2).sum() / (n - k))
    n0 = (n - float((sizes**2).sum()) / n) / (k - 1)
    denom = msb + (n0 - 1) * msw
    return max(0.0, (msb - msw) / denom) if denom > 0 else 0.0


def measure_moments(matured: pd.DataFrame) -> KpiMoments:
    """KPI moments of matured leads (columns ``mql``, ``n_dials``, ``owner_id``)."""
    if matured.empty or matured["n_dials"].sum() == 0:
        raise ValueError("no matured leads with dials to measure the baseline from")
    y = matured["mql"].to_numpy(float)
    d = matured["n_dials"].to_numpy(float)
    ratio = y.sum() / d.sum()
    return KpiMoments(
        n_leads=len(y),
        mql_rate=float(y.mean()),
        ratio=float(ratio),
        dials_mql=_moments(d[y == 1]),
        dials_other=_moments(d[y == 0]),
        icc=anova_icc(y - ratio * d, matured["owner_id"].fillna("").to_numpy()),
        n_sgas=int(matured["owner_id"].nunique()),
    )


def n_per_arm(
    delta: float, var_control: float, var_treat: float, alpha: float, power: float
) -> float:
    """Leads per arm to detect ``delta`` with per-lead variances (statsmodels NormalIndPower)."""
    effect = delta / math.sqrt((var_control + var_treat) / 2)
    return float(NormalIndPower().solve_power(effect, alpha=alpha, power=power, ratio=1.0))


def cluster_leads_per_arm(n_ind: float, icc: float, n_clusters: int) -> tuple[float | None, float]:
    """Leads per arm under assignment by cluster, solving ``N = n (1 + (m - 1) icc)``.

    ``m = N / (n_clusters / 2)`` leads per cluster over the test. None when the design effect
    grows faster than the sample: no duration reaches the power with these clusters.
    """
    per_arm_clusters = n_clusters / 2
    denom = 1 - n_ind * icc / per_arm_clusters
    if denom <= 0:
        return None, math.inf
    total = n_ind * (1 - icc) / denom
    return total, 1 + (total / per_arm_clusters - 1) * icc


def _design(unit: Unit, adoption: float, n_ind: float, m: KpiMoments, weekly: float) -> Design:
    leads: float | None = n_ind
    deff = 1.0
    if unit == "sga":
        leads, deff = cluster_leads_per_arm(n_ind, m.icc, m.n_sgas)
    if leads is None:
        return Design(unit, adoption, None, None, deff, None)
    weeks = 2 * math.ceil(leads) / weekly
    return Design(
        unit, adoption, math.ceil(leads), round(weeks, 1), round(deff, 3),
        round(weeks + FOLLOW_UP_WEEKS, 1),
    )  # fmt: skip


def ratio_designs(
    m: KpiMoments, weekly: float, lift: float, alpha: float, power: float,
    adoptions: tuple[float, ...],
) -> list[Design]:  # fmt: skip
    """Ratio-KPI designs for both units at each adoption."""
    r0, var0 = m.lead_variance(m.mql_rate)
    out = []
    for adoption in adoptions:
        r1 = r0 * (1 + adoption * lift)
        _, var1 = m.lead_variance(m.rate_for_ratio(r1))
        n_ind = n_per_arm(r1 - r0, var0, var1, alpha, power)
        out += [_design(unit, adoption, n_ind, m, weekly) for unit in ("lead", "sga")]
    return out


def proportion_designs(
    m: KpiMoments, weekly: float, lift: float, alpha: float, power: float,
    adoptions: tuple[float, ...],
) -> list[Design]:  # fmt: skip
    """Reference: the MQL rate per lead (Cohen's h, statsmodels), lead-level assignment."""
    out = []
    for adoption in adoptions:
        p1 = m.mql_rate * (1 + adoption * lift)
        h = proportion_effectsize(p1, m.mql_rate)
        n = float(NormalIndPower().solve_power(h, alpha=alpha, power=power, ratio=1.0))
        out.append(_design("lead", adoption, n, m, weekly))
    return out


def weekly_flow(outcomes: pd.DataFrame, as_of: datetime, weeks: int) -> float:
    """Contacted leads per week over the ``weeks`` weeks before ``as_of``."""
    since = pd.Timestamp(as_of - timedelta(weeks=weeks))
    return float((outcomes["contact_ts"] > since).sum() / weeks)


def baseline_leads(outcomes: pd.DataFrame, as_of: datetime, weeks: int) -> pd.DataFrame:
    """Matured leads contacted in the ``weeks`` weeks before their windows could close."""
    matured = outcomes[outcomes["matured"].astype(bool)]
    last = matured["contact_ts"].max()
    return matured[matured["contact_ts"] > last - pd.Timedelta(weeks=weeks)]


def _verdict(plan_weeks: int, primary: Design, diluted: Design) -> str:
    def says(d: Design) -> str:
        if d.weeks is None:
            return f"{d.unit}-level at {d.adoption:.0%} adoption cannot reach the power"
        return (
            f"{d.unit}-level at {d.adoption:.0%} adoption needs {d.leads_per_arm:,} leads per arm"
            f" = {d.weeks:.1f} weeks of enrolment (+{FOLLOW_UP_WEEKS:.1f} weeks for the last"
            " leads to mature)"
        )

    enough = diluted.weeks is not None and diluted.weeks <= plan_weeks
    head = f"A {plan_weeks}-week test is {'enough' if enough else 'NOT enough'}"
    return f"{head}: {says(diluted)}; {says(primary)}."


def plan_experiment(outcomes: pd.DataFrame, as_of: datetime, cfg: ExperimentConfig) -> PowerPlan:
    """Sample size and duration for the ratio KPI, from per-lead outcomes up to ``as_of``."""
    moments = measure_moments(baseline_leads(outcomes, as_of, cfg.baseline_weeks))
    weekly = weekly_flow(outcomes, as_of, cfg.flow_weeks)
    if weekly <= 0:
        raise ValueError(f"no leads contacted in the {cfg.flow_weeks} weeks before {as_of}")
    adoptions = tuple(sorted({1.0, cfg.adoption}, reverse=True))
    args = (moments, weekly, cfg.target_lift, cfg.alpha, cfg.power, adoptions)
    designs = ratio_designs(*args)
    plan = PowerPlan(
        baseline_rate=round(moments.mql_rate, 5),
        baseline_mqls_per_100_dials=round(100 * moments.ratio, 4),
        weekly_leads=round(weekly, 1),
        n_baseline_leads=moments.n_leads,
        icc=round(moments.icc, 5),
        n_sgas=moments.n_sgas,
        target_lift=cfg.target_lift,
        alpha=cfg.alpha,
        power=cfg.power,
        planned_weeks=cfg.planned_weeks,
        designs=designs,
        reference_proportion=proportion_designs(*args),
        method=METHOD,
    )
    primary = plan.design(cfg.unit, 1.0)
    diluted = plan.design(cfg.unit, cfg.adoption)
    return replace(plan, verdict=_verdict(cfg.planned_weeks, primary, diluted))


METHOD = (
    "Ratio KPI (MQLs per dial within 30 days) by the delta method: per-lead variance"
    " Var(y - R d) / mean(d)^2 from matured baseline leads; treatment = a higher MQL rate with"
    " the same dials given the outcome, lifting the ratio by adoption x target lift;"
    " two-sided z-test sample size (statsmodels NormalIndPower); SGA assignment multiplies it"
    " by 1 + (m - 1) ICC (one-way ANOVA ICC of the linearised KPI between SGAs)."
)
