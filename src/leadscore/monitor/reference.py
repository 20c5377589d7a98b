"""Monitoring stage, train side: the frozen reference written into every bundle.

Reads the training frame (features as stored), the feature types and the training run's
predictions (out-of-fold + holdout calibrated probabilities, labels, AUM tiers) and its holdout
metrics; writes nothing itself: :func:`build_reference` returns the JSON document the bundle
stores as ``reference.json`` (checksummed by the bundle manifest).

Bins: numbers get quantile bins on the non-NULL training values plus a NULL bin (last);
categories get one bin per training level plus an "unseen" bin and a NULL bin (last two).
The score (calibrated probability) gets decile bins of the final model's holdout probabilities
(out-of-sample, made by the shipped booster as production's are).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

REFERENCE_FILE = "reference.json"
#: Quantiles kept of the hours from contact to conversion of the training positives.
DELAY_QUANTILES = 101
SCORE_FEATURE = "__score__"
NULL_BIN = "NULL"
UNSEEN_BIN = "unseen"


def numeric_bins(values: pd.Series, n_bins: int = 10) -> dict[str, Any]:
    """Quantile edges (inner cut points) of the non-NULL values, with the NULL bin last."""
    x = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    ok = x[np.isfinite(x)]
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    edges = np.unique(np.quantile(ok, qs)) if len(ok) else np.array([])
    ref = {"kind": "numeric", "edges": edges.tolist()}
    counts = np.bincount(assign_bins(ref, values), minlength=len(edges) + 2)
    return {**ref, "shares": (counts / max(1, counts.sum())).tolist()}


def category_bins(values: pd.Series) -> dict[str, Any]:
    """One bin per training level (sorted), then "unseen", then NULL."""
    levels = sorted({str(v) for v in values.dropna().tolist()})
    ref = {"kind": "category", "levels": levels}
    counts = np.bincount(assign_bins(ref, values), minlength=len(levels) + 2)
    return {**ref, "shares": (counts / max(1, counts.sum())).tolist()}


def n_bins_of(ref: Mapping[str, Any]) -> int:
    """Number of bins of one reference feature (NULL and unseen included)."""
    if ref["kind"] == "numeric":
        return len(ref["edges"]) + 2
    return len(ref["levels"]) + 2


def assign_bins(ref: Mapping[str, Any], values: pd.Series | Sequence[Any]) -> np.ndarray:
    """Bin index of each value under a reference feature (NULL -> last bin)."""
    s = pd.Series(values)
    null = s.isna().to_numpy()
    if ref["kind"] == "numeric":
        edges = np.asarray(ref["edges"], dtype=float)
        x = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
        null = null | ~np.isfinite(x)
        out = np.searchsorted(edges, np.where(null, 0.0, x), side="right")
        return np.where(null, len(edges) + 1, out).astype(int)
    index = {lvl: i for i, lvl in enumerate(ref["levels"])}
    unseen = len(ref["levels"])
    out = np.array([index.get(str(v), unseen) for v in s.tolist()], dtype=int)
    return np.where(null, unseen + 1, out).astype(int)


def build_reference(
    frame: pd.DataFrame,
    feature_types: Mapping[str, str],
    predictions: pd.DataFrame,
    holdout_metrics: Mapping[str, Any],
    segment_col: str = "aum_tier",
) -> dict[str, Any]:
    """The frozen reference of one model (JSON-ready).

    Args:
        frame: the training rows the model learned from (its features as stored).
        feature_types: the model's features and their catalog types ("categorical" or not).
        predictions: training predictions with ``set`` ("cv"/"holdout"), ``target``,
            ``xgb_proba`` (calibrated out-of-fold / holdout probability) and ``segment_col``.
        holdout_metrics: the holdout block of the training metrics.
    """
    features: dict[str, Any] = {}
    for name, kind in feature_types.items():
        if name not in frame.columns:
            continue
        is_cat = kind == "categorical" or not pd.api.types.is_numeric_dtype(frame[name])
        features[name] = category_bins(frame[name]) if is_cat else numeric_bins(frame[name])
    # the shipped model's own out-of-sample scores (holdout), as production scores are made
    holdout = predictions["set"] == "holdout"
    proba = predictions.loc[holdout if holdout.any() else slice(None), "xgb_proba"].astype(float)
    features[SCORE_FEATURE] = numeric_bins(proba)
    labelled = predictions[predictions["target"].notna()]
    segments = labelled[segment_col].astype(object).where(labelled[segment_col].notna(), "Unknown")
    by_segment = labelled.groupby(segments.astype(str))["target"].agg(["mean", "size"])
    top = _top_decile_precision(labelled)
    delays = conversion_delay_hours(frame)
    return {
        "format": 1,
        "n_rows": len(frame),
        "features": features,
        "positive_rate": float(labelled["target"].mean()),
        "positive_rate_by_segment": {
            str(k): {"rate": float(r["mean"]), "n": int(r["size"])}
            for k, r in by_segment.iterrows()
        },
        "expected": {
            "holdout_aucpr": holdout_metrics.get("aucpr"),
            "holdout_top_decile_precision": top,
            "holdout_positive_rate": float(
                labelled.loc[labelled["set"] == "holdout", "target"].mean()
            ),
        },
        "conversion_delay_hours": delays,
    }


def conversion_delay_hours(frame: pd.DataFrame) -> list[float] | None:
    """Quantiles (``DELAY_QUANTILES`` evenly spaced levels, 0 to 1) of the hours from contact
    to conversion of the training positives: how soon the leads that convert do so. None when
    the frame lacks ``contact_ts``, ``converted_ts`` or ``target``, or has no positive."""
    if not {"contact_ts", "converted_ts", "target"} <= set(frame.columns):
        return None
    pos = frame[frame["target"] == 1]
    hours = (
        pd.to_datetime(pos["converted_ts"], utc=True) - pd.to_datetime(pos["contact_ts"], utc=True)
    ).dt.total_seconds().to_numpy(dtype=float) / 3600.0
    hours = hours[np.isfinite(hours)]
    if not len(hours):
        return None
    return np.quantile(hours, np.linspace(0, 1, DELAY_QUANTILES)).round(4).tolist()


def _top_decile_precision(labelled: pd.DataFrame) -> float | None:
    ho = labelled[labelled["set"] == "holdout"]
    if ho.empty:
        return None
    k = max(1, int(np.ceil(0.1 * len(ho))))
    order = np.argsort(-ho["xgb_proba"].to_numpy(dtype=float), kind="mergesort")
    return float(ho["target"].to_numpy(dtype=float)[order[:k]].mean())
