"""Train stage: blocked CV, in-fold filters, imbalance strategy, tuning, XGBoost + logit baseline.

Reads the training table (one row per lead) and its feature types; returns a
:class:`TrainResult` holding the final booster, calibrators, folds, metrics and gate verdicts.
No files are touched here; :mod:`leadscore.bundle` and :mod:`leadscore.report.training` write.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
import pyarrow as pa
import xgboost as xgb
from imblearn.over_sampling import SMOTE, SMOTENC
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from leadscore import evaluate as ev
from leadscore.calibrate import (
    SegmentCalibrator,
    assign_buckets,
    assign_tiers,
    bucket_cutpoints,
    fit_calibrators,
    score_edges,
)
from leadscore.config import Settings
from leadscore.gates import GateResult
from leadscore.progress import ProgressFn, no_progress
from leadscore.train.cv import Splits, make_splits, positions
from leadscore.train.selection import FeatureSelector, selection_stability

FeatureType = Literal["numeric", "bool", "category"]
REQUIRED_COLUMNS = ("lead_id", "contact_ts", "target", "aum_tier")
STRATEGY_ORDER = ("none", "scale_pos_weight", "smote")
STRATEGY_TIE = 0.002
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
MISSING_LEVEL = "__missing__"


class Preprocessor:
    """The exact feature preprocessing shared by training and scoring.

    Numeric → float (NaN kept), bool → 0/1 float (NaN kept), category → pandas categorical
    with the levels seen in training, so unseen levels become missing.
    """

    def __init__(self, feature_types: Mapping[str, str]) -> None:
        self.feature_types = dict(feature_types)

    def fit(self, df: pd.DataFrame) -> Preprocessor:
        """Learn category levels from training rows."""
        self.levels_ = {
            f: sorted({str(v) for v in df[f].dropna().tolist()})
            for f, kind in self.feature_types.items()
            if kind == "category"
        }
        return self

    def transform(self, df: pd.DataFrame, features: list[str] | None = None) -> pd.DataFrame:
        """Model-ready frame with ``features`` (default: all) in order, same index as ``df``."""
        if not hasattr(self, "levels_"):
            raise RuntimeError("Preprocessor is not fitted")
        features = list(self.feature_types) if features is None else features
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise KeyError(f"feature columns missing from the frame: {missing}")
        cols = {f: self._column(df[f], self.feature_types[f], f) for f in features}
        return pd.DataFrame(cols, index=df.index)

    def _column(self, s: pd.Series, kind: str, name: str) -> Any:
        if kind == "category":
            levels = self.levels_[name]
            known = set(levels)
            text = (None if pd.isna(v) else str(v) for v in s.astype(object).tolist())
            return pd.Categorical([v if v in known else None for v in text], categories=levels)
        if kind == "bool":
            mapped = s.astype(object).map(lambda v: np.nan if pd.isna(v) else float(bool(v)))
            return mapped.astype(float).to_numpy()
        return pd.to_numeric(s, errors="coerce").astype(float).to_numpy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"feature_types": self.feature_types, "levels": self.levels_}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessor:
        """Inverse of :meth:`to_dict`."""
        prep = cls(data["feature_types"])
        prep.levels_ = {k: list(v) for k, v in data["levels"].items()}
        return prep


@dataclass
class TrainResult:
    """Everything training learned and measured; the bundle and reports are written from it."""

    version: str
    booster: xgb.Booster
    preprocessor: Preprocessor
    features: list[str]
    params: dict[str, Any]
    strategy: str
    calibrator: SegmentCalibrator
    baseline_calibrator: SegmentCalibrator
    cutpoints: dict[str, float]
    score_edges: list[float]
    splits: Splits
    selection: dict[str, Any]
    strategy_comparison: dict[str, Any]
    tuning: dict[str, Any]
    metrics: dict[str, Any]
    gates: list[GateResult]
    override_reason: str | None
    data_fingerprint: dict[str, Any]
    config: Settings
    predictions: pd.DataFrame
    report_dir: Path
    fold_usage: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @property
    def feature_types(self) -> dict[str, str]:
        """Types of the final model's features, in order."""
        return {f: self.preprocessor.feature_types[f] for f in self.features}


@dataclass
class _Data:
    x: pd.DataFrame  # all features, preprocessed, index = lead_id, ordered by contact time
    y: np.ndarray
    tiers: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    types: dict[str, str]
    seed: int
    usage: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _ids_digest(index: pd.Index) -> str:
    return hashlib.sha256("\n".join(sorted(map(str, index))).encode()).hexdigest()[:16]


def table_fingerprint(df: pd.DataFrame) -> dict[str, Any]:
    """Row count and SHA-256 of the table as canonical Arrow IPC bytes (no pandas metadata)."""
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    table = table.replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    digest = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
    return {"n_rows": len(df), "n_columns": df.shape[1], "sha256": digest}


# --- imbalance strategies ---------------------------------------------------------------


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
    arr = np.empty((len(x), len(cols)))
    for i, c in enumerate(cols):
        if types[c] == "category":
            codes = x[c].cat.codes.to_numpy()
            arr[:, i] = np.where(codes < 0, len(x[c].cat.categories), codes)
        elif types[c] == "bool":
            arr[:, i] = x[c].fillna(2.0).to_numpy()
        else:
            med = x[c].median()
            arr[:, i] = x[c].fillna(0.0 if pd.isna(med) else med).to_numpy()
    k = min(5, n_pos - 1)
    sampler = (
        SMOTENC(categorical_features=discrete, random_state=seed, k_neighbors=k)
        if discrete
        else SMOTE(random_state=seed, k_neighbors=k)
    )
    xr, yr = sampler.fit_resample(arr, y)
    synth = xr[len(x) :]
    new: dict[str, Any] = {}
    for i, c in enumerate(cols):
        if types[c] == "category":
            cats = x[c].cat.categories
            codes = np.rint(synth[:, i]).astype(int)
            new[c] = pd.Categorical.from_codes(np.where(codes >= len(cats), -1, codes), cats)
        elif types[c] == "bool":
            new[c] = np.where(synth[:, i] > 1.5, np.nan, np.rint(synth[:, i]))
        else:
            new[c] = synth[:, i]
    synth_index = pd.Index([f"__smote_{i}" for i in range(len(synth))], name=x.index.name)
    out = pd.concat([x, pd.DataFrame(new, index=synth_index)[cols]])
    return out, np.asarray(yr)


def choose_strategy(scores: Mapping[str, float]) -> str:
    """Best mean CV AUC-PR; within ``STRATEGY_TIE`` of the best, the simpler strategy wins."""
    best = max(scores.values())
    for name in STRATEGY_ORDER:
        if name in scores and scores[name] >= best - STRATEGY_TIE:
            return name
    raise ValueError("no strategies scored")


# --- models -----------------------------------------------------------------------------


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


def _dmatrix(x: pd.DataFrame, y: np.ndarray | None = None) -> xgb.DMatrix:
    return xgb.DMatrix(x, label=y, enable_categorical=True, missing=np.nan)


def fit_xgb(
    x: pd.DataFrame,
    y: np.ndarray,
    params: Mapping[str, Any],
    strategy: str,
    data: _Data,
    n_trees: int | None = None,
) -> tuple[xgb.Booster, int]:
    """Fit one booster. Without ``n_trees``, early-stop on the last 15% (by time) of ``x``."""
    valid = None
    if n_trees is None:
        cut = int(len(x) * (1 - INNER_VALID_FRACTION))
        if y[cut:].sum() > 0 and y[:cut].sum() > 1:
            valid = (x.iloc[cut:], y[cut:])
            x, y = x.iloc[:cut], y[:cut]
    x_fit, y_fit, extra = apply_strategy(x, y, strategy, data.types, data.seed)
    full = {**xgb_params(params, data.seed), **extra}
    dtrain = _dmatrix(x_fit, y_fit)
    if valid is None:
        rounds = n_trees or int(params.get("n_estimators", 200))
        return xgb.train(full, dtrain, num_boost_round=rounds), rounds
    booster = xgb.train(
        full,
        dtrain,
        num_boost_round=MAX_TREES,
        evals=[(_dmatrix(*valid), "valid")],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=False,
    )
    best = booster.best_iteration + 1
    return booster[:best], best


def margin(booster: xgb.Booster, x: pd.DataFrame) -> np.ndarray:
    """Raw log-odds of a booster."""
    return np.asarray(booster.predict(_dmatrix(x), output_margin=True), dtype=float)


def _as_text(x: pd.DataFrame) -> pd.DataFrame:
    return x.astype(object).where(x.notna(), MISSING_LEVEL).astype(str)


def make_baseline(features: list[str], types: Mapping[str, str], seed: int) -> Pipeline:
    """Logistic regression baseline: impute, one-hot, standardize, balanced class weights."""
    numeric = [f for f in features if types[f] != "category"]
    categorical = [f for f in features if types[f] == "category"]
    num = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    cat = Pipeline(
        [
            ("text", FunctionTransformer(_as_text)),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    prep = ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)])
    clf = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed)
    return Pipeline([("prep", prep), ("clf", clf)])


def fit_baseline(x: pd.DataFrame, y: np.ndarray, data: _Data) -> Pipeline:
    """Fit the logistic baseline on one training set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_baseline(list(x.columns), data.types, data.seed).fit(x, y)


def _record(data: _Data, model: str, x_train: pd.DataFrame, x_test: pd.DataFrame) -> None:
    """Remember which rows a model was trained and tested on (tests compare models)."""
    entry = {"train": _ids_digest(x_train.index), "test": _ids_digest(x_test.index)}
    if entry not in data.usage.setdefault(model, []):
        data.usage[model].append(entry)


# --- cross-validation --------------------------------------------------------------------


def _cv_xgb(
    data: _Data, selected: list[list[str]], params: Mapping[str, Any], strategy: str
) -> dict[str, Any]:
    """Fit and score XGBoost on every fold; keeps test margins for calibration."""
    out: dict[str, Any] = {"aucpr": [], "train_aucpr": [], "n_trees": [], "margins": []}
    for (tr, te), feats in zip(data.folds, selected, strict=True):
        x_tr, x_te = data.x.iloc[tr][feats], data.x.iloc[te][feats]
        _record(data, "xgboost", x_tr, x_te)
        booster, n = fit_xgb(x_tr, data.y[tr], params, strategy, data)
        m_te = margin(booster, x_te)
        out["aucpr"].append(ev.average_precision(data.y[te], m_te))
        out["train_aucpr"].append(ev.average_precision(data.y[tr], margin(booster, x_tr)))
        out["n_trees"].append(n)
        out["margins"].append(m_te)
    out["mean_aucpr"] = float(np.mean(out["aucpr"]))
    return out


def _cv_baseline(data: _Data, selected: list[list[str]]) -> list[np.ndarray]:
    margins = []
    for (tr, te), feats in zip(data.folds, selected, strict=True):
        x_tr, x_te = data.x.iloc[tr][feats], data.x.iloc[te][feats]
        _record(data, "logistic", x_tr, x_te)
        model = fit_baseline(x_tr, data.y[tr], data)
        margins.append(np.asarray(model.decision_function(x_te)))
    return margins


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
    data: _Data,
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
        run = first if trial.number == 0 else _cv_xgb(data, selected, params, strategy)
        run["params"] = params
        runs[trial.number] = run
        progress(
            f"tuning trial {trial.number + 1}/{n_trials}", 0.3 + 0.5 * trial.number / n_trials
        )
        return float(run["mean_aucpr"])

    study.optimize(objective, n_trials=n_trials)
    best = runs[study.best_trial.number]
    record = {
        "n_trials": n_trials,
        "sampler": "TPE",
        "seed": data.seed,
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
    for run in runs.values():
        if run is not best:
            run.pop("margins", None)
    return best, record


# --- the stage ---------------------------------------------------------------------------


def _prepare(df: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    missing = [c for c in (*REQUIRED_COLUMNS, *types) if c not in df.columns]
    if missing:
        raise KeyError(f"training table lacks columns: {missing}")
    bad_types = {f: t for f, t in types.items() if t not in ("numeric", "bool", "category")}
    if bad_types:
        raise ValueError(f"unknown feature types: {bad_types}")
    out = df.copy()
    out["lead_id"] = out["lead_id"].astype(str)
    out["contact_ts"] = pd.to_datetime(out["contact_ts"], utc=True)
    bad = ~out["target"].isin([0, 1])
    if bad.any():
        raise ValueError(f"target must be 0/1; {int(bad.sum())} rows are not")
    order = np.lexsort((out["lead_id"].to_numpy(), out["contact_ts"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def model_version(
    cfg: Settings,
    fingerprint: Mapping[str, Any],
    df: pd.DataFrame,
    catalog_fingerprint: str | None = None,
) -> str:
    """Content-addressed id: ``v<UTC date of as_of, else of the last contact>-<hash>``.

    The hash covers the data, the model-shaping settings (no paths), the catalog and the code
    version, so the same data and settings give the same id in any folder
    (:func:`leadscore.registry.identity.version_id`).
    """
    from leadscore.io import code_version
    from leadscore.registry.identity import model_config_hash, version_id

    when = pd.Timestamp(cfg.dataset.as_of or df["contact_ts"].max())
    when = when.tz_convert("UTC") if when.tzinfo else when.tz_localize("UTC")
    return version_id(
        when.to_pydatetime(),
        str(fingerprint["sha256"]),
        model_config_hash(cfg),
        catalog_fingerprint or "",
        code_version(),
    )


def _by_lead(series: pd.Series | None, ids: pd.Series) -> np.ndarray:
    if series is None:
        return np.full(len(ids), np.nan)
    s = series.copy()
    s.index = s.index.astype(str)
    return np.asarray(s.reindex(ids.to_numpy()).to_numpy(dtype=float))


def _selector(cfg: Settings, types: Mapping[str, str]) -> FeatureSelector:
    return FeatureSelector(dict(types), cfg.train.iv_min, cfg.train.vif_max)


def _oof_frame(
    df: pd.DataFrame, data: _Data, xgb_margins: list[np.ndarray], base_margins: list[np.ndarray]
) -> pd.DataFrame:
    parts = []
    for k, (_, te) in enumerate(data.folds):
        part = df.iloc[te][["lead_id", "contact_ts", "target", "aum_tier"]].copy()
        part["set"], part["fold"] = "cv", k
        part["xgb_margin"], part["baseline_margin"] = xgb_margins[k], base_margins[k]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def train_model(
    df: pd.DataFrame,
    feature_types: Mapping[str, FeatureType],
    cfg: Settings,
    dials: pd.Series | None = None,
    true_probability: pd.Series | None = None,
    progress: ProgressFn | None = None,
    override_reason: str | None = None,
    catalog_fingerprint: str | None = None,
) -> TrainResult:
    """Select, tune, fit, calibrate and evaluate the lead-scoring model (DESIGN rule 4).

    Args:
        df: training table, one row per lead (lead_id, contact_ts, target, aum_tier, features).
        feature_types: feature -> "numeric" | "bool" | "category", in model order.
        cfg: settings; ``train``, ``gates`` and ``project.global_seed`` are used.
        dials: lead_id -> number of dials, for MQLs per 100 dials.
        true_probability: lead_id -> oracle probability (synthetic world only).
        progress: ``(step, fraction)`` callback.
        override_reason: recorded with the gate verdicts; failing gates do not raise here,
            see :func:`leadscore.evaluate.enforce_gates`.
        catalog_fingerprint: the feature catalog's fingerprint, part of the version id.

    Returns:
        The final model, calibrators, folds, selection, comparisons, metrics and gates.
    """
    progress = progress or no_progress
    seed, types = cfg.project.global_seed, {f: str(t) for f, t in feature_types.items()}
    df = _prepare(df, types)
    fingerprint = table_fingerprint(df)
    version = model_version(cfg, fingerprint, df, catalog_fingerprint)
    report_dir = Path(cfg.project.reports_dir) / "train" / version
    # 1. Time splits; category levels come from development rows only.
    splits = make_splits(df, cfg.train.cv_folds, cfg.train.cv_gap_days, cfg.train.holdout_fraction)
    dev, hold = positions(df, splits.dev_ids), positions(df, splits.holdout_ids)
    prep = Preprocessor(types).fit(df.iloc[dev])
    x = prep.transform(df).set_axis(pd.Index(df["lead_id"], name="lead_id"))
    folds = [(positions(df, f.train_ids), positions(df, f.test_ids)) for f in splits.folds]
    data = _Data(
        x,
        df["target"].to_numpy(int),
        df["aum_tier"].astype(str).to_numpy(object),
        folds,
        types,
        seed,
    )
    # 2. Feature filters, fitted inside each training fold.
    progress("feature filters", 0.02)
    selectors = [_selector(cfg, types).fit(x.iloc[tr], data.y[tr]) for tr, _ in folds]
    selected = [list(s.selected_) for s in selectors]
    # 3. Imbalance strategies at default parameters; the simplest within the tie wins.
    comparison: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(cfg.train.imbalance_strategies):
        progress(f"imbalance strategy {name}", 0.05 + 0.25 * i / 3)
        comparison[name] = _cv_xgb(data, selected, DEFAULT_PARAMS, name)
    strategy = choose_strategy({k: v["mean_aucpr"] for k, v in comparison.items()})
    # 4. Tuning with the winning strategy.
    best, tuning = tune(
        data, selected, strategy, cfg.train.n_trials, comparison[strategy], progress
    )
    # 5. Logistic baseline on the same folds.
    progress("logistic baseline", 0.82)
    base_margins = _cv_baseline(data, selected)
    # 6. Calibrators on out-of-fold margins only.
    oof = _oof_frame(df, data, best["margins"], base_margins)
    calibrator = fit_calibrators(
        oof["xgb_margin"].to_numpy(),
        oof["target"].to_numpy(),
        oof["aum_tier"].astype(str).to_numpy(),
        cfg.train.calibration,
    )
    base_cal = fit_calibrators(
        oof["baseline_margin"].to_numpy(),
        oof["target"].to_numpy(),
        oof["aum_tier"].astype(str).to_numpy(),
        cfg.train.calibration,
    )
    # 7. Final filters and models on every development row.
    progress("final model", 0.88)
    final_sel = _selector(cfg, types).fit(x.iloc[dev], data.y[dev])
    feats = list(final_sel.selected_)
    n_trees = max(1, int(np.median(best["n_trees"])))
    params = {**best["params"], "n_estimators": n_trees}
    x_dev, x_hold = x.iloc[dev][feats], x.iloc[hold][feats]
    _record(data, "xgboost", x_dev, x_hold)
    booster, _ = fit_xgb(x_dev, data.y[dev], params, strategy, data, n_trees=n_trees)
    _record(data, "logistic", x_dev, x_hold)
    baseline = fit_baseline(x_dev, data.y[dev], data)
    # 8. The holdout, touched once.
    progress("holdout evaluation", 0.92)
    ho = df.iloc[hold][["lead_id", "contact_ts", "target", "aum_tier"]].copy()
    ho["set"], ho["fold"] = "holdout", -1
    ho["xgb_margin"] = margin(booster, x_hold)
    ho["baseline_margin"] = np.asarray(baseline.decision_function(x_hold))
    predictions = pd.concat([oof, ho], ignore_index=True)
    tiers = predictions["aum_tier"].astype(str).to_numpy()
    predictions["xgb_proba"] = calibrator.predict(predictions["xgb_margin"], tiers)
    predictions["baseline_proba"] = base_cal.predict(predictions["baseline_margin"], tiers)
    # The shipped model's scores on every time block: what the stability (KS) gate compares.
    final_margin = margin(booster, x.loc[predictions["lead_id"], feats])
    predictions["final_proba"] = calibrator.predict(final_margin, tiers)
    oof_proba = predictions.loc[predictions["set"] == "cv", "xgb_proba"]
    cutpoints, edges = bucket_cutpoints(oof_proba), score_edges(oof_proba)
    predictions["bucket"] = assign_buckets(predictions["xgb_proba"], cutpoints)
    predictions["tier"] = assign_tiers(predictions["xgb_proba"], cutpoints)
    predictions["dials"] = _by_lead(dials, predictions["lead_id"])
    predictions["true_probability"] = _by_lead(true_probability, predictions["lead_id"])
    train_aucpr = ev.average_precision(data.y[dev], margin(booster, x_dev))
    metrics = summarize_metrics(predictions, best, train_aucpr, cfg, dials is not None)
    gates = ev.evaluate_gates(metrics, cfg.gates, str(report_dir / "performance_validation.md"))
    progress("done", 1.0)
    selection = {
        "folds": [s.report() for s in selectors],
        "stability": selection_stability(selected, list(types)),
        "final": final_sel.report(),
    }
    return TrainResult(
        version=version,
        booster=booster,
        preprocessor=prep,
        features=feats,
        params=xgb_params(params, seed) | {"n_estimators": n_trees},
        strategy=strategy,
        calibrator=calibrator,
        baseline_calibrator=base_cal,
        cutpoints=cutpoints,
        score_edges=edges,
        splits=splits,
        selection=selection,
        strategy_comparison=_strategy_record(comparison, strategy),
        tuning=tuning,
        metrics=metrics,
        gates=gates,
        override_reason=override_reason,
        data_fingerprint=fingerprint,
        config=cfg,
        predictions=predictions,
        report_dir=report_dir,
        fold_usage=data.usage,
    )


def _strategy_record(comparison: Mapping[str, Mapping[str, Any]], winner: str) -> dict[str, Any]:
    return {
        "winner": winner,
        "tie_tolerance": STRATEGY_TIE,
        "order": list(STRATEGY_ORDER),
        "params": DEFAULT_PARAMS,
        "strategies": {
            k: {"mean_aucpr": v["mean_aucpr"], "fold_aucpr": v["aucpr"], "n_trees": v["n_trees"]}
            for k, v in comparison.items()
        },
    }


def summarize_metrics(
    predictions: pd.DataFrame,
    best: Mapping[str, Any],
    train_aucpr: float,
    cfg: Settings,
    has_dials: bool,
) -> dict[str, Any]:
    """Per-fold, holdout, baseline, stability, business and oracle metrics.

    Per-fold ranking figures use the fold model's raw margin (what selection optimized) and
    its calibrated probability; the holdout figures are the honest, once-only ones.
    """
    seed = cfg.project.global_seed
    cv = predictions[predictions["set"] == "cv"]
    ho = predictions[predictions["set"] == "holdout"]
    folds = []
    for k, grp in cv.groupby("fold", sort=True):
        block = ev.score_metrics(grp["target"], grp["xgb_proba"])
        block["fold"] = int(str(k))
        block["aucpr_raw"] = best["aucpr"][k]
        block["train_aucpr_raw"] = best["train_aucpr"][k]
        block["train_test_gap"] = ev.relative_gap(best["train_aucpr"][k], best["aucpr"][k])
        block["baseline_aucpr"] = ev.average_precision(grp["target"], grp["baseline_proba"])
        block["oracle_aucpr"] = _maybe_ap(grp["target"], grp["true_probability"])
        folds.append(block)
    holdout = ev.score_metrics(
        ho["target"],
        ho["xgb_proba"],
        ho["aum_tier"].astype(str),
        cfg.train.bootstrap_samples,
        seed,
    )
    holdout["aucpr_raw"] = ev.average_precision(ho["target"], ho["xgb_margin"])
    holdout["gains"] = ev.gains_table(ho["target"], ho["xgb_proba"]).to_dict("records")
    baseline = ev.score_metrics(ho["target"], ho["baseline_proba"], ho["aum_tier"].astype(str))
    # Stability across time: the final model's calibrated scores on each CV test block and on
    # the holdout. (Each fold model's own out-of-fold scores differ mostly because early folds
    # train on little data; that is model variance, which the CV CoV gate already measures.)
    groups = {f"fold_{k}": g["final_proba"].to_numpy() for k, g in cv.groupby("fold", sort=True)}
    groups["holdout"] = ho["final_proba"].to_numpy()
    fold_model_groups = {
        f"fold_{k}": g["xgb_proba"].to_numpy() for k, g in cv.groupby("fold", sort=True)
    }
    fold_model_groups["holdout"] = ho["xgb_proba"].to_numpy()
    out: dict[str, Any] = {
        "cv_folds": folds,
        "cv_aucpr_mean": float(np.mean(best["aucpr"])),
        "cv_aucpr_cov": ev.coefficient_of_variation(best["aucpr"]),
        "cv_baseline_aucpr_mean": float(np.mean([f["baseline_aucpr"] for f in folds])),
        "holdout": holdout,
        "baseline_holdout": baseline,
        "baseline_holdout_aucpr": baseline["aucpr"],
        "train_aucpr": train_aucpr,
        "train_test_gap": ev.relative_gap(train_aucpr, holdout["aucpr_raw"]),
        "ks": ev.max_pairwise_ks(groups),
        "ks_fold_models": ev.max_pairwise_ks(fold_model_groups),
        "oracle": None,
    }
    if has_dials:
        out["mqls_per_100_dials"] = ev.mqls_per_100_dials(ho["target"], ho["bucket"], ho["dials"])
    if ho["true_probability"].notna().all() and len(ho):
        oracle = ev.score_metrics(ho["target"], ho["true_probability"], ho["aum_tier"].astype(str))
        oracle["model_aucpr_fraction"] = holdout["aucpr"] / oracle["aucpr"]
        out["oracle"] = oracle
    return out


def _maybe_ap(y: pd.Series, score: pd.Series) -> float | None:
    return None if score.isna().any() else ev.average_precision(y, score)
