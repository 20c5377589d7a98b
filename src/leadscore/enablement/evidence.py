"""Enablement stage, inputs: the model's out-of-sample evidence on its own holdout.

Reads a model bundle (its holdout lead ids in ``folds.json``) and the training table; returns
the holdout rows scored by the bundle with exact TreeSHAP contributions. The final model never
trained on these rows, so every figure built from them is out of sample. Writes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr

from leadscore.catalog import Catalog
from leadscore.explain.contributions import compute_contributions, fold_contributions
from leadscore.explain.shap import global_importance, growth_trajectory
from leadscore.score.protocol import ScoringModel

#: The growth cohort column added to the holdout frame (not a catalog segment).
GROWTH_SEGMENT = "growth_trajectory"


@dataclass(frozen=True)
class Evidence:
    """The holdout, scored: one row per holdout lead, in contact-time order.

    ``frame`` holds the training-table columns plus ``probability``, ``score``, ``bucket``,
    ``tier`` and ``growth_trajectory``; ``contributions`` is the folded SHAP matrix (one
    column per model feature, same index); ``importance`` ranks the model's features by mean
    |SHAP| on these rows.
    """

    version: str
    frame: pd.DataFrame
    contributions: pd.DataFrame
    importance: pd.DataFrame
    holdout_start: str
    n_missing: int = 0
    segments: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n(self) -> int:
        """Holdout leads."""
        return len(self.frame)

    @property
    def conversions(self) -> int:
        """Holdout leads that became an MQL within the label window."""
        return int(self.frame["target"].sum())


def holdout_evidence(
    model: ScoringModel,
    holdout_ids: list[str],
    training: pd.DataFrame,
    catalog: Catalog,
    holdout_start: str = "",
) -> Evidence:
    """Score the model's holdout rows of ``training`` and explain them.

    Raises:
        ValueError: the training table no longer holds the model's holdout (it was rebuilt
            from other data); the message says how many holdout leads are missing.
    """
    ids = pd.Index([str(i) for i in holdout_ids])
    table = training.assign(lead_id=training["lead_id"].astype(str))
    rows = table[table["lead_id"].isin(ids)].sort_values(["contact_ts", "lead_id"])
    missing = len(ids) - len(rows)
    if len(rows) == 0 or missing > 0.01 * len(ids):
        raise ValueError(
            f"the training table holds {len(rows):,} of model {model.version}'s "
            f"{len(ids):,} holdout leads; rebuild the training set the model was trained on"
        )
    rows = rows.reset_index(drop=True)
    proba = np.asarray(model.predict_proba(rows), dtype=np.float64)
    contrib = compute_contributions(model, rows)
    folded = fold_contributions(contrib, list(model.features), rows.index)
    frame = rows.assign(
        probability=proba,
        score=model.score(proba),
        bucket=model.bucket(proba),
        tier=model.tier(proba),
        **{GROWTH_SEGMENT: growth_trajectory(rows).astype(str).to_numpy()},
    )
    segments = (*[s for s in catalog.segment_names() if s in frame.columns], GROWTH_SEGMENT)
    return Evidence(
        version=model.version,
        frame=frame,
        contributions=folded,
        importance=global_importance(folded),
        holdout_start=holdout_start,
        n_missing=missing,
        segments=segments,
    )


@dataclass(frozen=True)
class Rate:
    """A conversion rate with its Wilson score interval."""

    n: int
    conversions: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        """Conversions / leads (NaN for an empty group)."""
        return self.conversions / self.n if self.n else math.nan


def wilson(conversions: int, n: int, confidence: float = 0.95) -> Rate:
    """Wilson score interval for a proportion (well behaved at 0 conversions and small n)."""
    if n <= 0:
        return Rate(0, 0, math.nan, math.nan)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = conversions / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Rate(n, conversions, max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``a.rate - b.rate`` (method 10), from the Wilson
    intervals of each rate at the same confidence."""
    d = a.rate - b.rate
    low = d - math.sqrt((a.rate - a.low) ** 2 + (b.high - b.rate) ** 2)
    high = d + math.sqrt((a.high - a.rate) ** 2 + (b.rate - b.low) ** 2)
    return low, high


def direction(values: pd.Series, contributions: pd.Series, kind: str) -> str:
    """Which values push the score up, in a few words: ``higher``, ``lower``, ``yes``, ``no``,
    a category level, or ``mixed`` (no clear monotone link on the holdout)."""
    known = values.notna()
    if known.sum() < 3:
        return "mixed"
    if kind == "category":
        means = contributions[known].groupby(values[known].astype(str)).mean()
        return str(means.idxmax()) if len(means) > 1 else "mixed"
    x = pd.to_numeric(values[known].astype(float), errors="coerce")
    y = contributions[known]
    if kind == "bool":
        up, down = y[x > 0].mean(), y[x <= 0].mean()
        if math.isnan(up) or math.isnan(down):
            return "mixed"
        return "yes" if up > down else "no"
    if x.nunique() < 2 or y.nunique() < 2:
        return "mixed"
    rho = float(spearmanr(x, y)[0])
    if math.isnan(rho) or abs(rho) < 0.3:
        return "mixed"
    return "higher" if rho > 0 else "lower"
