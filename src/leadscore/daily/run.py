"""Daily stage: the one job a scheduler calls each day — merge, score, export, record, monitor.

Reads a day's delivery folder (CRM delta, maybe a new vendor vintage), the warehouse, the model
bundle and its fallback; writes the merged CRM tables, ``lead_scores``, ``score_rejects``,
``daily_events``, ``scoring_runs`` and ``daily_runs``, the Salesforce upsert file of new or
changed rows, and a run record JSON under ``<reports_dir>/daily``.

Steps (each a named function, so later stages add theirs): 1. guard the order of runs;
2. merge the delivery; 3. score the open leads that need it; 4. export; 5. record the run's
health; 6. monitor hooks (callables given by the caller, run last).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.config import Settings
from leadscore.daily import store
from leadscore.daily.scoring import Models, ScoreOutcome, score_candidates
from leadscore.experiment.export import export_view
from leadscore.io import provenance, write_json
from leadscore.score.runs import write_durably
from leadscore.score.salesforce import render_upsert_csv
from leadscore.score.tables import (
    export_pending,
    mark_staged_exported,
    record_run,
    stage_export,
)
from leadscore.warehouse import Warehouse


class DailyError(ValueError):
    """A daily run that must not go ahead (e.g. an ``as_of`` earlier than the last run's)."""


@dataclass(frozen=True)
class DailyRun:
    """What one daily run did: its health (also in ``daily_runs`` and the run record)."""

    run_id: str
    as_of: datetime
    model_version: str
    fallback_version: str
    shadow: bool
    ingest: str | None
    score: ScoreOutcome
    n_open: int
    n_open_unscored: int
    n_exported: int
    salesforce_csv: Path | None
    newest_vintage_age_days: float | None
    step_seconds: dict[str, float]
    wall_seconds: float
    record_path: Path

    @property
    def per_lead_ms(self) -> float | None:
        """Score-step wall time per lead considered, in milliseconds."""
        n = self.score.n_considered
        return 1000 * self.step_seconds.get("score", 0.0) / n if n else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        s = self.score
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "model_version": self.model_version,
            "fallback_version": self.fallback_version,
            "shadow": self.shadow,
            "ingest": self.ingest,
            **{k: v for k, v in asdict(s).items() if k != "feature_availability"},
            "n_scored": s.n_scored_main + s.n_scored_fallback,
            "n_rejected": s.n_rejected,
            "success_rate": s.success_rate,
            "n_open": self.n_open,
            "n_open_unscored": self.n_open_unscored,
            "n_exported": self.n_exported,
            "salesforce_csv": None if self.salesforce_csv is None else str(self.salesforce_csv),
            "feature_availability": s.feature_availability,
            "newest_vintage_age_days": self.newest_vintage_age_days,
            "step_seconds": self.step_seconds,
            "wall_seconds": self.wall_seconds,
            "per_lead_ms": self.per_lead_ms,
            "record_path": str(self.record_path),
        }

    def summary_record(self) -> dict[str, Any]:
        """The per-day record ``summary.json`` keeps under ``daily``."""
        s = self.score
        return {
            "date": self.as_of.date().isoformat(),
            "n_considered": s.n_considered,
            "n_scored": s.n_scored_main + s.n_scored_fallback,
            "n_fallback": s.n_scored_fallback,
            "n_rejected": s.n_rejected,
            "success_rate": s.success_rate,
            "seconds": round(self.wall_seconds, 3),
        }


#: A step run after the others (e.g. monitoring): gets the run's inputs and its record.
Hook = Callable[["DailyContext", DailyRun], None]


@dataclass(frozen=True)
class DailyContext:
    """Everything one run works with."""

    wh: Warehouse
    cfg: Settings
    models: Models
    as_of: datetime
    out_dir: Path
    shadow: bool = False
    hooks: Sequence[Hook] = field(default_factory=tuple)


def run_daily(
    ctx: DailyContext,
    raw: Path | None = None,
    backfill: bool = False,
    ingest: Callable[[Warehouse, Path, Settings], Any] | None = None,
) -> DailyRun:
    """One daily run. Safe to re-run: a repeated delivery is skipped, scored leads are not
    scored again, and an export only carries rows not exported yet.

    Raises:
        DailyError: ``as_of`` is earlier than the last run's and ``backfill`` is False.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    # 1. guard: runs move forward in time
    store.ensure_daily_tables(ctx.wh)
    check_order(ctx.wh, ctx.as_of, backfill)
    run_id = new_run_id(ctx.wh, ctx.as_of, ctx.shadow)
    # 2. merge the day's delivery
    merged = _timed(seconds, "merge", lambda: merge_delivery(ctx, raw, ingest))
    # 3. score the open leads that need it; a running A/B test assigns the new ones an arm
    outcome = _timed(seconds, "score", lambda: score_open_leads(ctx, run_id))
    _timed(seconds, "assign", lambda: assign_experiment(ctx))
    # 4. export new or changed rows (never in shadow mode)
    n_exported, csv = _timed(seconds, "export", lambda: export_changes(ctx, run_id))
    # 5. record the run's health
    run = _timed(
        seconds, "record",
        lambda: record(ctx, run_id, merged, outcome, n_exported, csv, seconds, started),
    )  # fmt: skip
    # 6. monitor hooks
    for hook in ctx.hooks:
        hook(ctx, run)
    # 7. monitoring (leadscore.monitor): bin this run's scores, drift, estimates, alerts
    from leadscore.monitor.run import daily_hook

    daily_hook(ctx, run)
    return run


def _timed(seconds: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    try:
        return fn()
    finally:
        seconds[name] = round(time.perf_counter() - start, 4)


def check_order(wh: Warehouse, as_of: datetime, backfill: bool) -> None:
    """Refuse an ``as_of`` earlier than the last run's unless backfilling."""
    if as_of.tzinfo is None:
        raise DailyError(f"as_of {as_of!r} must carry a time zone")
    last = store.last_as_of(wh)
    if last is not None and as_of < last and not backfill:
        raise DailyError(
            f"as_of {as_of.astimezone(UTC).isoformat()} is earlier than the last daily run's "
            f"({last.astimezone(UTC).isoformat()}); pass --backfill to run it anyway"
        )


def new_run_id(wh: Warehouse, as_of: datetime, shadow: bool) -> str:
    """``daily-<as_of>`` (``-shadow``), with a suffix when that id already ran."""
    base = f"daily-{as_of.astimezone(UTC):%Y%m%dT%H%M%SZ}" + ("-shadow" if shadow else "")
    taken = {
        r["run_id"]
        for r in wh.query(f"SELECT run_id FROM {store.DAILY_RUNS}").to_pylist()
        if str(r["run_id"]).startswith(base)
    }
    run_id, n = base, 1
    while run_id in taken:
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def merge_delivery(
    ctx: DailyContext, raw: Path | None, ingest: Callable[[Warehouse, Path, Settings], Any] | None
) -> str | None:
    """Ingest the delivery folder (CRM deltas merge by Id; a new vintage adds its tables)."""
    if raw is None:
        return None
    if not Path(raw).is_dir():
        raise DailyError(f"{raw}: delivery folder not found (omit --raw to run without one)")
    if not any(p.is_file() for p in Path(raw).rglob("*.csv")):
        return "nothing delivered"
    if ingest is None:
        from leadscore.ingest.load import ingest_directory

        ingest = ingest_directory
    return str(ingest(ctx.wh, raw, ctx.cfg).summary())


def assign_experiment(ctx: DailyContext) -> int:
    """Give new leads an arm when an experiment runs (``[experiment] start`` reached)."""
    start = ctx.cfg.experiment.start
    if ctx.shadow or start is None or ctx.as_of < start:
        return 0
    from leadscore.experiment.assign import assign_new

    return int(assign_new(ctx.wh, ctx.cfg, ctx.as_of).n_new)


def score_open_leads(ctx: DailyContext, run_id: str) -> ScoreOutcome:
    """Select the open leads that need a score from this model version and score them."""
    m = ctx.models
    candidates = store.select_candidates(ctx.wh, ctx.cfg, ctx.as_of, m.version, m.fallback.version)
    return score_candidates(ctx.wh, ctx.cfg, m, candidates, ctx.as_of, run_id, ctx.shadow)


def export_changes(ctx: DailyContext, run_id: str) -> tuple[int, Path | None]:
    """Write the Salesforce upsert file of every score not exported yet (main and fallback)."""
    if ctx.shadow:
        return 0, None
    versions = (ctx.models.version, ctx.models.fallback.version)
    pending = pd.concat([export_pending(ctx.wh, v) for v in versions], ignore_index=True)
    if pending.empty:
        return 0, None
    # the file is complete on disk before any of its rows is marked exported; a crash in
    # between sends those rows again in the next file (Salesforce upserts on Id are idempotent)
    path = ctx.out_dir / f"salesforce_upsert_{run_id}.csv"
    rows, fields = export_view(ctx.wh, ctx.cfg, pending)  # control leads: arm, no score
    csv = write_durably(path, render_upsert_csv(rows, fields), "daily_export")
    for version in versions:
        ids = pending.loc[pending["model_version"] == version, "lead_id"].astype(str)
        stage_export(ctx.wh, ids.tolist())
        mark_staged_exported(ctx.wh, version, run_id)
    return len(pending), csv


def record(
    ctx: DailyContext,
    run_id: str,
    merged: str | None,
    outcome: ScoreOutcome,
    n_exported: int,
    csv: Path | None,
    seconds: dict[str, float],
    started: float,
) -> DailyRun:
    """Write the run record (JSON, ``daily_runs``, ``scoring_runs``); drop staging tables."""
    open_now = store.call_list(ctx.wh, ctx.cfg, ctx.as_of, ctx.models.version)
    run = DailyRun(
        run_id=run_id, as_of=ctx.as_of, model_version=ctx.models.version,
        fallback_version=ctx.models.fallback.version, shadow=ctx.shadow, ingest=merged,
        score=outcome, n_open=len(open_now),
        n_open_unscored=store.n_open_unscored(ctx.wh, ctx.cfg, ctx.as_of, ctx.models.version),
        n_exported=n_exported, salesforce_csv=csv,
        newest_vintage_age_days=store.newest_vintage_age_days(ctx.wh, ctx.as_of),
        step_seconds=seconds, wall_seconds=time.perf_counter() - started,
        record_path=ctx.out_dir / f"daily_run_{run_id}.json",
    )  # fmt: skip
    data = run.to_dict()
    prov = provenance(ctx.cfg.config_hash(), ctx.cfg.project.global_seed)
    write_json(run.record_path, {**data, "provenance": prov})
    store.record_daily_run(ctx.wh, run_id, ctx.as_of, run.model_version, ctx.shadow,
                           json.dumps(data, sort_keys=True, default=str))  # fmt: skip
    record_run(ctx.wh, _scoring_run_row(run))
    store.drop_staging(ctx.wh)
    return run


def _scoring_run_row(run: DailyRun) -> dict[str, Any]:
    s = run.score
    return {
        "run_id": run.run_id,
        "model_version": run.model_version,
        "as_of": run.as_of,
        "scored_at": run.as_of,
        "n_considered": s.n_considered,
        "n_scored": s.n_scored_main + s.n_scored_fallback,
        "n_rejected": s.n_rejected,
        "rejected_by_reason": s.rejected_by_reason,
        "success_rate": s.success_rate,
        "feature_availability": s.feature_availability,
        "n_batches": 1,
        "n_exported": run.n_exported,
        "wall_seconds": run.wall_seconds,
        "scores_per_second": None,
        "record_path": str(run.record_path),
        "salesforce_csv": None if run.salesforce_csv is None else str(run.salesforce_csv),
    }
