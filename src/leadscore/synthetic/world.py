"""``generate_world``: write the synthetic raw delivery folder (vendor vintages, CRM, truth).

Reads nothing; writes ``vendor/``, ``crm/``, ``truth/`` and ``manifest.json`` under ``out_dir``.
One vintage is generated and written at a time, so memory stays bounded at seed scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from leadscore.ingest.schema import CRM_DIR, LEAD_FILE, TASK_FILE, TRUTH_DIR, VENDOR_DIR
from leadscore.io import write_json
from leadscore.synthetic import crm, deliveries, future, vocab
from leadscore.synthetic.manifest import (
    WorldManifest,
    with_future,
    write_manifest,
)
from leadscore.synthetic.planted import planted_counts, truth_table
from leadscore.synthetic.population import (
    Population,
    evolve_firms,
    evolve_reps,
    init_firms,
    init_reps,
)
from leadscore.synthetic.timeline import (
    AS_OF_S,
    DAY_S,
    Vintage,
    make_vintages,
    sample_contact_times,
)
from leadscore.synthetic.truth import FEATURES, Signal, linear_score, true_probability
from leadscore.synthetic.vendor import firm_names, render_firms, render_reps, write_csv

#: Seed-scale sizes (scale=1.0).
N_REPS, N_REP_DUPLICATES, N_FIRMS = 463_000, 15_000, 38_500
N_LEADS, N_LEAD_DUPLICATES, N_NEGATIVE_DAYS = 79_000, 300, 350
REP_CRD_RANGE, FIRM_CRD_RANGE = (1_000_000, 8_000_000), (100_000, 400_000)
COMPONENTS = (
    "timeline",
    "crd_pool",
    "firms",
    "reps",
    "spine",
    "evolve",
    "render",
    "pick",
    "outcomes",
    "crm",
)
Progress = Callable[[str, float], None]


def _n(base: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(base * scale))


def _lead_features(reps: Population, firms: Population, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The generating model's clean inputs for the reps at ``rows`` (their as-of vintage)."""
    big = np.array([c[3] in vocab.METROS.values() for c in vocab.CITIES])
    firm = reps["firm"][rows]
    gnull = firms["growth_null"][firm]
    total = np.round(firms["total"][firm], 2)
    return {
        "total_assets": total,
        "big_metro": big[reps["home_city"][rows]] & ~reps["metro_blank"][rows],
        "has_cfp": (reps["licences"][rows] >> 4 & 1).astype(bool),
        "has_65_66": (reps["licences"][rows] & 0b1100) > 0,
        "hire_day": reps["hire"][rows],
        "became_day": reps["became"][rows],
        "n_ria_assoc": reps["n_ria_assoc"][rows],
        "growth_1y": np.where(gnull, np.nan, np.round(firms["g1"][firm], 2)),
        "hnw_share": firms["s_hnw"][firm],
        "avg_account": total * 1e6 / firms["clients"][firm],
        "non_advisor": reps["non_advisor"][rows],
    }


def _pick_reps(rng: np.random.Generator, reps: Population, used: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``n`` distinct reps not yet picked by an earlier lead (if enough remain)."""
    free = np.flatnonzero(~used[reps["crd"]])
    pool = free if len(free) >= n else np.arange(len(reps))
    rows = rng.choice(pool, n, replace=False) if len(pool) >= n else rng.choice(pool, n)
    used[reps["crd"][rows]] = True
    return rows


class _Steps:
    """Progress reporting: step name and fraction of all steps done."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, name: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(name, min(1.0, self.done / self.total))


def generate_world(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 42,
    signal: Signal = "default",
    progress: Progress | None = None,
    future_days: int = 0,
    drift: future.Drift | None = None,
) -> WorldManifest:
    """Generate the synthetic world into ``out_dir`` and return its manifest.

    Same ``seed``, ``scale`` and ``signal`` give byte-identical files. Vendor files do not
    depend on ``signal``; only the conversions (CRM) and the truth do. ``future_days`` > 0 adds
    one delivery folder per day after ``as_of`` (see :mod:`leadscore.synthetic.deliveries`)
    from separate random streams: the history files do not depend on it, nor on ``drift``.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if future_days < 0:
        raise ValueError(f"future_days must be >= 0, got {future_days}")
    out_dir = Path(out_dir)
    rngs = dict(zip(COMPONENTS, np.random.SeedSequence(seed).spawn(len(COMPONENTS)), strict=True))
    gen = {k: np.random.default_rng(v) for k, v in rngs.items()}
    fut = [
        np.random.default_rng(s) for s in np.random.SeedSequence(seed, spawn_key=(99,)).spawn(6)
    ]
    steps = _Steps(progress, 2 * 8 + 4)
    vintages = make_vintages(gen["timeline"])
    n_reps, n_firms, n_leads = _n(N_REPS, scale, 20), _n(N_FIRMS, scale, 5), _n(N_LEADS, scale, 50)
    later = tuple(future.make_future_vintages(fut[0], len(vintages), future_days))
    fleads = future.future_leads(fut[1], n_leads, future_days, vintages + later)
    pool = gen["crd_pool"].choice(
        np.arange(*REP_CRD_RANGE), int(1.35 * n_reps) + n_leads + 64, replace=False
    )
    firm_crds = gen["crd_pool"].choice(np.arange(*FIRM_CRD_RANGE), n_firms, replace=False)
    spine = crm.make_spine(gen["spine"], sample_contact_times(gen["spine"], n_leads), vintages)
    steps("timeline")

    row_counts: dict[str, int] = {}
    world = _World(out_dir, gen, rngs, n_reps, scale, steps, row_counts, fleads, drift)
    vendor_stats, rep_crd, feats = _vendor_loop(world, vintages, later, spine, pool, firm_crds)
    unknown_crd = pool[-n_leads:]
    score = linear_score(feats, spine.contact_s)
    true_p, intercept = true_probability(score, signal)
    outcomes = crm.draw_outcomes(
        gen["outcomes"], spine.contact_s, true_p, _n(N_NEGATIVE_DAYS, scale)
    )
    ids = crm.sf_ids("00Q", crm.unique_numbers(gen["crm"], n_leads))
    crd_text = crm.crd_texts(gen["crm"], spine.crd_kind, rep_crd, unknown_crd)
    leads, dup = crm.lead_table(
        gen["crm"], spine, outcomes, ids, crd_text, _n(N_LEAD_DUPLICATES, scale)
    )
    write_csv(leads, out_dir / CRM_DIR / LEAD_FILE)
    steps("leads")
    tasks = crm.task_table(gen["crm"], spine, outcomes, ids)
    write_csv(tasks, out_dir / CRM_DIR / TASK_FILE)
    steps("tasks")
    truth = truth_table(ids, true_p, spine, outcomes, vintages)
    write_csv(truth, out_dir / TRUTH_DIR / "lead_truth.csv")
    planted = planted_counts(spine, outcomes, truth, ids, dup, vendor_stats, tasks.num_rows)
    write_json(out_dir / TRUTH_DIR / "planted.json", planted)
    steps("truth")
    row_counts.update(
        {
            f"{CRM_DIR}/{LEAD_FILE}": leads.num_rows,
            f"{CRM_DIR}/{TASK_FILE}": tasks.num_rows,
            f"{TRUTH_DIR}/lead_truth.csv": truth.num_rows,
        }
    )
    if future_days:
        history = deliveries.History(
            leads, n_leads, outcomes, float(score.mean()), intercept, signal
        )
        world.row_counts.update(
            deliveries.write_future(
                out_dir, world.fleads, world.drift, fut, history, vintages + later, future_days,
                tasks.num_rows,
            )
        )  # fmt: skip
    manifest = write_manifest(out_dir, seed, scale, signal, intercept, vintages, row_counts)
    manifest = with_future(out_dir, manifest, future_days, later, drift)
    steps("manifest")
    return manifest


@dataclass(frozen=True)
class _World:
    """What the generation steps share."""

    out_dir: Path
    gen: dict[str, np.random.Generator]
    rngs: dict[str, np.random.SeedSequence]
    n_reps: int
    scale: float
    steps: _Steps
    row_counts: dict[str, int]
    fleads: future.FutureLeads
    drift: future.Drift | None


def _vendor_loop(
    world: _World,
    vintages: tuple[Vintage, ...],
    later: tuple[Vintage, ...],
    spine: crm.LeadSpine,
    pool: np.ndarray,
    firm_crds: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """Evolve, render and write each vintage; gather each lead's as-of rep and features.

    History vintages go to ``vendor/``; future ones (``later``) to their delivery day's folder.
    """
    gen, rngs, n_reps, scale = world.gen, world.rngs, world.n_reps, world.scale
    every = vintages + later
    n_leads = len(spine.contact_s)
    evolve_rng = [np.random.default_rng(s) for s in rngs["evolve"].spawn(len(every))]
    render_rng = [np.random.default_rng(s) for s in rngs["render"].spawn(len(every))]
    firms = init_firms(gen["firms"], _n(N_FIRMS, scale, 5), firm_crds)
    names = firm_names(firms["name"])
    day0 = vintages[0].snapshot_day
    reps = init_reps(gen["reps"], n_reps, firms, day0, pool[:n_reps], new=False)
    cursor = n_reps
    used = np.zeros(REP_CRD_RANGE[1], dtype=bool)
    rep_crd = np.zeros(n_leads, dtype=np.int64)
    feats = {k: np.zeros(n_leads) for k in FEATURES}
    stats: dict[str, Any] = {}
    for v, vintage in enumerate(every):
        if v > 0:
            evolve_firms(evolve_rng[v], firms)
            n_join = n_reps - round(0.98 * len(reps)) + round(0.001 * n_reps * v)
            n_join = max(0, n_join)
            new_crds = pool[cursor : cursor + n_join]
            cursor += n_join
            reps = evolve_reps(
                evolve_rng[v], reps, firms, every[v - 1].snapshot_day, vintage.snapshot_day,
                new_crds,
            )  # fmt: skip
        if v < len(vintages):
            idx = np.flatnonzero((spine.asof == v) | ((spine.asof < 0) if v == 0 else False))
            rows = _pick_reps(gen["pick"], reps, used, len(idx))
            rep_crd[idx] = reps["crd"][rows]
            for k, values in _lead_features(reps, firms, rows).items():
                feats[k][idx] = values
        _pick_future(world.fleads, v, reps, firms, used)
        rendered = _render_vintage(
            world, vintage, v >= len(vintages), firms, reps, names, render_rng[v]
        )
        if v < len(vintages):  # planted.json describes the history only
            stats[vintage.label] = rendered
    if cursor > len(pool) - n_leads:
        raise RuntimeError("CRD pool exhausted: unknown CRDs would collide with real ones")
    return stats, rep_crd, feats


def _pick_future(
    leads: future.FutureLeads, v: int, reps: Population, firms: Population, used: np.ndarray
) -> None:
    idx = np.flatnonzero((leads.spine.asof == v) | ((leads.spine.asof < 0) if v == 0 else False))
    if len(idx):
        rows = _pick_reps(leads.pick_rng, reps, used, len(idx))
        future.pick_future(leads, v, reps, used, _lead_features(reps, firms, rows), rows, idx)


def _render_vintage(
    world: _World,
    vintage: Vintage,
    is_future: bool,
    firms: Population,
    reps: Population,
    names: pa.Array,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Render and write one vintage's two files (drift applied to future ones)."""
    folder = VENDOR_DIR
    if is_future:
        folder = f"{future.day_folder((vintage.available_at_s - AS_OF_S) // DAY_S)}/{VENDOR_DIR}"
    planted = future.vintage_drift(world.drift, vintage) if is_future else None
    shown = firms
    if planted == "aum_shift":
        shown = Population({**firms.cols, "total": firms["total"] * future.AUM_SHIFT_FACTOR})
    firms_table, fstats = render_firms(rng, shown, names, vintage)
    firms_table = future.blank_dropped(firms_table, "firms", planted)
    write_csv(firms_table, world.out_dir / folder / f"firms_{vintage.label}.csv")
    del firms_table
    world.steps(f"firms {vintage.label}")
    n_dup = _n(N_REP_DUPLICATES, world.scale)
    reps_table, rstats = render_reps(rng, reps, shown, names, vintage, n_dup)
    reps_table = future.blank_dropped(reps_table, "reps", planted)
    write_csv(reps_table, world.out_dir / folder / f"reps_{vintage.label}.csv")
    del reps_table
    world.steps(f"reps {vintage.label}")
    world.row_counts[f"{folder}/firms_{vintage.label}.csv"] = fstats.rows
    world.row_counts[f"{folder}/reps_{vintage.label}.csv"] = rstats.rows
    return {"reps": rstats.to_dict(), "firms": fstats.to_dict()}
