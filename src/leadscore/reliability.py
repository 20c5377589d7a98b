"""Evaluate stage, calibration and stability figures, all from out-of-sample predictions.

Reads labels, calibrated probabilities, AUM tiers, bucket cut points and time blocks; returns
JSON-ready blocks: calibration-in-the-large and slope with 95% intervals, the ECE next to the
ECE a perfectly calibrated model would show on the same rows (its noise band), the Brier score
next to the base-rate predictor's, bucket shares, and the KS between time blocks. No files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from leadscore.config import DEFAULT_BUCKETS, BucketConfig, GatesConfig

_Z95 = 1.959963984540054


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    return np.asarray(np.log(p / (1 - p)))


def _logistic_fit(
    design: np.ndarray, y: np.ndarray, offset: np.ndarray, n_iter: int = 50
) -> tuple[np.ndarray, np.ndarray] | None:
    """Maximum-likelihood logistic coefficients and their standard errors (Newton).

    Returns None when the information matrix is singular (e.g. a constant predictor's slope).
    """
    beta = np.zeros(design.shape[1])
    info = np.eye(design.shape[1])
    for _ in range(n_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta + offset, -35, 35)))
        w = p * (1 - p)
        info = design.T @ (design * w[:, None])
        if np.linalg.cond(info) > 1e12:
            return None
        step = np.linalg.solve(info, design.T @ (y - p))
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    return beta, np.sqrt(np.diag(np.linalg.inv(info)))


def calibration_line(y: npt.ArrayLike, p: npt.ArrayLike) -> dict[str, Any]:
    """Calibration-in-the-large and calibration slope, each with a 95% Wald interval.

    Intercept: ``a`` in ``logit P(y) = a + logit(p)`` (0 when the mean is right; > 0 means the
    model under-predicts). Slope: ``b`` in ``logit P(y) = c + b * logit(p)`` (1 when the
    spread is right; < 1 means predictions are too extreme). NaN when not estimable (no
    positives, or a constant predictor's slope).
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    lp = _logit(p)
    nan2 = [float("nan"), float("nan")]
    out: dict[str, Any] = {
        "n": len(y),
        "n_pos": int(y.sum()),
        "mean_predicted": float(np.mean(p)) if len(y) else float("nan"),
        "observed_rate": float(y.mean()) if len(y) else float("nan"),
        "intercept": float("nan"),
        "intercept_ci95": nan2,
        "slope": float("nan"),
        "slope_ci95": nan2,
    }
    if len(y) == 0 or y.sum() in (0, len(y)):
        return out
    fit = _logistic_fit(np.ones((len(y), 1)), y, lp)
    if fit is not None:
        a, se = float(fit[0][0]), float(fit[1][0])
        out["intercept"], out["intercept_ci95"] = a, [a - _Z95 * se, a + _Z95 * se]
    fit = _logistic_fit(np.column_stack([np.ones(len(y)), lp]), y, np.zeros(len(y)))
    if fit is not None:
        b, se = float(fit[0][1]), float(fit[1][1])
        out["slope"], out["slope_ci95"] = b, [b - _Z95 * se, b + _Z95 * se]
    return out


def ece_noise_band(
    p: npt.ArrayLike, n_bins: int = 10, n_samples: int = 200, quantile: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """The ECE a perfectly calibrated model would show on these rows.

    Outcomes are drawn from the model's own probabilities ``n_samples`` times; each draw's
    ECE (same equal-frequency bins) is what sampling noise alone gives. Returns its mean and
    the ``quantile`` (the gate's threshold).
    """
    from leadscore.evaluate import ece

    probs = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    if len(probs) == 0:
        return {"mean": float("nan"), "band": float("nan"), "quantile": quantile}
    rng = np.random.default_rng(seed)
    draws = [ece(rng.random(len(probs)) < probs, probs, n_bins) for _ in range(n_samples)]
    return {
        "mean": float(np.mean(draws)),
        "band": float(np.quantile(draws, quantile)),
        "quantile": quantile,
    }


def base_rate_brier(y: npt.ArrayLike) -> float:
    """Brier score of the constant predictor at the rows' own observed rate (its best case)."""
    y = np.asarray(y, dtype=float)
    return float(y.mean() * (1 - y.mean())) if len(y) else float("nan")


def nominal_shares(buckets: BucketConfig = DEFAULT_BUCKETS) -> dict[str, float]:
    """Each bucket's own nominal share (not cumulative), hottest first."""
    tops = [*buckets.shares_from_top.values(), 1.0]
    return {n: tops[i] - (tops[i - 1] if i else 0.0) for i, n in enumerate(buckets.names)}


def brier_skill(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """``1 - Brier / base-rate Brier``: 0 for the best constant predictor, above 0 is better."""
    y = np.asarray(y, dtype=float)
    base = base_rate_brier(y)
    if not len(y) or base == 0:
        return float("nan")
    return float(1 - np.mean((np.asarray(p, dtype=float) - y) ** 2) / base)


def bucket_shares(
    p: npt.ArrayLike,
    cutpoints: Mapping[str, float],
    true_probability: npt.ArrayLike | None = None,
    truth_cutpoints: Mapping[str, float] | None = None,
    buckets: BucketConfig = DEFAULT_BUCKETS,
) -> list[dict[str, Any]]:
    """Share of rows per bucket (hottest first) under the model, nominally and under the truth.

    ``truth_share`` applies the *same* probability cut points to the true probabilities: the
    shares a model that knew every lead's true probability would give with these cuts.
    ``truth_quantile_share`` (with ``truth_cutpoints``: the truth's own cut points at the
    nominal quantiles of the same out-of-fold rows) is the share the truth gives when cut the
    same way, so it moves away from nominal only as far as the population really moved.
    """
    from leadscore.calibrate import assign_buckets

    model = assign_buckets(np.asarray(p, dtype=float), cutpoints, buckets)
    truth = None
    if true_probability is not None:
        tp = np.asarray(true_probability, dtype=float)
        truth = None if np.isnan(tp).any() else assign_buckets(tp, cutpoints, buckets)
    truth_q = None
    if truth is not None and truth_cutpoints is not None:
        truth_q = assign_buckets(
            np.asarray(true_probability, dtype=float), truth_cutpoints, buckets
        )
    n = max(len(model), 1)
    rows = []
    for name, share in nominal_shares(buckets).items():
        row: dict[str, Any] = {
            "bucket": name,
            "nominal_share": float(share),
            "share": float((model == name).sum() / n),
        }
        if truth is not None:
            row["truth_share"] = float((truth == name).sum() / n)
            row["difference_from_truth"] = row["share"] - row["truth_share"]
        if truth_q is not None:
            row["truth_quantile_share"] = float((truth_q == name).sum() / n)
        rows.append(row)
    return rows


def calibration_block(
    y: npt.ArrayLike, p: npt.ArrayLike, tiers: npt.ArrayLike, gates: GatesConfig, seed: int = 0
) -> dict[str, Any]:
    """Calibration figures overall and per tier, and which tiers are large enough to gate.

    Each block: calibration intercept and slope with 95% intervals, ECE and its noise band
    (:func:`ece_noise_band`), Brier score and the base-rate Brier.
    """
    from leadscore.evaluate import brier, ece

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    tiers = np.asarray(tiers, dtype=object)

    def block(mask: np.ndarray) -> dict[str, Any]:
        yy, pp = y[mask], p[mask]
        noise = ece_noise_band(
            pp, n_samples=gates.ece_noise_samples, quantile=gates.ece_noise_quantile, seed=seed
        )
        return calibration_line(yy, pp) | {
            "ece": ece(yy, pp),
            "ece_noise": noise,
            "brier": brier(yy, pp) if len(yy) else float("nan"),
            "brier_base_rate": base_rate_brier(yy),
            "brier_skill": brier_skill(yy, pp),
        }

    by_tier = {}
    for t in sorted(set(tiers.tolist())):
        b = block(tiers == t)
        b["gated"] = bool(
            b["n"] >= gates.calibration_min_rows and b["n_pos"] >= gates.calibration_min_positives
        )
        by_tier[str(t)] = b
    return {
        "overall": block(np.ones(len(y), dtype=bool)),
        "by_tier": by_tier,
        "min_rows": gates.calibration_min_rows,
        "min_positives": gates.calibration_min_positives,
    }


def time_blocks(cv: pd.DataFrame, ho: pd.DataFrame, col: str) -> dict[str, np.ndarray]:
    """``col`` per CV test block (``fold_<k>``) and on the holdout."""
    groups = {f"fold_{k}": g[col].to_numpy() for k, g in cv.groupby("fold", sort=True)}
    groups["holdout"] = ho[col].to_numpy()
    return groups


def stability_ks(
    cv: pd.DataFrame, ho: pd.DataFrame, train_share: Sequence[float] | None, min_share: float
) -> dict[str, Any]:
    """Largest KS between out-of-sample calibrated scores of the time blocks.

    Each CV block is scored by the fold model that did not train on it, the holdout by the
    final model. Blocks whose fold model trained on less than ``min_share`` of the development
    rows are left out of the gated figure (a model trained on a sixth of the data scores with
    less spread: model variance, which the CV CoV gate measures, not drift); ``all_blocks``
    keeps every block.
    """
    from leadscore.evaluate import max_pairwise_ks

    groups = time_blocks(cv, ho, "xgb_proba")
    kept = {
        k: v
        for k, v in groups.items()
        if k == "holdout" or train_share is None or train_share[int(k[5:])] >= min_share
    }
    return max_pairwise_ks(kept) | {
        "scores": "out-of-sample",
        "blocks": list(kept),
        "min_train_share": min_share,
        "all_blocks": max_pairwise_ks(groups),
    }
