"""Experiment stage, ``analyze``: interim looks with alpha spending, then the final analysis.

Pure: takes per-lead outcomes with arms (``monitor.experiment_frame``) and returns an
:class:`Analysis`. Look k happens when ``looks[k]`` of the planned leads have matured (their
30-day window closed); its z-statistic uses the leads matured by then, so re-running the
analysis later reproduces the earlier looks exactly. The test stops at the first look whose
|z| reaches the Lan-DeMets O'Brien-Fleming boundary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from leadscore.experiment.kpi import LiftEstimate, arm_estimates, compare_ratios
from leadscore.experiment.sequential import Boundaries, obf_boundaries

WINDOW = pd.Timedelta(days=30)


@dataclass(frozen=True)
class Look:
    """One look: when it happened, what it saw and whether it crossed."""

    index: int
    fraction: float
    at: str | None  # None: not reached yet
    n_leads: int
    lift: float
    z: float
    boundary_z: float
    nominal_p: float
    crossed: bool


@dataclass(frozen=True)
class SegmentEstimate:
    """Lift within one segment (e.g. an AUM tier), matured leads at the analysis point."""

    segment: str
    n_leads: int
    treatment_per_100: float
    control_per_100: float
    lift: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class Analysis:
    """Looks so far and, when the test has ended, the final estimates and verdict."""

    planned_leads_per_arm: int
    information_fraction: float  # matured leads / planned leads (both arms)
    looks: list[Look]
    status: str  # running | stopped_early | final
    lift: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    mqls_per_100_dials: dict[str, float]
    n_leads: dict[str, int]
    segments: list[SegmentEstimate] = field(default_factory=list)
    verdict: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def look_times(
    matured_ts: pd.Series, n_planned: int, fractions: tuple[float, ...]
) -> list[pd.Timestamp | None]:
    """When each look's share of the ``n_planned`` leads had matured (None: not yet)."""
    ordered = matured_ts.sort_values().reset_index(drop=True)
    out: list[pd.Timestamp | None] = []
    for fraction in fractions:
        need = math.ceil(fraction * n_planned)
        out.append(ordered.iloc[need - 1] if need <= len(ordered) else None)
    return out


def _estimate(
    frame: pd.DataFrame, cluster_col: str | None
) -> tuple[dict[str, float], LiftEstimate]:
    est = arm_estimates(frame, cluster_col)
    df = est["treatment"].n_units + est["control"].n_units - 2 if cluster_col else None
    lift = compare_ratios(est["treatment"], est["control"], df=df)
    per_100 = {arm: round(100 * e.ratio, 4) for arm, e in est.items()}
    return per_100, lift


def _segments(
    frame: pd.DataFrame, segment_col: str, cluster_col: str | None
) -> list[SegmentEstimate]:
    rows = []
    for segment, group in frame.groupby(segment_col, sort=True):
        per_100, lift = _estimate(group, cluster_col)
        rows.append(
            SegmentEstimate(
                str(segment), len(group), per_100["treatment"], per_100["control"],
                round(lift.lift, 4), round(lift.ci_low, 4), round(lift.ci_high, 4),
                round(lift.p_value, 4),
            )
        )  # fmt: skip
    return rows


def run_looks(
    frame: pd.DataFrame, n_planned: int, bounds: Boundaries, cluster_col: str | None = None
) -> tuple[list[Look], int | None]:
    """Every look reached so far (and the pending ones); index of the first crossing."""
    matured_at = frame["contact_ts"] + WINDOW
    times = look_times(matured_at[frame["matured"].astype(bool)], n_planned, bounds.fractions)
    looks: list[Look] = []
    stop: int | None = None
    nominal = bounds.nominal_p()
    for k, at in enumerate(times):
        if at is None or stop is not None:
            nan = float("nan")
            looks.append(
                Look(k, bounds.fractions[k], None, 0, nan, nan, bounds.z[k], nominal[k], False)
            )
            continue
        seen = frame[frame["matured"].astype(bool) & (matured_at <= at)]
        _, lift = _estimate(seen, cluster_col)
        z = lift.z
        hit = bool(math.isfinite(z) and abs(z) >= bounds.z[k])
        looks.append(
            Look(k, bounds.fractions[k], at.isoformat(), len(seen), round(lift.lift, 4),
                 round(z, 4), round(bounds.z[k], 4), nominal[k], hit)
        )  # fmt: skip
        if hit:
            stop = k
    return looks, stop


def _stopping_point(looks: list[Look], stop: int | None) -> tuple[int | None, str]:
    """The look the estimates come from (None while running) and the test's status."""
    if stop is not None:
        return stop, "final" if stop == len(looks) - 1 else "stopped_early"
    if looks[-1].at is not None:
        return len(looks) - 1, "final"
    return None, "running"


def _next_look_text(looks: list[Look], n_planned: int) -> str:
    pending = next((lk for lk in looks if lk.at is None), None)
    if pending is None:
        return ""
    return f"next look when {math.ceil(pending.fraction * n_planned):,} leads matured"


def verdict_text(
    status: str, significant: bool, lift: float, target: float, next_look: str
) -> str:
    """The plan's decision rule in words."""
    if status == "running":
        return f"Running: no boundary crossed; {next_look}"
    if significant and lift >= target:
        return f"Ship: significant and the lift ({lift:+.1%}) reaches the {target:.0%} target."
    if significant and lift > 0:
        return f"Review: significant, but the lift ({lift:+.1%}) is below the {target:.0%} target."
    if significant:
        return f"Stop: the score order does worse ({lift:+.1%}); review before any rollout."
    return f"Stop and review: no significant difference (lift {lift:+.1%})."


def analyze_experiment(
    frame: pd.DataFrame,
    n_planned_per_arm: int,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0),
    alpha: float = 0.05,
    target_lift: float = 0.5,
    cluster_col: str | None = None,
    segment_col: str = "stratum",
    bounds: Boundaries | None = None,
) -> Analysis:
    """Group-sequential analysis of per-lead outcomes (``contact_ts``, ``matured``, ``mql``,
    ``n_dials``, ``arm``, and ``segment_col``).

    The estimates come from the leads matured at the stopping look (early stop or final), or
    from every matured lead while the test runs. The 95% interval and p-value are the fixed-
    sample ones at that point; significance is judged against the look's boundary.
    """
    bounds = bounds or obf_boundaries(fractions, alpha)
    looks, stop = run_looks(frame, 2 * n_planned_per_arm, bounds, cluster_col)
    last, status = _stopping_point(looks, stop)
    matured = frame[frame["matured"].astype(bool)]
    stop_at = looks[last].at if last is not None else None
    if stop_at is not None:
        matured = matured[matured["contact_ts"] + WINDOW <= pd.Timestamp(stop_at)]
    per_100, lift = _estimate(matured, cluster_col)
    significant = last is not None and looks[last].crossed
    next_look = _next_look_text(looks, 2 * n_planned_per_arm)
    return Analysis(
        planned_leads_per_arm=n_planned_per_arm,
        information_fraction=round(
            float(frame["matured"].astype(bool).sum()) / (2 * n_planned_per_arm), 4
        ),
        looks=looks,
        status=status,
        lift=round(lift.lift, 4),
        ci_low=round(lift.ci_low, 4),
        ci_high=round(lift.ci_high, 4),
        p_value=lift.p_value,
        significant=significant,
        mqls_per_100_dials=per_100,
        n_leads={a: int((matured["arm"] == a).sum()) for a in ("treatment", "control")},
        segments=_segments(matured, segment_col, cluster_col) if segment_col in matured else [],
        verdict=verdict_text(status, significant, lift.lift, target_lift, next_look),
    )
