"""Train stage: class-imbalance strategies (none, scale_pos_weight, in-fold SMOTE).

Reads one training fold's preprocessed features and labels; returns the rebalanced fold and
any extra XGBoost parameters. Test and holdout rows never pass through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, SMOTENC

STRATEGY_ORDER = ("none", "scale_pos_weight", "smote")
STRATEGY_TIE = 0.002


def apply_strategy(
    x: pd.DataFrame, y: np.ndarray, strategy: str, types: Mapping[str, str], seed: int
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Rebalance one training fold; returns (x, y, extra XGBoost params). Never sees test rows."""
    if strategy == "none":
        return x, y, {}
    if strategy == "scale_pos_weight":
        n_pos = max(int(y.sum()), 1)
        return x, y, {"scale_pos_weight": float((len(y) - n_pos) / n_pos)}
    if strategy == "smote":
        return (*_smote(x, y, types, seed), {})
    raise ValueError(f"unknown imbalance strategy {strategy!r}")


def _smote(
    x: pd.DataFrame, y: np.ndarray, types: Mapping[str, str], seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """SMOTE (SMOTENC with categoricals) on an imputed copy; original rows keep their NaNs."""
    n_pos = int(y.sum())
    if n_pos < 2:
        return x, y
    cols = list(x.columns)
    discrete = [i for i, c in enumerate(cols) if types[c] != "numeric"]
    k = min(5, n_pos - 1)
    sampler = (
        SMOTENC(categorical_features=discrete, random_state=seed, k_neighbors=k)
        if discrete
        else SMOTE(random_state=seed, k_neighbors=k)
    )
    xr, yr = sampler.fit_resample(_encode(x, types), y)
    synth = _decode(xr[len(x) :], x, types)
    out = pd.concat([x, synth[cols]])
    return out, np.asarray(yr)


def _encode(x: pd.DataFrame, types: Mapping[str, str]) -> np.ndarray:
    """Numeric matrix for SMOTE: category codes (missing = extra code), bool 0/1/2, imputed
    numbers (median)."""
    arr = np.empty((len(x), x.shape[1]))
    for i, c in enumerate(x.columns):
        if types[c] == "category":
            codes = x[c].cat.codes.to_numpy()
            arr[:, i] = np.where(codes < 0, len(x[c].cat.categories), codes)
        elif types[c] == "bool":
            arr[:, i] = x[c].fillna(2.0).to_numpy()
        else:
            med = x[c].median()
            arr[:, i] = x[c].fillna(0.0 if pd.isna(med) else med).to_numpy()
    return arr


def _decode(synth: np.ndarray, x: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """Synthetic rows back in ``x``'s dtypes (the encoding's missing codes become missing)."""
    new: dict[str, Any] = {}
    for i, c in enumerate(x.columns):
        if types[c] == "category":
            cats = x[c].cat.categories
            codes = np.rint(synth[:, i]).astype(int)
            new[c] = pd.Categorical.from_codes(np.where(codes >= len(cats), -1, codes), cats)
        elif types[c] == "bool":
            new[c] = np.where(synth[:, i] > 1.5, np.nan, np.rint(synth[:, i]))
        else:
            new[c] = synth[:, i]
    index = pd.Index([f"__smote_{i}" for i in range(len(synth))], name=x.index.name)
    return pd.DataFrame(new, index=index)


def choose_strategy(scores: Mapping[str, float]) -> str:
    """Best mean CV AUC-PR; within ``STRATEGY_TIE`` of the best, the simpler strategy wins."""
    best = max(scores.values())
    for name in STRATEGY_ORDER:
        if name in scores and scores[name] >= best - STRATEGY_TIE:
            return name
    raise ValueError("no strategies scored")


def strategy_record(
    comparison: Mapping[str, Mapping[str, Any]], winner: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """JSON-ready record of the strategy comparison at default parameters ``params``."""
    return {
        "winner": winner,
        "tie_tolerance": STRATEGY_TIE,
        "order": list(STRATEGY_ORDER),
        "params": params,
        "strategies": {
            k: {"mean_aucpr": v["mean_aucpr"], "fold_aucpr": v["aucpr"], "n_trees": v["n_trees"]}
            for k, v in comparison.items()
        },
    }
