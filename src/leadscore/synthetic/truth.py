"""The generating model: a lead's true 30-day conversion probability from point-in-time facts.

Inputs are the clean values of the lead's as-of vintage (rep and firm), tenures recomputed at
contact time and the contact weekday. Most of the weight sits on values that change between
vintages (firm moves, licences, AUM, growth), so joining the wrong vintage costs accuracy.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np

from leadscore.synthetic.timeline import DAY_S, weekday_of

Signal = Literal["default", "weak"]
TARGET_RATE: Final = 0.04
#: Multiplier of the linear score per signal strength (tuned to the AUC targets in the module
#: tests: default AUC-PR ~0.4 on 2025-Q3 leads, weak AUC-ROC ~0.62).
SIGNAL_SCALE: Final[dict[str, float]] = {"default": 1.4, "weak": 0.35}
#: Per-lead facts gathered from the as-of vintage (clean, before file mess).
FEATURES: Final = (
    "total_assets",
    "big_metro",
    "has_cfp",
    "has_65_66",
    "hire_day",
    "became_day",
    "n_ria_assoc",
    "growth_1y",
    "hnw_share",
    "avg_account",
    "non_advisor",
)


def linear_score(feats: dict[str, np.ndarray], contact_s: np.ndarray) -> np.ndarray:
    """The signal part of the logit (no intercept, unit scale)."""
    contact_day = contact_s // DAY_S
    yrs_firm = (contact_day - feats["hire_day"]) / 365.25
    yrs_rep = (contact_day - feats["became_day"]) / 365.25
    small = feats["total_assets"] < 100
    large = feats["total_assets"] > 500
    new_to_firm = yrs_firm < 2
    growth = np.nan_to_num(feats["growth_1y"], nan=0.0)
    account = np.log10(np.maximum(feats["avg_account"], 1.0)) - 6.1
    return (
        0.7 * small
        - 0.6 * large
        - 0.7 * feats["big_metro"]
        + 0.6 * (weekday_of(contact_s) >= 5)
        + 0.8 * feats["has_cfp"]
        + 0.5 * feats["has_65_66"]
        + 1.0 * new_to_firm
        - 0.5 * (yrs_firm > 10)
        + 0.3 * (yrs_rep < 3)
        + 0.6 * (feats["n_ria_assoc"] > 1)
        + 0.5 * (growth > 0)
        + 0.015 * np.clip(growth, -30, 60)
        + 0.8 * (feats["hnw_share"] - 0.3)
        - 0.3 * account
        + 0.8 * (small & new_to_firm)
        - 1.5 * feats["non_advisor"]
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def true_probability(score: np.ndarray, signal: Signal) -> tuple[np.ndarray, float]:
    """``sigmoid(b + k * score)`` with ``b`` solved so the mean is ``TARGET_RATE``.

    Returns the probabilities and the intercept ``b`` (bisection: deterministic).
    """
    z = SIGNAL_SCALE[signal] * (score - score.mean())
    lo, hi = -15.0, 5.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if sigmoid(mid + z).mean() > TARGET_RATE:
            hi = mid
        else:
            lo = mid
    b = (lo + hi) / 2
    return sigmoid(b + z), b
