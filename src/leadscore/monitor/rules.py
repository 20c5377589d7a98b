"""Monitoring stage, alert rules: each turns a measured figure into a finding, with a guard so
sampling noise alone does not fire it.

Reads figures the monitor gathered (no I/O); returns :class:`Finding` records. How each rule
decides (``alpha`` is the false-alarm level per run and per rule, split Bonferroni-style over
the rule's subjects and tails):

- ``scoring_failures``: rejected / considered in the last run above ``failure_rate`` AND the
  exact binomial test rejects "the true failure rate is at most ``failure_rate``" at ``alpha``.
- ``feature_drift`` (per feature and the score): over leads contacted in a window of whole
  weeks (``window_days`` rounded; a weekday feature needs whole weeks), only with
  ``min_sample`` leads in it and at least ``min_span_days`` (and a week) of contacts binned;
  PSI above ``psi_alert`` (alert) or ``psi_warning`` (warning) AND above the ``1 - alpha/m``
  quantile of PSI under no drift (multinomial resampling of the reference at the same size),
  ``m`` the number of subjects.
- ``positive_rate``: the matured window's positives (leads contacted in the
  ``rate_window_days`` before the label window ended) against the rate their calibrated
  probabilities expect: relative change above ``performance_drop`` AND the exact two-sided
  binomial test at ``alpha/2``; only with ``min_sample`` matured leads.
- ``performance_drop``: realized top-decile precision over the same window below the label-free
  expectation by more than ``performance_drop`` (relative) AND the one-sided exact binomial
  test at ``alpha/2``.
- ``data_freshness``: the newest vendor vintage older than ``vintage_max_age_days`` (no noise).

Across runs: consecutive windows overlap (a day changes 1/28 of the PSI window, 1/56 of the
rate window), so 120 daily runs are about 120/28 and 120/56 independent looks, not 120; the
expected false alerts over 120 days stay near ``alpha`` times a handful.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from leadscore.config import MonitorConfig
from leadscore.monitor.reference import n_bins_of
from leadscore.monitor.stats import psi, psi_null_quantile, rate_test

Level = Literal["alert", "warning"]
RULES = (
    "scoring_failures",
    "feature_drift",
    "positive_rate",
    "performance_drop",
    "data_freshness",
)


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one subject (``level`` None: measured, nothing to raise)."""

    rule: str
    subject: str
    level: Level | None
    value: float | None
    threshold: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def scoring_failures(n_rejected: int, n_considered: int, cfg: MonitorConfig) -> Finding:
    """Failures of the last run against ``failure_rate``."""
    rate = n_rejected / n_considered if n_considered else 0.0
    p = 1.0
    if n_considered and rate > cfg.failure_rate:
        from scipy.stats import binomtest  # imported on use: the daily run rarely needs it

        p = float(binomtest(n_rejected, n_considered, cfg.failure_rate, "greater").pvalue)
    fire = rate > cfg.failure_rate and p < cfg.alpha
    detail = f"{n_rejected}/{n_considered} rejected, p={p:.2g}"
    return Finding("scoring_failures", "last_run", "alert" if fire else None, rate,
                   cfg.failure_rate, detail)  # fmt: skip


def feature_drift(
    reference: Mapping[str, Any],
    counts: pd.DataFrame,
    cfg: MonitorConfig,
    seed: int,
    weeks: int | None = None,
) -> list[Finding]:
    """PSI per feature (and the score) over the window's bin counts; ``weeks``: whole weeks of
    contacts the window covers (0: not yet a whole week binned, reported only; None: full)."""
    short = weeks is not None and weeks < 1
    feats = reference["features"]
    m = max(1, len(feats))
    out = []
    for i, (name, spec) in enumerate(sorted(feats.items())):
        c = counts[counts["feature"] == name]
        vec = np.zeros(n_bins_of(spec))
        vec[c["bin"].to_numpy(dtype=int)] = c["n"].to_numpy(dtype=float)
        n = int(vec.sum())
        if n == 0:
            continue
        value = psi(np.asarray(spec["shares"]), vec)
        level: Level | None = None
        detail = f"n={n}"
        if short:
            detail += ", less than a whole week of contacts binned: reported only"
        elif n >= cfg.min_sample and value > cfg.psi_warning:
            null_q = psi_null_quantile(np.asarray(spec["shares"]), n, 1 - cfg.alpha / m, seed + i)
            detail += f", no-drift quantile {null_q:.4f}"
            if value > null_q:
                level = "alert" if value > cfg.psi_alert else "warning"
        elif n < cfg.min_sample:
            detail += f" < min_sample {cfg.min_sample}: reported only"
        out.append(Finding("feature_drift", name, level, value, cfg.psi_alert, detail))
    return out


def positive_rate(y: np.ndarray, p: np.ndarray, cfg: MonitorConfig, subject: str) -> Finding:
    """Matured leads' positive rate against the calibrated expectation."""
    n, k = len(y), int(np.sum(y))
    expected = float(np.mean(p)) if n else float("nan")
    rate = k / n if n else float("nan")
    pval = rate_test(k, n, expected) if n else 1.0
    rel = abs(rate / expected - 1) if n and expected > 0 else 0.0
    fire = n >= cfg.min_sample and pval < cfg.alpha / 2 and rel > cfg.performance_drop
    detail = f"{k}/{n} positive vs expected {expected:.4f}, p={pval:.2g}"
    return Finding("positive_rate", subject, "alert" if fire else None, rate, expected, detail)


def performance_drop(
    y: np.ndarray, p: np.ndarray, expected_top: float, cfg: MonitorConfig
) -> Finding:
    """Realized top-decile precision against its label-free expectation."""
    from leadscore.monitor.stats import lower_tail, top_k

    n = len(y)
    k = top_k(n)
    top = np.asarray(y)[np.argsort(-np.asarray(p), kind="mergesort")[:k]]
    hits = int(top.sum())
    realized = hits / k
    pval = lower_tail(hits, k, expected_top) if n else 1.0
    fire = (
        n >= cfg.min_sample
        and realized < (1 - cfg.performance_drop) * expected_top
        and pval < cfg.alpha / 2
    )
    detail = f"top decile {hits}/{k} vs expected {expected_top:.4f}, p={pval:.2g}"
    return Finding("performance_drop", "top_decile_precision", "alert" if fire else None,
                   realized, expected_top, detail)  # fmt: skip


def data_freshness(age_days: float | None, cfg: MonitorConfig) -> Finding:
    """Age of the newest vendor vintage."""
    fire = age_days is not None and age_days > cfg.vintage_max_age_days
    detail = "no vintage" if age_days is None else f"newest vintage {age_days:.0f} days old"
    level: Level | None = "alert" if fire else None
    return Finding(
        "data_freshness", "vendor_vintage", level, age_days, cfg.vintage_max_age_days, detail
    )
