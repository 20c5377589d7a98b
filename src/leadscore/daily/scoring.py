"""Daily stage, score step: the candidates of one run -> main-model scores, fallback scores,
rejects and events, written in one transaction.

Reads the scoring set built for the candidates (``dataset.build_scoring_set``: the same
point-in-time SQL as training, each lead at its contact time); writes ``lead_scores``,
``score_rejects`` and ``daily_events``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from leadscore.bundle import Bundle
from leadscore.catalog import Catalog
from leadscore.config import Settings
from leadscore.daily import store
from leadscore.daily.fallback import FallbackModel
from leadscore.dataset import build_scoring_set
from leadscore.score.batch import PIT_STATUS_DETAIL, score_frame
from leadscore.score.checks import check_rows
from leadscore.score.tables import (
    REJECT_SCHEMA,
    SCORE_SCHEMA,
    stage,
    write_rejects,
    write_scores,
)
from leadscore.warehouse import Warehouse

KEEP: Final = ["lead_id", "OwnerId", "RepCRD", "contact_ts", "reps_snapshot_quarter",
               "firms_snapshot_quarter", "aum_tier"]  # fmt: skip
_DAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Models:
    """What a daily run scores with."""

    bundle: Bundle
    fallback: FallbackModel
    catalog: Catalog

    @property
    def version(self) -> str:
        return str(self.bundle.version)


@dataclass
class ScoreOutcome:
    """What the score step did (counts are leads)."""

    n_considered: int = 0
    n_new: int = 0
    n_retried: int = 0
    n_scored_main: int = 0
    n_scored_fallback: int = 0
    n_kept_fallback: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    feature_availability: dict[str, float] = field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def success_rate(self) -> float | None:
        """Leads with a score (either path) / leads considered."""
        ok = self.n_scored_main + self.n_scored_fallback + self.n_kept_fallback
        return ok / self.n_considered if self.n_considered else None


def fallback_frame(model: FallbackModel, bundle: Bundle, rows: pd.DataFrame) -> pd.DataFrame:
    """Fallback scores on the main model's 1-99 scale, buckets and tiers, flagged
    ``no_vendor_data`` with the reason; the drivers say so. One row per input row."""
    p = model.predict_proba(rows) if len(rows) else np.zeros(0)
    day = pd.to_numeric(rows["Day_of_Contact"], errors="coerce").fillna(1).astype(int)
    status = rows["pit_status"].astype(str)
    text = [
        f"No vendor data ({PIT_STATUS_DETAIL.get(s, s)}): scored from the contact time only "
        f"(contacted on a {_DAY_NAMES[d - 1]})"
        for s, d in zip(status, day, strict=True)
    ]
    basis = [
        json.dumps({"no_vendor_data": s, "positive": [], "negative": [],
                    "basis": {"Day_of_Contact": int(d)}}, sort_keys=True)
        for s, d in zip(status, day, strict=True)
    ]  # fmt: skip
    return pd.DataFrame(
        {
            "probability": p,
            "margin": model.margin(rows) if len(rows) else np.zeros(0),
            "score": np.asarray(bundle.score(p)).astype(np.int64),
            "bucket": [str(b) for b in bundle.bucket(p)],
            "tier": [str(t) for t in bundle.tier(p)],
            "drivers_text": [t[:255] for t in text],
            "drivers_json": basis,
            "flag": [f"no_vendor_data: {s}" for s in status],
        },
        index=rows.index,
    )


def score_candidates(
    wh: Warehouse,
    cfg: Settings,
    models: Models,
    candidates: pd.DataFrame,
    as_of: datetime,
    run_id: str,
    shadow: bool,
) -> ScoreOutcome:
    """Score the candidates (main model where vendor data matched, else the fallback) and
    write everything in one transaction. A retried lead still without vendor data keeps its
    fallback score (not scored again)."""
    out = ScoreOutcome(n_considered=len(candidates))
    out.n_retried = int((candidates["why"] == "retry").sum())
    out.n_new = out.n_considered - out.n_retried
    if candidates.empty:
        return out
    ids = candidates["lead_id"].astype(str).tolist()
    frame = _with_late_vintages(wh, cfg, models, _build(wh, cfg, models, ids, as_of), as_of)
    # a retried lead that has a fallback score keeps it while it still has no vendor data
    retry = set(candidates.loc[candidates["has_fallback"].astype(bool), "lead_id"].astype(str))
    matched = frame[frame["pit_status"] == "ok"]
    checked, reasons = check_rows(matched, models.bundle, models.catalog)
    good = checked[reasons.isna()]
    main = pd.concat([good.reindex(columns=[*KEEP, "flag"]), score_frame(models.bundle, good,
                      models.catalog, cfg.score)], axis=1)  # fmt: skip
    unmatched = frame[frame["pit_status"] != "ok"]
    kept = unmatched["lead_id"].isin(retry)
    fresh = unmatched[~kept]
    fb = pd.concat([fresh.reindex(columns=KEEP),
                    fallback_frame(models.fallback, models.bundle, fresh)], axis=1)  # fmt: skip
    rejects = _rejects(matched[reasons.notna()], reasons[reasons.notna()])
    missing = sorted(set(ids) - set(frame["lead_id"].astype(str)))
    rejects = pd.concat([rejects, _not_built(candidates, missing)], ignore_index=True)
    still = unmatched[kept]
    reasons_now = dict(zip(still["lead_id"], still["pit_status"], strict=True))
    _write(wh, models, main, fb, rejects, run_id, as_of, shadow, reasons_now)
    out.n_scored_main, out.n_scored_fallback = len(main), len(fb)
    out.n_kept_fallback = int(kept.sum())
    counts = rejects["reason"].value_counts().sort_index()
    out.rejected_by_reason = {str(k): int(v) for k, v in counts.items()}
    features = list(models.bundle.features)
    avail = matched.reindex(columns=features).notna().mean() if len(matched) else pd.Series()
    out.feature_availability = {str(k): round(float(v), 4) for k, v in avail.items()}
    return out


def _build(
    wh: Warehouse, cfg: Settings, models: Models, ids: list[str], as_of: datetime,
    late: tuple[str, ...] = (),
) -> pd.DataFrame:  # fmt: skip
    built = build_scoring_set(wh, cfg, models.catalog, ids, as_of=as_of, vendor_at_as_of=late)
    return wh.query(f'SELECT * FROM "{built.table}" ORDER BY lead_id').to_pandas()


def _with_late_vintages(
    wh: Warehouse, cfg: Settings, models: Models, frame: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
    """Leads no vintage available at contact knew, while a vintage delivered since might: join
    that vintage (features still at contact time) and flag the row ``vendor_data_after_contact``.
    Other rows are unchanged (``flag`` NULL)."""
    frame = frame.assign(flag=None)
    newest = store.newest_vintage(wh, as_of)
    late = frame["pit_status"].isin(store.LATE_VINTAGE_REASONS)
    if newest is None or not late.any():
        return frame
    late &= pd.to_datetime(frame["contact_ts"], utc=True) < newest
    ids = tuple(frame.loc[late, "lead_id"].astype(str))
    if not ids:
        return frame
    again = _build(wh, cfg, models, list(ids), as_of, late=ids)
    found = again[again["pit_status"] == "ok"]
    found = found.assign(
        flag=[f"vendor_data_after_contact: vintage {q}" for q in found["reps_snapshot_quarter"]]
    )
    kept = frame[~frame["lead_id"].isin(found["lead_id"])]
    return pd.concat([kept, found], ignore_index=True)


def _rejects(rows: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    parts = [str(r).partition(": ") for r in reasons.tolist()]
    return pd.DataFrame(
        {
            "lead_id": rows["lead_id"].astype(str).tolist(),
            "reason": [p[0] for p in parts],
            "detail": [p[2] for p in parts],
            "contact_ts": pd.to_datetime(rows["contact_ts"], utc=True).tolist(),
        }
    )


def _not_built(candidates: pd.DataFrame, missing: list[str]) -> pd.DataFrame:
    rows = candidates[candidates["lead_id"].isin(missing)]
    return pd.DataFrame(
        {
            "lead_id": rows["lead_id"].astype(str).tolist(),
            "reason": ["not_built"] * len(rows),
            "detail": ["the scoring set has no row for this lead"] * len(rows),
            "contact_ts": pd.to_datetime(rows["contact_ts"], utc=True).tolist(),
        }
    )


def _write(
    wh: Warehouse,
    models: Models,
    main: pd.DataFrame,
    fb: pd.DataFrame,
    rejects: pd.DataFrame,
    run_id: str,
    as_of: datetime,
    shadow: bool,
    kept: dict[str, str],
) -> None:
    """Stage, then one transaction: scores, rejects, events, the current reason of kept
    fallback scores (and the shadow mark)."""
    version = models.version
    meta: dict[str, Any] = {"run_id": run_id, "scored_at": as_of, "shadow": shadow}
    scores = pd.concat(
        [main.assign(model_version=version, **meta),
         fb.assign(model_version=models.fallback.version, **meta)],
        ignore_index=True,
    )  # fmt: skip
    events = pd.concat(
        [
            _events(main["lead_id"], version, "scored", None),
            _events(fb["lead_id"], models.fallback.version, "fallback", fb["flag"]),
            _events(rejects["lead_id"], version, "rejected", rejects["reason"]),
            _events(
                pd.Series(list(kept)),
                models.fallback.version,
                "kept",
                pd.Series([f"no_vendor_data: {r}" for r in kept.values()]),
            ),
        ],
        ignore_index=True,
    ).assign(run_id=run_id, as_of=as_of)
    stage(wh, "lead_scores", scores, SCORE_SCHEMA)
    stage(wh, "score_rejects", rejects.assign(model_version=version, run_id=run_id,
          rejected_at=as_of), REJECT_SCHEMA)  # fmt: skip
    store.stage_events(wh, events)
    with wh.transaction():
        write_scores(wh)
        write_rejects(wh)
        store.insert_staged_events(wh)
        store.clear_crd_rejects(wh, version)
        for lead_id, status in kept.items():
            store.set_fallback_flag(
                wh, models.fallback.version, lead_id, f"no_vendor_data: {status}"
            )
        if shadow:
            store.mark_shadow_exported(wh, run_id)


def _events(
    lead_ids: pd.Series, version: str, event: str, reasons: pd.Series | None
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": lead_ids.astype(str).tolist(),
            "model_version": version,
            "event": event,
            "reason": None if reasons is None else reasons.astype(str).tolist(),
        }
    )
