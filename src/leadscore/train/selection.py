"""Train stage, feature pre-filters: information value and variance inflation (rule 4).

Fitted inside each training fold only. Reads a feature frame and labels; learns which
features to keep and why the others were removed.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


def bin_codes(x: pd.Series, kind: str = "numeric", n_bins: int = 10) -> np.ndarray:
    """Integer bin per value: quantile bins for numbers, one bin per level otherwise.

    Missing values get their own bin, ``-1``.
    """
    if kind == "numeric":
        values = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
        missing = np.isnan(values)
        codes = np.full(len(values), -1, dtype=np.int64)
        if (~missing).any():
            qs = np.linspace(0, 1, n_bins + 1)[1:-1]
            edges = np.unique(np.quantile(values[~missing], qs))
            codes[~missing] = np.searchsorted(edges, values[~missing], side="right")
        return codes
    codes_cat = pd.Categorical(x.astype("object").where(x.notna(), None)).codes
    return np.asarray(codes_cat, dtype=np.int64)


def information_value(
    x: pd.Series, y: np.ndarray, kind: str = "numeric", n_bins: int = 10, smoothing: float = 0.5
) -> float:
    """Information value of one feature: sum over bins of (%pos - %neg) * WoE.

    WoE = ln(%pos / %neg); ``smoothing`` is added to each bin's counts so empty cells stay
    finite.
    """
    y = np.asarray(y, dtype=np.int64)
    codes = bin_codes(x, kind, n_bins)
    _, inverse = np.unique(codes, return_inverse=True)
    n_bins_seen = int(inverse.max()) + 1 if len(inverse) else 0
    pos = np.bincount(inverse, weights=y, minlength=n_bins_seen)
    tot = np.bincount(inverse, minlength=n_bins_seen)
    neg = tot - pos
    dist_pos = (pos + smoothing) / (pos.sum() + smoothing * n_bins_seen)
    dist_neg = (neg + smoothing) / (neg.sum() + smoothing * n_bins_seen)
    return float(np.sum((dist_pos - dist_neg) * np.log(dist_pos / dist_neg)))


def variance_inflation(x: pd.DataFrame) -> pd.Series:
    """VIF per column from the diagonal of the inverse correlation matrix.

    Missing values are filled with the column median first; constant columns are left out.
    A tiny ridge keeps exactly collinear columns finite but huge.
    """
    filled = x.astype(float).fillna(x.astype(float).median())
    varying = [c for c in filled.columns if filled[c].std() > 0]
    if not varying:
        return pd.Series(dtype=float)
    corr = np.corrcoef(filled[varying].to_numpy(), rowvar=False).reshape(
        len(varying), len(varying)
    )
    return pd.Series(_vif_from_corr(corr), index=varying)


def _vif_from_corr(corr: np.ndarray) -> np.ndarray:
    ridge = 1e-9 * np.eye(len(corr))
    return np.diag(np.linalg.inv(corr + ridge))


class FeatureSelector(BaseEstimator):
    """IV filter on every feature, then iterative VIF filter on the continuous ones.

    Args:
        feature_types: feature -> "numeric" | "bool" | "category" (ordered).
        iv_min: features with information value below this are removed.
        vif_max: while the largest VIF among continuous features exceeds this, the feature
            with the largest VIF (ties: lower IV, then later in order) is removed.
        n_bins: quantile bins for numeric IV.

    Learned attributes: ``iv_`` (feature -> IV), ``vif_`` (final VIF of kept continuous
    features), ``removed_`` (feature -> reason), ``selected_`` (kept features, in order).
    """

    def __init__(
        self,
        feature_types: Mapping[str, str] | None = None,
        iv_min: float = 0.02,
        vif_max: float = 10.0,
        n_bins: int = 10,
    ) -> None:
        self.feature_types = feature_types
        self.iv_min = iv_min
        self.vif_max = vif_max
        self.n_bins = n_bins

    def fit(self, x: pd.DataFrame, y: Any) -> FeatureSelector:
        """Learn the kept features from a training fold."""
        types = dict(self.feature_types or {c: "numeric" for c in x.columns})
        y_arr = np.asarray(y)
        self.iv_ = {f: information_value(x[f], y_arr, types[f], self.n_bins) for f in types}
        self.removed_: dict[str, str] = {}
        kept = [f for f in types if self.iv_[f] >= self.iv_min]
        if not kept:  # never leave the model without inputs: keep the strongest one
            kept = [max(types, key=lambda f: self.iv_[f])]
        for f in types:
            if f not in kept:
                self.removed_[f] = f"IV {self.iv_[f]:.4f} < {self.iv_min}"
        continuous = [f for f in kept if types[f] == "numeric"]
        self.vif_ = self._vif_filter(x[continuous]) if len(continuous) > 1 else {}
        self.selected_ = [f for f in kept if f not in self.removed_]
        return self

    def _vif_filter(self, x: pd.DataFrame) -> dict[str, float]:
        vif = variance_inflation(x)
        names = list(vif.index)
        filled = x[names].astype(float).fillna(x[names].astype(float).median())
        corr = np.corrcoef(filled.to_numpy(), rowvar=False)
        current = list(range(len(names)))
        values = vif.to_numpy()
        while len(current) > 1:
            values = _vif_from_corr(corr[np.ix_(current, current)])
            top = float(values.max())
            if top <= self.vif_max:
                break
            tied = [i for i, v in zip(current, values, strict=True) if v >= top * (1 - 1e-6)]
            drop = min(tied, key=lambda i: (self.iv_[names[i]], -i))
            self.removed_[names[drop]] = f"VIF {top:.1f} > {self.vif_max}"
            current.remove(drop)
        if len(current) < 2:
            return {names[i]: 1.0 for i in current}
        values = _vif_from_corr(corr[np.ix_(current, current)])
        return {names[i]: float(v) for i, v in zip(current, values, strict=True)}

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        """Keep the selected columns, in order."""
        check_is_fitted(self, "selected_")
        return x[self.selected_]

    def report(self) -> dict[str, Any]:
        """JSON-ready record of what was kept and removed, and why."""
        check_is_fitted(self, "selected_")
        return {
            "selected": list(self.selected_),
            "removed": dict(self.removed_),
            "iv": {k: round(v, 6) for k, v in self.iv_.items()},
            "vif": {k: round(v, 4) for k, v in self.vif_.items()},
        }


def selection_stability(
    selections: Sequence[Collection[str]], features: Sequence[str]
) -> dict[str, Any]:
    """How stable the kept set is across folds.

    Returns per-feature selection frequency, the mean pairwise Jaccard index of the kept sets
    and the features kept in every fold / in no fold.
    """
    sets = [set(s) for s in selections]
    freq = {f: sum(f in s for s in sets) / len(sets) for f in features} if sets else {}
    pairs = list(itertools.combinations(sets, 2))
    jaccard = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]
    return {
        "n_folds": len(sets),
        "frequency": freq,
        "mean_jaccard": float(np.mean(jaccard)) if jaccard else 1.0,
        "always": [f for f in features if freq.get(f) == 1.0],
        "never": [f for f in features if freq.get(f) == 0.0],
    }
