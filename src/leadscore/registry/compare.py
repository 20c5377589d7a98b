"""Registry stage: champion vs challenger on the same most recent matured leads.

Reads two verified bundles and the labelled training table; returns a :class:`Comparison`
(AUC-PR of each with a paired bootstrap interval of the difference, calibration, bucket shares)
and the promotion verdict. Pure: no files, no warehouse, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leadscore import evaluate as ev
from leadscore.bundle import Bundle
from leadscore.config import DEFAULT_BUCKETS, RegistryConfig


@dataclass(frozen=True)
class ModelFigures:
    """One model's figures on the shared leads."""

    version: str
    aucpr: float
    aucroc: float
    ece: float
    brier: float
    mean_probability: float
    bucket_shares: dict[str, float]
    bucket_rates: dict[str, float | None]


@dataclass(frozen=True)
class Comparison:
    """Champion vs challenger on the same leads; ``passed`` says whether promotion may go on.

    ``aucpr_diff`` is challenger minus champion; the interval is a paired percentile bootstrap
    (the same resampled leads score both models).
    """

    champion: ModelFigures
    challenger: ModelFigures
    n_leads: int
    n_positives: int
    first_contact: str | None
    last_contact: str | None
    aucpr_diff: float
    aucpr_diff_ci: tuple[float, float]
    confidence: float
    margin: float
    max_ece: float
    non_inferiority: bool
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["aucpr_diff_ci"] = list(self.aucpr_diff_ci)
        out["champion_version"] = self.champion.version
        out["challenger_version"] = self.challenger.version
        return out


def shared_leads(frame: pd.DataFrame, champion: Bundle, challenger: Bundle) -> pd.DataFrame:
    """The challenger's holdout leads that the champion never trained on, by contact time.

    These are the most recent matured leads of the challenger's training table that neither
    model learned from (the champion's development rows are removed).
    """
    holdout = set(challenger.folds.holdout_ids)
    seen = set(champion.folds.dev_ids)
    ids = frame["lead_id"].astype(str)
    keep = ids.isin(holdout) & ~ids.isin(seen)
    return frame[keep].sort_values(["contact_ts", "lead_id"]).reset_index(drop=True)


def paired_bootstrap(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, n_samples: int, seed: int, level: float
) -> tuple[float, float]:
    """Percentile interval of ``AP(y, b) - AP(y, a)`` over leads resampled with replacement."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_samples):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].sum() > 0:
            diffs.append(
                ev.average_precision(y[idx], b[idx]) - ev.average_precision(y[idx], a[idx])
            )
    if not diffs:
        return float("nan"), float("nan")
    lo, hi = np.quantile(diffs, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _figures(bundle: Bundle, y: np.ndarray, p: np.ndarray) -> ModelFigures:
    buckets = np.asarray(bundle.bucket(p)).astype(str)
    n = len(p)
    shares = {b: float(np.mean(buckets == b)) if n else 0.0 for b in DEFAULT_BUCKETS.names}
    rates = {
        b: (float(y[buckets == b].mean()) if (buckets == b).any() else None)
        for b in DEFAULT_BUCKETS.names
    }
    return ModelFigures(
        version=str(bundle.version),
        aucpr=ev.average_precision(y, p),
        aucroc=ev.roc_auc(y, p) if 0 < y.sum() < n else float("nan"),
        ece=ev.ece(y, p),
        brier=ev.brier(y, p),
        mean_probability=float(np.mean(p)) if n else float("nan"),
        bucket_shares=shares,
        bucket_rates=rates,
    )


def compare_models(
    champion: Bundle,
    challenger: Bundle,
    leads: pd.DataFrame,
    cfg: RegistryConfig,
    max_ece: float,
    seed: int,
) -> Comparison:
    """Score ``leads`` (from :func:`shared_leads`) with both models and judge the challenger.

    Args:
        leads: labelled rows with ``lead_id``, ``contact_ts``, ``target``, ``aum_tier`` and
            every feature of both bundles.
        cfg: margin, bootstrap size and level, non-inferiority switch.
        max_ece: calibration limit for the challenger on these leads.
        seed: the project seed (the bootstrap is seeded).
    """
    y = leads["target"].to_numpy(dtype=float)
    p_old = np.asarray(champion.predict_proba(leads), dtype=float) if len(leads) else y
    p_new = np.asarray(challenger.predict_proba(leads), dtype=float) if len(leads) else y
    old, new = _figures(champion, y, p_old), _figures(challenger, y, p_new)
    diff = new.aucpr - old.aucpr
    ci = paired_bootstrap(y, p_old, p_new, cfg.bootstrap_samples, seed, cfg.confidence)
    reasons = verdict_reasons(len(leads), int(y.sum()), diff, ci, new.ece, cfg, max_ece)
    contacts = pd.to_datetime(leads["contact_ts"], utc=True)
    return Comparison(
        champion=old,
        challenger=new,
        n_leads=len(leads),
        n_positives=int(y.sum()),
        first_contact=contacts.min().isoformat() if len(leads) else None,
        last_contact=contacts.max().isoformat() if len(leads) else None,
        aucpr_diff=float(diff),
        aucpr_diff_ci=ci,
        confidence=cfg.confidence,
        margin=cfg.max_aucpr_drop,
        max_ece=max_ece,
        non_inferiority=cfg.non_inferiority,
        passed=not reasons,
        reasons=reasons,
    )


def verdict_reasons(
    n: int,
    n_pos: int,
    diff: float,
    ci: Sequence[float],
    ece: float,
    cfg: RegistryConfig,
    max_ece: float,
) -> list[str]:
    """Why the challenger may not replace the champion (empty: it may)."""
    if n == 0 or n_pos == 0:
        return [f"no shared matured leads with a conversion to compare on ({n} leads)"]
    margin = cfg.max_aucpr_drop
    reasons = []
    if not diff >= -margin:
        reasons.append(
            f"challenger AUC-PR is {diff:+.4f} vs the champion, beyond the allowed -{margin:.4f}"
        )
    if cfg.non_inferiority and not ci[0] >= -margin:
        reasons.append(
            f"non-inferiority not shown: the {cfg.confidence:.0%} interval of the AUC-PR "
            f"difference starts at {ci[0]:+.4f} (< -{margin:.4f})"
        )
    if not ece <= max_ece:
        reasons.append(f"challenger ECE {ece:.4f} on the shared leads exceeds {max_ece:.4f}")
    return reasons
