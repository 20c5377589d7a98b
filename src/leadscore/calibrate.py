"""Calibrate stage: per-AUM-tier Platt (or isotonic) calibration, buckets and A/B/C tiers.

Fitted on out-of-fold model margins only (rule 4). Everything learned here serializes to
plain JSON (rule 8).

Buckets and tiers are cut on *calibrated* probability at quantiles of the out-of-fold
calibrated scores; their names, shares and tiers come from :class:`~leadscore.config.BucketConfig`
(by default Very Hot = top 5%, Hot = next 10%, Warm = next 25%, Cool = next 30%, Cold = the
rest; tier A = Very Hot + Hot, B = Warm, C = Cool + Cold). Segments are the catalog's
calibration segment (the AUM tier) and its values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from leadscore.catalog import CALIBRATION_SEGMENT, calibration_segment
from leadscore.config import DEFAULT_BUCKETS, BucketConfig

_EPS = 1e-12


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -35, 35))))


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    return np.asarray(np.log(p / (1 - p)))


def fit_platt(margin: np.ndarray, y: np.ndarray, n_iter: int = 100) -> tuple[float, float]:
    """Platt scaling ``p = sigmoid(a * margin + b)`` by Newton's method on the log loss.

    Uses Platt's smoothed targets ((n_pos + 1) / (n_pos + 2) and 1 / (n_neg + 2)) so a
    segment with few or no positives still gets a finite fit.
    """
    x = np.asarray(margin, dtype=float)
    y = np.asarray(y, dtype=float)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    theta = np.zeros(2)
    design = np.column_stack([x, np.ones_like(x)])

    def loss(th: np.ndarray) -> float:
        z = design @ th
        return float(np.sum(np.logaddexp(0.0, z) - t * z))

    current = loss(theta)
    for _ in range(n_iter):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - t)
        w = np.maximum(p * (1 - p), _EPS)
        hess = design.T @ (design * w[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(theta - scale * step) > current:
            scale /= 2  # backtracking keeps Newton from overshooting
        theta = theta - scale * step
        current = loss(theta)
        if np.abs(scale * step).max() < 1e-10:
            break
    a, b = float(theta[0]), float(theta[1])
    return a, b


def _check_fitted(estimator: object, attribute: str) -> None:
    """scikit-learn's ``NotFittedError`` when ``attribute`` is not learned yet.

    scikit-learn is imported only to raise it: a process that only scores never loads it.
    """
    if not hasattr(estimator, attribute):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; call 'fit' first."
        )


class SegmentCalibrator:
    """One calibrator per segment (AUM tier) plus a global fallback.

    A scikit-learn style estimator (``get_params``/``set_params``, ``fit`` returns ``self``,
    learned attributes end in ``_``) that does not import scikit-learn unless it fits an
    isotonic calibrator, so loading a model for scoring stays light.

    Args:
        method: "platt" (sigmoid on the margin) or "isotonic".
        min_rows: segments with fewer rows or fewer than ``min_positives`` positives use
            the global calibrator.
        min_positives: see ``min_rows``.

    Learned attributes: ``global_`` and ``segments_`` (segment -> parameters), each a dict of
    plain floats; ``fallback_`` lists segments that use the global calibrator.
    """

    def __init__(self, method: str = "platt", min_rows: int = 200, min_positives: int = 10):
        self.method = method
        self.min_rows = min_rows
        self.min_positives = min_positives

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (``deep`` is accepted for scikit-learn's ``clone``)."""
        return {
            "method": self.method,
            "min_rows": self.min_rows,
            "min_positives": self.min_positives,
        }

    def set_params(self, **params: Any) -> SegmentCalibrator:
        """Set constructor parameters; unknown names are an error."""
        unknown = set(params) - set(self.get_params())
        if unknown:
            raise ValueError(f"invalid parameter(s) {sorted(unknown)} for SegmentCalibrator")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"SegmentCalibrator({args})"

    def fit(
        self, margin: npt.ArrayLike, y: npt.ArrayLike, segments: npt.ArrayLike
    ) -> SegmentCalibrator:
        """Fit on out-of-fold margins (log-odds), labels and segment labels."""
        if self.method not in ("platt", "isotonic"):
            raise ValueError(f"unknown calibration method {self.method!r}")
        margin = np.asarray(margin, dtype=float)
        y = np.asarray(y, dtype=int)
        segments = np.asarray(segments, dtype=object)
        self.global_ = self._fit_one(margin, y)
        self.segments_: dict[str, dict[str, Any]] = {}
        self.fallback_: list[str] = []
        known = calibration_segment().values
        for seg in known + tuple(sorted(set(map(str, segments)) - set(known))):
            mask = segments == seg
            if mask.sum() >= self.min_rows and y[mask].sum() >= self.min_positives:
                self.segments_[seg] = self._fit_one(margin[mask], y[mask])
            else:
                self.fallback_.append(seg)
        return self

    def _fit_one(self, margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        if self.method == "platt":
            a, b = fit_platt(margin, y)
            return {"a": a, "b": b}
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
        return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}

    def _apply(self, params: Mapping[str, Any], margin: np.ndarray) -> np.ndarray:
        if self.method == "platt":
            return _sigmoid(params["a"] * margin + params["b"])
        return np.asarray(np.interp(margin, params["x"], params["y"]))

    def predict(self, margin: npt.ArrayLike, segments: npt.ArrayLike) -> np.ndarray:
        """Calibrated probabilities; unknown segments use the global calibrator."""
        _check_fitted(self, "global_")
        margin = np.asarray(margin, dtype=float)
        segments = np.asarray(segments, dtype=object)
        out = self._apply(self.global_, margin)
        for seg, params in self.segments_.items():
            mask = segments == seg
            if mask.any():
                out[mask] = self._apply(params, margin[mask])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        _check_fitted(self, "global_")
        return {
            "method": self.method,
            "min_rows": self.min_rows,
            "min_positives": self.min_positives,
            "global": self.global_,
            "segments": self.segments_,
            "fallback": self.fallback_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output."""
        cal = cls(data["method"], int(data["min_rows"]), int(data["min_positives"]))
        cal.global_ = dict(data["global"])
        cal.segments_ = {k: dict(v) for k, v in data["segments"].items()}
        cal.fallback_ = list(data["fallback"])
        return cal


def bucket_cutpoints(
    p: npt.ArrayLike, buckets: BucketConfig = DEFAULT_BUCKETS
) -> dict[str, float]:
    """Lower calibrated-probability cut of each bucket but the last, from score quantiles."""
    p = np.asarray(p, dtype=float)
    shares = buckets.shares_from_top
    return {name: float(np.quantile(p, 1 - share)) for name, share in shares.items()}


def score_edges(p: npt.ArrayLike) -> list[float]:
    """The 98 calibrated-probability quantiles (1%..98%) that cut scores 1..99.

    A lead's score is its percentile among the out-of-fold leads the edges came from: 99 means
    it ranks above 98% of them. Monotone in probability, so it orders leads like the model.
    """
    p = np.asarray(p, dtype=float)
    return [float(q) for q in np.quantile(p, np.arange(1, 99) / 100)]


def assign_scores(p: npt.ArrayLike, edges: Sequence[float]) -> np.ndarray:
    """Score 1..99 per probability: 1 + the number of edges it reaches."""
    p = np.asarray(p, dtype=float)
    return (1 + np.searchsorted(np.asarray(edges, dtype=float), p, side="right")).astype(np.int64)


def assign_buckets(
    p: npt.ArrayLike, cutpoints: Mapping[str, float], buckets: BucketConfig = DEFAULT_BUCKETS
) -> np.ndarray:
    """Bucket name per probability: the first bucket (hottest first) whose cut it reaches."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), buckets.names[-1], dtype=object)
    for name in reversed(buckets.names[:-1]):
        out[p >= cutpoints[name]] = name
    return out


def assign_tiers(
    p: npt.ArrayLike, cutpoints: Mapping[str, float], buckets: BucketConfig = DEFAULT_BUCKETS
) -> np.ndarray:
    """Call tier per probability (by default A = Very Hot + Hot, B = Warm, C = the rest)."""
    names = assign_buckets(p, cutpoints, buckets)
    return np.array([buckets.tier_of_bucket[b] for b in names], dtype=object)


def fit_calibrators(
    margin: np.ndarray, y: np.ndarray, segments: Sequence[str] | np.ndarray, method: str
) -> SegmentCalibrator:
    """Fit a per-AUM-tier calibrator on out-of-fold margins."""
    return SegmentCalibrator(method=method).fit(margin, y, segments)


def calibrate_oof(oof: pd.DataFrame, margin_col: str, method: str) -> SegmentCalibrator:
    """Fit a per-AUM-tier calibrator on the out-of-fold ``margin_col`` of ``oof``.

    ``oof`` has one row per out-of-fold prediction with ``target`` and ``aum_tier``.
    """
    return fit_calibrators(
        oof[margin_col].to_numpy(),
        oof["target"].to_numpy(),
        oof[CALIBRATION_SEGMENT].astype(str).to_numpy(),
        method,
    )


def calibrate_predictions(
    predictions: pd.DataFrame,
    calibrator: SegmentCalibrator,
    baseline: SegmentCalibrator,
    final_margin: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, float], list[float]]:
    """Calibrated probabilities, buckets and tiers for every training prediction.

    ``predictions`` holds ``set`` ("cv" or "holdout"), ``aum_tier``, ``xgb_margin`` and
    ``baseline_margin``; ``final_margin`` is the shipped model's margin on the same rows.
    Bucket cut points and score edges come from the out-of-fold ("cv") probabilities only.

    Returns:
        (predictions with ``xgb_proba``, ``baseline_proba``, ``final_proba``, ``bucket`` and
        ``tier`` added; bucket cut points; score edges). One output row per input row.
    """
    out = predictions.copy()
    tiers = out[CALIBRATION_SEGMENT].astype(str).to_numpy()
    out["xgb_proba"] = calibrator.predict(out["xgb_margin"], tiers)
    out["baseline_proba"] = baseline.predict(out["baseline_margin"], tiers)
    out["final_proba"] = calibrator.predict(final_margin, tiers)
    oof_proba = out.loc[out["set"] == "cv", "xgb_proba"]
    cutpoints, edges = bucket_cutpoints(oof_proba), score_edges(oof_proba)
    out["bucket"] = assign_buckets(out["xgb_proba"], cutpoints)
    out["tier"] = assign_tiers(out["xgb_proba"], cutpoints)
    return out, cutpoints, edges
