"""Monitoring stage, statistics: PSI and its no-drift sampling distribution, the label-free
(confidence-based) performance estimate, and the binomial test of a positive rate.

Pure NumPy/SciPy functions on arrays; no I/O. Every random step takes the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from leadscore.evaluate import average_precision

#: Share floor so an empty bin gives a finite PSI (both sides, as most tools do).
PSI_EPS = 1e-4


def psi(expected_shares: np.ndarray, counts: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index of observed bin ``counts`` against reference shares:
    ``sum((a - e) * ln(a / e))`` with shares floored at ``eps``."""
    e = np.maximum(np.asarray(expected_shares, dtype=float), eps)
    c = np.asarray(counts, dtype=float)
    a = np.maximum(c / max(1.0, c.sum()), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_null_quantile(
    expected_shares: np.ndarray, n: int, q: float, seed: int, n_draws: int = 2000
) -> float:
    """The ``q`` quantile of PSI when ``n`` leads are drawn from the reference itself
    (multinomial resampling of the reference shares): what sampling noise alone gives."""
    e = np.asarray(expected_shares, dtype=float)
    e = e / e.sum()
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, e, size=n_draws)
    ee = np.maximum(e, PSI_EPS)
    a = np.maximum(draws / n, PSI_EPS)
    values = np.sum((a - ee) * np.log(a / ee), axis=1)
    return float(np.quantile(values, q))


@dataclass(frozen=True)
class Estimate:
    """One label-free estimate: expected value and its central interval."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready."""
        return {"value": self.value, "low": self.low, "high": self.high}


def top_k(n: int, fraction: float = 0.10) -> int:
    """Size of the top ``fraction`` of ``n`` leads (at least one)."""
    return max(1, math.ceil(fraction * n))


def open_probability(
    p: np.ndarray, hours_open: np.ndarray, delay_quantiles: list[float] | None
) -> np.ndarray:
    """Chance of converting within the label window for a lead still open ``hours_open`` after
    contact, from ``p`` (its chance at contact): ``p (1 - F) / (1 - p F)``, where ``F`` is the
    share of the window's conversions made by then (empirical, from the reference's quantiles
    of the delay). Daily runs score only leads not converted yet, so the quick converters are
    never among their scores; ``hours_open`` of 0 (or no quantiles) leaves ``p`` as it is.
    """
    p = np.asarray(p, dtype=float)
    if not delay_quantiles:
        return p
    q = np.asarray(delay_quantiles, dtype=float)
    hours = np.asarray(hours_open, dtype=float)
    share = np.searchsorted(q, hours, side="right") / len(q)
    share = np.where(hours > 0, share, 0.0)
    rest = 1 - p * share  # 0 only for a sure lead past the last conversion: it has no chance
    return np.divide(p * (1 - share), rest, out=np.zeros_like(p), where=rest > 0)


def label_free_estimate(
    p: np.ndarray,
    seed: int,
    n_draws: int = 500,
    level: float = 0.90,
    scores: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """Confidence-based performance estimation: if the calibrated probabilities are right, the
    labels are Bernoulli(p); draw them ``n_draws`` times and read each metric's distribution.
    The leads are ranked by ``scores`` (default ``p``): the model's own probabilities when
    ``p`` has been adjusted (:func:`open_probability`).

    Returns ``top_decile_precision``, ``aucpr`` and ``mql_rate``: the mean and the central
    ``level`` interval over the draws.
    """
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    rank = p if scores is None else np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    order = np.argsort(-rank, kind="mergesort")
    top = order[: top_k(len(p))]
    y = rng.random((n_draws, len(p))) < p
    prec = y[:, top].mean(axis=1)
    rate = y.mean(axis=1)
    ap = np.array([average_precision(row, rank) for row in y if row.any()])
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2

    def est(v: np.ndarray) -> Estimate:
        if not len(v):
            return Estimate(float("nan"), float("nan"), float("nan"))
        return Estimate(float(v.mean()), float(np.quantile(v, lo)), float(np.quantile(v, hi)))

    return {"top_decile_precision": est(prec), "aucpr": est(ap), "mql_rate": est(rate)}


def realized(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The same three figures from the labels that arrived."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="mergesort")
    return {
        "top_decile_precision": float(y[order[: top_k(len(p))]].mean()),
        "aucpr": average_precision(y, p),
        "mql_rate": float(y.mean()),
    }


def rate_test(k: int, n: int, rate: float) -> float:
    """Two-sided exact binomial p-value of ``k`` positives in ``n`` at ``rate``."""
    if n == 0:
        return 1.0
    from scipy.stats import binomtest  # imported on use: loading this module stays cheap

    return float(binomtest(k, n, min(max(rate, 1e-12), 1 - 1e-12)).pvalue)


def lower_tail(k: int, n: int, rate: float) -> float:
    """One-sided exact binomial p-value of ``k`` or fewer positives in ``n`` at ``rate``."""
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(k, n, min(max(rate, 1e-12), 1 - 1e-12), "less").pvalue)
