"""Train stage: the XGBoost model — parameters, one fit, margins, and a fit on every fold.

Reads :class:`~leadscore.train.preprocess.TrainingData`; returns boosters, out-of-fold margins
and AUC-PR per fold. Imbalance strategies are applied inside each training fold only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from leadscore import evaluate as ev
from leadscore.progress import ProgressFn
from leadscore.train.imbalance import apply_strategy, choose_strategy
from leadscore.train.preprocess import TrainingData

MAX_TREES = 600
EARLY_STOPPING_ROUNDS = 50
INNER_VALID_FRACTION = 0.15
DEFAULT_PARAMS: dict[str, Any] = {
    "max_depth": 4,
    "learning_rate": 0.08,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_alpha": 0.01,
    "reg_lambda": 1.0,
    "min_child_weight": 5.0,
}


def xgb_params(params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Full XGBoost parameter set around tuned hyper-parameters."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "nthread": 2,
        "seed": seed,
        **{k: v for k, v in params.items() if k != "n_estimators"},
    }


def dmatrix(x: pd.DataFrame, y: np.ndarray | None = None) -> xgb.DMatrix:
    """XGBoost matrix of a preprocessed frame (categoricals native, NaN = missing)."""
    return xgb.DMatrix(x, label=y, enable_categorical=True, missing=np.nan)


def fit_xgb(
    x: pd.DataFrame,
    y: np.ndarray,
    params: Mapping[str, Any],
    strategy: str,
    data: TrainingData,
    n_trees: int | None = None,
) -> tuple[xgb.Booster, int]:
    """Fit one booster. Without ``n_trees``, early-stop on the last 15% (by time) of ``x``.

    The early-stopping fit leaves ``data.gap_days`` before its validation rows, like the CV
    folds, so no training label matures inside the validation period.
    """
    valid = None
    if n_trees is None:
        fit_rows, valid_rows = early_stopping_split(x, data)
        if y[valid_rows].sum() > 0 and y[fit_rows].sum() > 1:
            valid = (x.iloc[valid_rows], y[valid_rows])
            x, y = x.iloc[fit_rows], y[fit_rows]
    x_fit, y_fit, extra = apply_strategy(x, y, strategy, data.types, data.seed)
    full = {**xgb_params(params, data.seed), **extra}
    dtrain = dmatrix(x_fit, y_fit)
    if valid is None:
        rounds = n_trees or int(params.get("n_estimators", 200))
        return xgb.train(full, dtrain, num_boost_round=rounds), rounds
    booster = xgb.train(
        full,
        dtrain,
        num_boost_round=MAX_TREES,
        evals=[(dmatrix(*valid), "valid")],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=False,
    )
    best = booster.best_iteration + 1
    return booster[:best], best


def early_stopping_split(x: pd.DataFrame, data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the fitting rows and of the validation rows (the last 15% by time).

    Fitting rows were contacted more than ``data.gap_days`` before the first validation row.
    ``x`` is ordered by contact time and indexed by lead id.
    """
    cut = int(len(x) * (1 - INNER_VALID_FRACTION))
    valid_rows = np.arange(cut, len(x))
    if data.gap_days <= 0 or data.contact_ts.empty or cut >= len(x):
        return np.arange(cut), valid_rows
    ts = pd.to_datetime(data.contact_ts.reindex(x.index), utc=True)
    limit = ts.iloc[cut] - pd.Timedelta(days=data.gap_days)
    return np.flatnonzero((ts < limit).to_numpy()), valid_rows


def margin(booster: xgb.Booster, x: pd.DataFrame) -> np.ndarray:
    """Raw log-odds of a booster."""
    return np.asarray(booster.predict(dmatrix(x), output_margin=True), dtype=float)


def cross_validate(
    data: TrainingData, selected: list[list[str]], params: Mapping[str, Any], strategy: str
) -> dict[str, Any]:
    """Fit and score XGBoost on every fold; keeps test margins for calibration.

    Returns ``aucpr``, ``train_aucpr``, ``n_trees`` and ``margins`` (one entry per fold) and
    ``mean_aucpr``.
    """
    out: dict[str, Any] = {"aucpr": [], "train_aucpr": [], "n_trees": [], "margins": []}
    for (tr, te), feats in zip(data.folds, selected, strict=True):
        x_tr, x_te = data.x.iloc[tr][feats], data.x.iloc[te][feats]
        data.record("xgboost", x_tr, x_te)
        booster, n = fit_xgb(x_tr, data.y[tr], params, strategy, data)
        m_te = margin(booster, x_te)
        out["aucpr"].append(ev.average_precision(data.y[te], m_te))
        out["train_aucpr"].append(ev.average_precision(data.y[tr], margin(booster, x_tr)))
        out["n_trees"].append(n)
        out["margins"].append(m_te)
    out["mean_aucpr"] = float(np.mean(out["aucpr"]))
    return out


def refit_folds(
    data: TrainingData,
    selected: list[list[str]],
    params: Mapping[str, Any],
    strategy: str,
    n_trees: int,
) -> list[np.ndarray]:
    """Test-block margins of fold models trained exactly like the shipped model.

    Same parameters, strategy and fixed tree count as the final refit (no early stopping), so
    calibrators and score edges fitted on these margins describe the model that ships.
    """
    margins = []
    for (tr, te), feats in zip(data.folds, selected, strict=True):
        x_tr, x_te = data.x.iloc[tr][feats], data.x.iloc[te][feats]
        data.record("xgboost", x_tr, x_te)
        booster, _ = fit_xgb(x_tr, data.y[tr], params, strategy, data, n_trees=n_trees)
        margins.append(margin(booster, x_te))
    return margins


def compare_strategies(
    data: TrainingData,
    selected: list[list[str]],
    strategies: Sequence[str],
    progress: ProgressFn,
) -> tuple[dict[str, dict[str, Any]], str]:
    """Cross-validate each imbalance strategy at :data:`DEFAULT_PARAMS`; pick the winner."""
    comparison: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(strategies):
        progress(f"imbalance strategy {name}", 0.05 + 0.25 * i / 3)
        comparison[name] = cross_validate(data, selected, DEFAULT_PARAMS, name)
    strategy = choose_strategy({k: v["mean_aucpr"] for k, v in comparison.items()})
    return comparison, strategy
