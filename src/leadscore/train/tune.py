"""Train stage: seeded Optuna (TPE) search of XGBoost hyper-parameters on mean CV AUC-PR.

Reads :class:`~leadscore.train.preprocess.TrainingData` and the per-fold feature selections;
returns the best cross-validation run and a JSON-ready record of every trial.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna

from leadscore.progress import ProgressFn
from leadscore.train.booster import DEFAULT_PARAMS, cross_validate
from leadscore.train.preprocess import TrainingData


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-2, 50.0, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
    }


def tune(
    data: TrainingData,
    selected: list[list[str]],
    strategy: str,
    n_trials: int,
    first: dict[str, Any],
    progress: ProgressFn,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seeded TPE search on mean CV AUC-PR; the default parameters are trial 0 (already run).

    Returns (best CV run, tuning record).
    """
    optuna.logging.set_verbosity(logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=data.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    runs: dict[int, dict[str, Any]] = {}
    study.enqueue_trial(DEFAULT_PARAMS)

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial)
        run = first if trial.number == 0 else cross_validate(data, selected, params, strategy)
        run["params"] = params
        runs[trial.number] = run
        progress(
            f"tuning trial {trial.number + 1}/{n_trials}", 0.3 + 0.5 * trial.number / n_trials
        )
        return float(run["mean_aucpr"])

    study.optimize(objective, n_trials=n_trials)
    best = runs[study.best_trial.number]
    for run in runs.values():
        if run is not best:
            run.pop("margins", None)
    return best, _record(study, runs, best, n_trials, data.seed)


def _record(
    study: optuna.Study,
    runs: dict[int, dict[str, Any]],
    best: dict[str, Any],
    n_trials: int,
    seed: int,
) -> dict[str, Any]:
    return {
        "n_trials": n_trials,
        "sampler": "TPE",
        "seed": seed,
        "best_trial": study.best_trial.number,
        "best_params": best["params"],
        "best_cv_aucpr": best["mean_aucpr"],
        "trials": [
            {
                "number": t.number,
                "params": t.params,
                "cv_aucpr": t.value,
                "n_trees": runs[t.number]["n_trees"],
            }
            for t in study.trials
        ],
    }
