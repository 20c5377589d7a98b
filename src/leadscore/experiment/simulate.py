"""Experiment stage, ``simulate``: a calling floor where call order matters, with a known truth.

Reads nothing (or, optionally, true probabilities to sample from); pure and seeded. SGAs have a
daily dial capacity; each lead has a true MQL probability, needs a number of dials before it
can book a call, and is dialled at most once a day within its 30-day window. Treatment leads
are called in score order on the SGA-days that adopt it, control leads in the default order
(oldest contact first); an SGA's day alternates between the two arms' queues, so each arm gets
half of the capacity. All random draws are made once per seed, so the same world can be
replayed with everyone treated and everyone in control: their ratio is the true lift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd

from leadscore.experiment.analyze import analyze_experiment
from leadscore.experiment.assign import assign_units
from leadscore.experiment.sequential import Boundaries, obf_boundaries

Unit = Literal["lead", "sga"]
WINDOW_DAYS = 30
TIERS = ("<$100M", "$100-500M", ">$500M")
TIER_LOGIT = np.array([0.8, 0.0, -0.8])
START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class SimConfig:
    """The simulated floor. Defaults: seed-scale flow (~550 contacted leads a week, 20 SGAs)."""

    n_sgas: int = 20
    weeks: int = 8
    leads_per_week: int = 550
    capacity: int = 4  # dials per SGA per day
    max_dials: int = 6
    reach_rate: float = 0.35  # chance that a dial reaches the advisor
    base_rate: float = 0.04
    logit_sd: float = 1.2  # spread of the true probabilities
    score_noise: float = 0.9  # logit noise of the model score around the truth
    adoption: float = 0.6
    unit: Unit = "lead"
    seed: int = 42


@dataclass(frozen=True)
class World:
    """Everything random about one seeded world, drawn once."""

    contact_day: np.ndarray
    owner: np.ndarray
    tier: np.ndarray
    p: np.ndarray
    convertible: np.ndarray
    dials_needed: np.ndarray
    score: np.ndarray
    default_key: np.ndarray
    follows: np.ndarray  # (n_sgas, n_days): the SGA uses the score order that day
    lead_id: np.ndarray


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def draw_world(cfg: SimConfig, truth_p: np.ndarray | None = None) -> World:
    """All random draws of one world (seeded by ``cfg.seed``)."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.weeks * cfg.leads_per_week
    n_days = cfg.weeks * 7 + WINDOW_DAYS
    contact_day = np.sort(rng.integers(0, cfg.weeks * 7, n))
    tier = rng.integers(0, len(TIERS), n)
    if truth_p is not None:
        logit = _logit(np.clip(rng.choice(truth_p, n), 1e-5, 1 - 1e-5))
    else:
        logit = rng.normal(0.0, cfg.logit_sd, n) + TIER_LOGIT[tier]
        logit += _logit(np.array(cfg.base_rate)) - 0.5 * cfg.logit_sd**2  # mean near base_rate
    p = 1 / (1 + np.exp(-logit))
    return World(
        contact_day=contact_day,
        owner=rng.integers(0, cfg.n_sgas, n),
        tier=tier,
        p=p,
        convertible=rng.random(n) < p,
        dials_needed=rng.geometric(cfg.reach_rate, n),
        score=logit + rng.normal(0, cfg.score_noise, n),
        default_key=contact_day + rng.random(n),
        follows=rng.random((cfg.n_sgas, n_days)) < cfg.adoption,
        lead_id=np.array([f"SIM{cfg.seed:05d}L{i:06d}" for i in range(n)]),
    )


def lead_arms(world: World, seed: int, unit: Unit = "lead") -> np.ndarray:
    """Treatment flags from the production assignment (salted hash): leads blocked by tier,
    or SGAs (every lead then takes its SGA's arm)."""
    if unit == "sga":
        n_sgas = world.follows.shape[0]
        units = pd.DataFrame({"unit_id": [f"SGA{i:03d}" for i in range(n_sgas)], "stratum": "all"})
        arms = assign_units(units, salt="simulate", seed=seed)["arm"].to_numpy()
        return (arms == "treatment")[world.owner]
    units = pd.DataFrame({"unit_id": world.lead_id, "stratum": np.array(TIERS)[world.tier]})
    return (assign_units(units, salt="simulate", seed=seed)["arm"] == "treatment").to_numpy()


def _group_rank(groups: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order by (group, key) and each element's rank inside its group."""
    order = np.lexsort((key, groups))
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    return order, rank


def _today(
    world: World, open_idx: np.ndarray, arm: np.ndarray, day: int, cfg: SimConfig
) -> np.ndarray:
    """The leads each SGA dials today, in dial order (grouped by SGA)."""
    owner = world.owner[open_idx]
    scored = arm[open_idx] & world.follows[owner, day]
    key = np.where(scored, -world.score[open_idx], world.default_key[open_idx])
    order, rank = _group_rank(owner * 2 + arm[open_idx], key)
    queue = open_idx[order]
    turn = 2 * rank + (arm[queue] ^ (day % 2 == 1))  # alternate arms, first arm by day
    final_order, slot = _group_rank(world.owner[queue], turn.astype(float))
    return queue[final_order][slot < cfg.capacity]


def run_floor(
    world: World, treated: np.ndarray, cfg: SimConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replay the floor with ``treated`` leads in the score-order arm.

    Returns per-lead outcomes (``mql``, ``n_dials``) and the dial log (``owner_id``,
    ``lead_id``, ``day``, ``position``).
    """
    n = len(world.p)
    dials = np.zeros(n, dtype=np.int64)
    mql = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)  # reached: booked (MQL) or declined
    log = []
    for day in range(cfg.weeks * 7 + WINDOW_DAYS):
        active = (world.contact_day <= day) & (day < world.contact_day + WINDOW_DAYS)
        open_idx = np.flatnonzero(active & ~done & (dials < cfg.max_dials))
        if len(open_idx) == 0:
            continue
        called = _today(world, open_idx, treated, day, cfg)
        dials[called] += 1
        reached = dials[called] == world.dials_needed[called]
        done[called] |= reached
        mql[called] |= world.convertible[called] & reached
        log.append(np.c_[called, np.full(len(called), day), np.arange(len(called))])
    outcomes = pd.DataFrame({"mql": mql.astype(int), "n_dials": dials})
    entries = np.concatenate(log) if log else np.zeros((0, 3), dtype=np.int64)
    dial_log = pd.DataFrame(
        {
            "owner_id": world.owner[entries[:, 0]],
            "lead_id": world.lead_id[entries[:, 0]],
            "lead_index": entries[:, 0],
            "day": entries[:, 1],
            "position": entries[:, 2],
        }
    )
    return outcomes, dial_log


@dataclass(frozen=True)
class SimRun:
    """One seeded A/B (or A/A) test on the simulated floor, and the truth it should recover."""

    seed: int
    kind: str  # ab | aa
    n_leads: int
    true_lift: float
    lift: float
    ci_low: float
    ci_high: float
    covered: bool
    significant: bool
    status: str
    p_value: float
    adoption_mean_rho: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _ratio(out: pd.DataFrame) -> float:
    return float(out["mql"].sum() / out["n_dials"].sum())


def lead_frame(world: World, outcomes: pd.DataFrame, treated: np.ndarray) -> pd.DataFrame:
    """Per-lead outcomes in the shape the analysis reads (every lead matured at the end)."""
    hours = (world.default_key - world.contact_day) * 24
    contact = pd.Timestamp(START) + pd.to_timedelta(world.contact_day * 24 + hours, unit="h")
    return pd.DataFrame(
        {
            "lead_id": world.lead_id,
            "owner_id": world.owner,
            "contact_ts": contact,
            "matured": True,
            "mql": outcomes["mql"].to_numpy(),
            "n_dials": outcomes["n_dials"].to_numpy(),
            "arm": np.where(treated, "treatment", "control"),
            "stratum": np.array(TIERS)[world.tier],
        }
    )


def measured_adoption(world: World, dial_log: pd.DataFrame, treated: np.ndarray) -> float:
    """Mean per SGA-day rank correlation of treatment dials with the score (monitor's method)."""
    from leadscore.experiment.monitor import adoption_by_day, adoption_summary

    log = dial_log[treated[dial_log["lead_index"].to_numpy()]]
    dial_ts = pd.Timestamp(START) + pd.to_timedelta(log["day"] * 1440 + log["position"], unit="m")
    scores = pd.Series(world.score, index=world.lead_id)
    by_day = adoption_by_day(
        log.assign(dial_ts=dial_ts)[["owner_id", "lead_id", "dial_ts"]], scores
    )
    return float(adoption_summary(by_day)["mean_rho"])


def simulate_once(
    cfg: SimConfig,
    bounds: Boundaries,
    kind: Literal["ab", "aa"] = "ab",
    truth_p: np.ndarray | None = None,
) -> SimRun:
    """One test: draw the world, run the A/B floor and both replays, analyse with looks.

    ``kind="aa"``: nobody follows the score (an A/A test), so the true lift is exactly 0.
    """
    world = draw_world(cfg, truth_p)
    if kind == "aa":
        world = replace(world, follows=np.zeros_like(world.follows))
    treated = lead_arms(world, cfg.seed, cfg.unit)
    n = len(treated)
    outcomes, dial_log = run_floor(world, treated, cfg)
    all_t, _ = run_floor(world, np.ones(n, dtype=bool), cfg)
    all_c, _ = run_floor(world, np.zeros(n, dtype=bool), cfg)
    true_lift = _ratio(all_t) / _ratio(all_c) - 1
    frame = lead_frame(world, outcomes, treated)
    cluster = "owner_id" if cfg.unit == "sga" else None
    result = analyze_experiment(
        frame, n // 2, bounds.fractions, bounds.alpha, cluster_col=cluster, bounds=bounds
    )
    return SimRun(
        seed=cfg.seed,
        kind=kind,
        n_leads=n,
        true_lift=round(true_lift, 5),
        lift=result.lift,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        covered=bool(result.ci_low <= true_lift <= result.ci_high),
        significant=result.significant,
        status=result.status,
        p_value=result.p_value,
        adoption_mean_rho=measured_adoption(world, dial_log, treated),
    )


@dataclass(frozen=True)
class SimSummary:
    """Coverage of the true lift over A/B runs and the false-positive rate over A/A runs."""

    config: dict[str, object]
    looks: tuple[float, ...]
    boundaries: tuple[float, ...]
    n_ab: int
    coverage: float
    mean_true_lift: float
    mean_lift: float
    power: float  # share of A/B runs declared significant
    n_aa: int
    aa_false_positive_rate: float
    aa_stopped_early: int
    mean_adoption_rho: float
    runs: list[SimRun]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def simulate_many(
    cfg: SimConfig,
    n_ab: int = 20,
    n_aa: int = 100,
    looks: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0),
    alpha: float = 0.05,
    truth_p: np.ndarray | None = None,
) -> SimSummary:
    """``n_ab`` A/B runs (seeds ``cfg.seed + i``) and ``n_aa`` A/A runs (seeds after them)."""
    bounds = obf_boundaries(looks, alpha)
    ab = [
        simulate_once(replace(cfg, seed=cfg.seed + i), bounds, "ab", truth_p) for i in range(n_ab)
    ]
    aa = [
        simulate_once(replace(cfg, seed=cfg.seed + n_ab + i), bounds, "aa", truth_p)
        for i in range(n_aa)
    ]
    return SimSummary(
        config=asdict(cfg),
        looks=looks,
        boundaries=tuple(round(z, 4) for z in bounds.z),
        n_ab=n_ab,
        coverage=float(np.mean([r.covered for r in ab])) if ab else float("nan"),
        mean_true_lift=float(np.mean([r.true_lift for r in ab])) if ab else float("nan"),
        mean_lift=float(np.mean([r.lift for r in ab])) if ab else float("nan"),
        power=float(np.mean([r.significant for r in ab])) if ab else float("nan"),
        n_aa=n_aa,
        aa_false_positive_rate=float(np.mean([r.significant for r in aa])) if aa else float("nan"),
        aa_stopped_early=sum(r.status == "stopped_early" and r.significant for r in aa),
        mean_adoption_rho=float(np.nanmean([r.adoption_mean_rho for r in ab]))
        if ab
        else float("nan"),
        runs=ab + aa,
    )
