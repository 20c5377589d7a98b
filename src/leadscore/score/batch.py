"""Score stage: daily batch scoring of contacted leads, and the same path for one lead.

Reads ``crm_leads`` (which leads to score), the scoring set built by
``dataset.build_scoring_set`` and a model bundle; writes ``lead_scores`` (upserted on lead Id +
model version, one transaction per batch), ``score_rejects`` (each lead that could not be
scored, with its reason), ``scoring_runs``, a Salesforce upsert CSV and a run record JSON.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from leadscore.catalog import segment_column
from leadscore.config import ScoreConfig, Settings
from leadscore.explain.contributions import explain_rows
from leadscore.faults import crash_point
from leadscore.io import provenance
from leadscore.progress import ProgressFn, no_progress
from leadscore.score.checks import ScoreRejected, check_rows
from leadscore.score.protocol import ScoringModel
from leadscore.score.runs import csv_path, finish_run, repair_runs, reserve_run
from leadscore.score.salesforce import write_field_mapping
from leadscore.score.tables import (
    REJECT_SCHEMA,
    SCORE_SCHEMA,
    drop_staging,
    ensure_tables,
    export_pending,
    select_candidates,
    stage,
    write_rejects,
    write_scores,
)
from leadscore.warehouse import Warehouse

if TYPE_CHECKING:
    from leadscore.bundle import Bundle
    from leadscore.catalog import Catalog
    from leadscore.dataset import ScoringSetResult

__all__ = [
    "ScoreRejected",
    "ScoringModel",
    "ScoringRun",
    "score_frame",
    "score_leads",
    "score_one",
]

_OUT_COLUMNS = ("probability", "margin", "score", "bucket", "tier", "drivers_text", "drivers_json")


class BuildFn(Protocol):
    """Builds the scoring set for some leads (``dataset.build_scoring_set``, or a test's
    variant returning the rows as a frame)."""

    def __call__(
        self,
        wh: Warehouse,
        cfg: Settings,
        catalog: Catalog,
        lead_ids: list[str],
        *,
        as_of: datetime,
    ) -> ScoringSetResult | pd.DataFrame: ...


def score_frame(
    bundle: ScoringModel, df: pd.DataFrame, catalog: Catalog, cfg: ScoreConfig
) -> pd.DataFrame:
    """Probability, score, bucket, tier and drivers for rows that passed :func:`check_rows`.

    Invariant: one output row per input row, same index. Batch and single-lead scoring both
    come through here, so they agree exactly.
    """
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _OUT_COLUMNS}, index=df.index)
    # one matrix per chunk for the margin and the contributions
    done = explain_rows(bundle, df, catalog, cfg)
    proba = np.asarray(bundle.proba_from_margin(df, done.margin), dtype=np.float64).reshape(-1)
    drivers = done.drivers
    scores = np.asarray(bundle.score(proba))
    return pd.DataFrame(
        {
            "probability": proba,
            "margin": done.contributions.margin,
            "score": scores.astype(np.int64),
            "bucket": [str(b) for b in bundle.bucket(proba)],
            "tier": [str(t) for t in bundle.tier(proba)],
            "drivers_text": drivers.text.to_pandas().array,  # pandas' Arrow-backed str
            "drivers_json": drivers.json.to_pandas().array,
        },
        index=df.index,
    )


def score_one(
    bundle: Bundle,
    features: Mapping[str, object],
    catalog: Catalog,
    cfg: ScoreConfig | None = None,
) -> dict[str, Any]:
    """Score one lead in memory (for the HTTP service), exactly as the batch path would.

    ``features`` holds every model feature (None for a missing value) and the calibration
    segment (``aum_tier``).

    Raises:
        ScoreRejected: the lead cannot be scored; ``reason`` and ``detail`` say why.
    """
    cfg = cfg or ScoreConfig()
    missing = [f for f in bundle.features if f not in features]
    if missing:
        raise ScoreRejected("missing_feature", f"no value given for {', '.join(missing)}")
    df = pd.DataFrame([dict(features)])
    checked, reasons = check_rows(df, bundle, catalog)
    if reasons.iloc[0] is not None:
        code, _, detail = str(reasons.iloc[0]).partition(": ")
        raise ScoreRejected(code, detail)
    row = score_frame(bundle, checked, catalog, cfg).iloc[0]
    out: dict[str, Any] = {k: row[k] for k in _OUT_COLUMNS if k != "drivers_json"}
    out["probability"] = float(out["probability"])
    out["margin"] = float(out["margin"])
    out["score"] = int(out["score"])
    out["drivers"] = json.loads(row["drivers_json"])
    out["model_version"] = str(bundle.version)
    return out


@dataclass(frozen=True)
class ScoringRun:
    """What one ``score_leads`` call did (also written as JSON and to ``scoring_runs``)."""

    run_id: str
    model_version: str
    as_of: datetime
    scored_at: datetime
    n_considered: int
    n_scored: int
    n_rejected: int
    rejected_by_reason: dict[str, int]
    success_rate: float | None
    feature_availability: dict[str, float]
    n_batches: int
    n_exported: int
    wall_seconds: float
    scores_per_second: float | None
    record_path: Path
    salesforce_csv: Path
    field_mapping: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        for key in ("as_of", "scored_at"):
            out[key] = getattr(self, key).isoformat()
        for key in ("record_path", "salesforce_csv", "field_mapping"):
            out[key] = str(getattr(self, key))
        return out


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} must carry a time zone")
    return ts.astimezone(UTC)


def _default_build() -> BuildFn:
    from leadscore.dataset import build_scoring_set

    return build_scoring_set


def score_leads(
    wh: Warehouse,
    cfg: Settings,
    bundle: Bundle,
    as_of: datetime,
    catalog: Catalog,
    progress: ProgressFn | None = None,
    *,
    scored_at: datetime | None = None,
    out_dir: Path | None = None,
    batch_size: int = 5000,
    build: BuildFn | None = None,
) -> ScoringRun:
    """Score every lead that entered Contacting up to ``as_of`` and has no score from this
    model version yet.

    Each batch is built as of each lead's contact time (same SQL as training), checked,
    scored and written in one transaction, so a crash loses at most the batch in flight and
    a re-run scores exactly the leads still missing. Leads that cannot be scored go to
    ``score_rejects`` with their reason (and are retried by the next run).

    Args:
        as_of: scoring time (UTC-aware); leads contacted after it are not considered.
        scored_at: time written as ``scored_at`` (default ``as_of``); never the wall clock.
        out_dir: where the upsert CSV, field mapping and run record go
            (default ``<data_dir>/scoring``).
        batch_size: leads per transaction.
        build: scoring-set builder (default ``dataset.build_scoring_set``).
    """
    started = time.perf_counter()  # wall time of the run only; no clock value is stored
    progress = progress or no_progress
    as_of = _utc(as_of)
    scored_at = _utc(scored_at) if scored_at is not None else as_of
    version = str(bundle.version)
    out_dir = Path(out_dir) if out_dir is not None else cfg.project.data_dir / "scoring"
    build = build or _default_build()
    # 1. tables, repair of runs a crash interrupted, this run's id, the leads to score
    ensure_tables(wh)
    repair_runs(wh, out_dir, _provenance(cfg))
    run_id = reserve_run(wh, version, as_of, scored_at, out_dir)
    try:
        candidates = select_candidates(wh, cfg, version, as_of)
        n_batches = -(-len(candidates) // batch_size)
        context = _BatchContext(wh, cfg, bundle, catalog, build, as_of, scored_at, run_id)
        totals = _Totals()
        # 2. batches: build, check, score, then write in one transaction
        for k in range(n_batches):
            batch = candidates.iloc[k * batch_size : (k + 1) * batch_size]
            progress(f"scoring batch {k + 1}/{n_batches}", k / n_batches)
            scores, rejects, availability = _score_batch(context, batch)
            stage(wh, "lead_scores", scores, SCORE_SCHEMA)
            stage(wh, "score_rejects", rejects, REJECT_SCHEMA)
            crash_point(f"batch_{k}_staged")
            with wh.transaction():
                write_scores(wh)
                crash_point(f"batch_{k}_in_transaction")
                write_rejects(wh)
            crash_point(f"batch_{k}_committed")
            totals.add(scores, rejects, availability)
        # 3. the Salesforce upsert file (every score of this version not yet exported), the
        #    marks and the run row in one transaction, then the run record
        progress("writing the Salesforce upsert file", 0.95)
        pending = export_pending(wh, version)
        mapping_path = write_field_mapping(out_dir / "salesforce_field_mapping.json")
        run = totals.run(
            run_id, version, as_of, scored_at, len(candidates), n_batches, len(pending),
            time.perf_counter() - started, out_dir, csv_path(out_dir, run_id), mapping_path,
        )  # fmt: skip
        finish_run(wh, run.to_dict(), pending, _provenance(cfg))
    finally:
        drop_staging(wh)
    crash_point("staging_dropped")
    progress("done", 1.0)
    return run


def _provenance(cfg: Settings) -> dict[str, Any]:
    return provenance(cfg.config_hash(), cfg.project.global_seed)


@dataclass(frozen=True)
class _BatchContext:
    wh: Warehouse
    cfg: Settings
    bundle: Bundle
    catalog: Catalog
    build: BuildFn
    as_of: datetime
    scored_at: datetime
    run_id: str


@dataclass
class _Totals:
    n_scored: int = 0
    n_checked: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    non_null: Counter[str] = field(default_factory=Counter)

    def add(self, scores: pd.DataFrame, rejects: pd.DataFrame, avail: pd.Series) -> None:
        self.reasons.update(rejects["reason"].tolist())
        self.non_null.update({str(k): int(v) for k, v in avail.drop("_n").items()})
        self.n_scored += len(scores)
        self.n_checked += int(avail["_n"])

    def run(
        self,
        run_id: str,
        version: str,
        as_of: datetime,
        scored_at: datetime,
        n_considered: int,
        n_batches: int,
        n_exported: int,
        wall: float,
        out_dir: Path,
        csv_path: Path,
        mapping_path: Path,
    ) -> ScoringRun:
        reasons = dict(sorted(self.reasons.items()))
        non_null = self.non_null
        availability = {
            f: (non_null[f] / self.n_checked if self.n_checked else 0.0) for f in non_null
        }
        return ScoringRun(
            run_id=run_id,
            model_version=version,
            as_of=as_of,
            scored_at=scored_at,
            n_considered=n_considered,
            n_scored=self.n_scored,
            n_rejected=sum(reasons.values()),
            rejected_by_reason=reasons,
            success_rate=self.n_scored / n_considered if n_considered else None,
            feature_availability=dict(sorted(availability.items())),
            n_batches=n_batches,
            n_exported=n_exported,
            wall_seconds=wall,
            scores_per_second=self.n_scored / wall if wall > 0 else None,
            record_path=out_dir / f"scoring_run_{run_id}.json",
            salesforce_csv=csv_path,
            field_mapping=mapping_path,
        )


def _score_batch(
    ctx: _BatchContext, batch: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Scores, rejects and feature non-null counts (``_n`` = rows checked) for one batch."""
    ids = batch["lead_id"].astype(str).tolist()
    frame = _built_frame(ctx, ids)
    # leads the builder did not return at all are rejected, never silently dropped
    missing = sorted(set(ids) - set(frame["lead_id"].astype(str)))
    status = frame.get("pit_status", pd.Series("ok", index=frame.index)).fillna("ok")
    matched = frame[status == "ok"]
    features = list(ctx.bundle.features)
    avail = matched.reindex(columns=features).notna().sum()
    avail["_n"] = len(matched)
    checked, reasons = check_rows(matched, ctx.bundle, ctx.catalog)
    good = checked[reasons.isna()]
    scored = score_frame(ctx.bundle, good, ctx.catalog, ctx.cfg.score)
    scores = pd.concat([good.reindex(columns=_KEEP), scored], axis=1)
    scores = scores.assign(
        model_version=str(ctx.bundle.version), run_id=ctx.run_id, scored_at=ctx.scored_at
    )
    rejects = pd.concat(
        [
            _rejects(frame[status != "ok"], status[status != "ok"].map(_status_reason), None),
            _rejects(matched[reasons.notna()], reasons[reasons.notna()], None),
            _rejects(batch[batch["lead_id"].isin(missing)], None, "not_built"),
        ],
        ignore_index=True,
    ).assign(model_version=str(ctx.bundle.version), run_id=ctx.run_id, rejected_at=ctx.scored_at)
    return scores.reset_index(drop=True), rejects, avail


#: Why the builder found no vintage for a lead (dataset.CRD_REASONS), in words.
PIT_STATUS_DETAIL = {
    "crd_missing": "the lead has no FA_CRD__c (unmatched CRD)",
    "crd_malformed": "FA_CRD__c is not a CRD number (unmatched CRD)",
    "crd_not_found": "the CRD is in no vendor snapshot (unmatched CRD)",
    "no_snapshot_yet": "no vendor snapshot was available at the contact time (missing snapshot)",
}


def _status_reason(status: str) -> str:
    return f"{status}: {PIT_STATUS_DETAIL.get(status, 'no vintage')}"


_KEEP = [
    "lead_id",
    "OwnerId",
    "RepCRD",
    "contact_ts",
    "reps_snapshot_quarter",
    "firms_snapshot_quarter",
    segment_column(),
]


def _built_frame(ctx: _BatchContext, ids: list[str]) -> pd.DataFrame:
    """The scoring-set rows of ``ids`` (from the builder's table or frame)."""
    result = ctx.build(ctx.wh, ctx.cfg, ctx.catalog, ids, as_of=ctx.as_of)
    if isinstance(result, pd.DataFrame):
        frame = result
    else:
        frame = ctx.wh.query(f'SELECT * FROM "{result.table}" ORDER BY lead_id').to_pandas()
    frame = frame.reset_index(drop=True)
    frame["lead_id"] = frame["lead_id"].astype(str)
    return frame[frame["lead_id"].isin(ids)].reset_index(drop=True)


def _rejects(rows: pd.DataFrame, reasons: pd.Series | None, code: str | None) -> pd.DataFrame:
    if reasons is not None:
        parts = [str(r).partition(": ") for r in reasons.tolist()]
        codes, details = [p[0] for p in parts], [p[2] for p in parts]
    else:
        codes, details = [code or "unknown"] * len(rows), [""] * len(rows)
    contact = rows["contact_ts"] if "contact_ts" in rows else pd.Series(pd.NaT, index=rows.index)
    return pd.DataFrame(
        {
            "lead_id": rows["lead_id"].astype(str).tolist(),
            "reason": codes,
            "detail": details,
            "contact_ts": pd.to_datetime(contact, utc=True).tolist(),
        }
    )
