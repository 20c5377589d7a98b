"""Train stage runner: blocked CV, in-fold filters, imbalance strategy, tuning, final model.

Reads the training table (one row per lead) and its feature types; returns a
:class:`TrainResult` holding the final booster, calibrators, folds, metrics and gate verdicts.
No files are touched here; :mod:`leadscore.bundle` and :mod:`leadscore.report.training` write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.pipeline import Pipeline

from leadscore import evaluate as ev
from leadscore.calibrate import SegmentCalibrator, calibrate_oof, calibrate_predictions
from leadscore.catalog import CALIBRATION_SEGMENT
from leadscore.config import ScoreConfig, Settings
from leadscore.gates import GateResult
from leadscore.progress import ProgressFn, no_progress
from leadscore.steps import StepClock
from leadscore.train.baseline import cross_validate_baseline, fit_baseline
from leadscore.train.booster import (
    DEFAULT_PARAMS,
    compare_strategies,
    fit_xgb,
    margin,
    refit_folds,
    xgb_params,
)
from leadscore.train.cv import Splits, make_splits
from leadscore.train.imbalance import strategy_record
from leadscore.train.predict import ScoringMethods
from leadscore.train.preprocess import (
    FeatureType,
    Preprocessor,
    TrainingData,
    prepare_table,
    table_fingerprint,
    training_data,
)
from leadscore.train.selection import FeatureSelector, selection_stability
from leadscore.train.tune import tune

if TYPE_CHECKING:
    from leadscore.catalog import Catalog

_ID_COLUMNS = ["lead_id", "contact_ts", "target", CALIBRATION_SEGMENT]


@dataclass
class TrainResult(ScoringMethods):
    """Everything training learned and measured; the bundle and reports are written from it.

    It scores like a loaded bundle (:meth:`predict_proba`, :meth:`score_frame`), so a notebook
    can score a frame straight after training without writing anything.
    """

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
    steps: dict[str, dict[str, float | None]] = field(default_factory=dict)  # time, memory

    @property
    def feature_types(self) -> dict[str, str]:
        """Types of the final model's features, in order."""
        return {f: self.preprocessor.feature_types[f] for f in self.features}

    def score_frame(
        self, df: pd.DataFrame, catalog: Catalog | None = None, cfg: ScoreConfig | None = None
    ) -> pd.DataFrame:
        """Score rows of a scoring or training set exactly as the batch scorer would.

        Returns the batch scorer's columns (probability, margin, score, bucket, tier,
        drivers_text, drivers_json) plus ``reject_reason`` (None for a scored row; for a row
        that fails the scoring checks the reason, and the score columns are empty).
        Invariant: one output row per input row, same index.
        """
        from leadscore.catalog import load_catalog
        from leadscore.score.batch import score_frame
        from leadscore.score.checks import check_rows

        catalog = catalog if catalog is not None else load_catalog()
        checked, reasons = check_rows(df, self, catalog)
        good = checked[reasons.isna()]
        scored = score_frame(self, good, catalog, cfg or self.config.score)
        return scored.reindex(df.index).assign(reject_reason=reasons)


@dataclass
class FinalModel:
    """The models refitted on every development row, and the features they use."""

    selector: FeatureSelector
    features: list[str]
    n_trees: int
    params: dict[str, Any]
    booster: xgb.Booster
    baseline: Pipeline


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
    """Select, tune, fit, calibrate and evaluate the lead-scoring model.

    Every figure is measured on rows the model did not train on: fold models on their test
    block, calibrators on out-of-fold margins, the final model once on the holdout.

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
    types = {f: str(t) for f, t in feature_types.items()}
    tc = cfg.train
    clock = StepClock()  # wall time and peak memory per step, for the benchmarks
    # 1. Order and fingerprint the table; the version follows from config + data.
    with clock.step("prepare"):
        df = prepare_table(df, types)
        fingerprint = table_fingerprint(df)
        version = model_version(cfg, fingerprint, df, catalog_fingerprint)
        # 2. Time splits; category levels come from development rows only.
        splits = make_splits(df, tc.cv_folds, tc.cv_gap_days, tc.holdout_fraction)
        prep, data = training_data(df, splits, types, cfg.project.global_seed, tc.cv_gap_days)
    # 3. Cross-validation: in-fold filters, imbalance strategy, tuning, logistic baseline.
    cv = _cross_validate(df, data, cfg, progress, clock)
    # 4. Final filters and models on every development row.
    progress("final model", 0.88)
    with clock.step("refit"):
        final = _fit_final(data, cfg, cv)
    # 5. Calibrators on out-of-fold margins of fold models refitted like the final model (same
    #    tree count, no early stopping); the holdout, touched once, scored with them.
    progress("holdout evaluation", 0.92)
    with clock.step("calibration"):
        cal = _calibrate(df, data, cv, final, tc.calibration)
    cal.predictions["dials"] = _by_lead(dials, cal.predictions["lead_id"])
    cal.predictions["true_probability"] = _by_lead(true_probability, cal.predictions["lead_id"])
    # 6. Metrics and gates.
    report_dir = Path(cfg.project.reports_dir) / "train" / version
    with clock.step("evaluation"):
        train_aucpr = ev.average_precision(data.y[data.dev], _dev_margin(data, final))
        train_share = [len(f.train_ids) / len(splits.dev_ids) for f in splits.folds]
        metrics = ev.summarize_metrics(
            cal.predictions, cv.best, train_aucpr, cfg, dials is not None, cal.cutpoints,
            train_share,
        )  # fmt: skip
        gates = ev.evaluate_gates(
            metrics, cfg.gates, str(report_dir / "performance_validation.md")
        )
    progress("done", 1.0)
    return TrainResult(
        version=version,
        booster=final.booster,
        preprocessor=prep,
        features=final.features,
        params=xgb_params(final.params, data.seed) | {"n_estimators": final.n_trees},
        strategy=cv.strategy,
        calibrator=cal.calibrator,
        baseline_calibrator=cal.baseline,
        cutpoints=cal.cutpoints,
        score_edges=cal.score_edges,
        splits=splits,
        selection=_selection_record(cv, final, types),
        strategy_comparison=strategy_record(cv.comparison, cv.strategy, DEFAULT_PARAMS),
        tuning=cv.tuning,
        metrics=metrics,
        gates=gates,
        override_reason=override_reason,
        data_fingerprint=fingerprint,
        config=cfg,
        predictions=cal.predictions,
        report_dir=report_dir,
        fold_usage=data.usage,
        steps=clock.to_dict(),
    )


@dataclass
class CrossValidation:
    """What the folds decided: features per fold, strategy, tuned run, out-of-fold margins."""

    selectors: list[FeatureSelector]
    selected: list[list[str]]
    comparison: dict[str, dict[str, Any]]
    strategy: str
    best: dict[str, Any]
    tuning: dict[str, Any]
    oof: pd.DataFrame
    n_trees: int


@dataclass
class Calibrated:
    """Calibrators, bucket cut points, score edges and every training prediction."""

    calibrator: SegmentCalibrator
    baseline: SegmentCalibrator
    cutpoints: dict[str, float]
    score_edges: list[float]
    predictions: pd.DataFrame


def _cross_validate(
    df: pd.DataFrame, data: TrainingData, cfg: Settings, progress: ProgressFn, clock: StepClock
) -> CrossValidation:
    """Steps inside the folds only: filters, strategy at default parameters, tuning, baseline."""
    tc = cfg.train
    progress("feature filters", 0.02)
    folds = data.folds
    with clock.step("cv: feature filters"):
        selectors = [
            _selector(cfg, data.types).fit(data.x.iloc[tr], data.y[tr]) for tr, _ in folds
        ]
    selected = [list(s.selected_) for s in selectors]
    # the simplest strategy within the tie wins; tuning uses it
    with clock.step("cv: imbalance strategies"):
        comparison, strategy = compare_strategies(
            data, selected, tc.imbalance_strategies, progress
        )
    with clock.step("tuning"):
        best, tuning = tune(data, selected, strategy, tc.n_trials, comparison[strategy], progress)
    # The shipped model's tree count; the fold models are refitted with it for calibration.
    n_trees = max(1, int(np.median(best["n_trees"])))
    progress("fold models at the final tree count", 0.8)
    with clock.step("cv: fold refits"):
        refit = refit_folds(data, selected, best["params"], strategy, n_trees)
    progress("logistic baseline", 0.84)
    with clock.step("cv: logistic baseline"):
        oof = _oof_frame(df, data, refit, cross_validate_baseline(data, selected))
    oof["es_margin"] = np.concatenate(best["margins"])
    return CrossValidation(selectors, selected, comparison, strategy, best, tuning, oof, n_trees)


def _calibrate(
    df: pd.DataFrame, data: TrainingData, cv: CrossValidation, final: FinalModel, method: str
) -> Calibrated:
    """Fit both calibrators on out-of-fold margins; calibrate, bucket and tier every row."""
    calibrator = calibrate_oof(cv.oof, "xgb_margin", method)
    baseline = calibrate_oof(cv.oof, "baseline_margin", method)
    predictions = _with_holdout(df, data, cv.oof, final)
    # The shipped model's margin on every time block: what the stability (KS) gate compares.
    final_margin = margin(final.booster, data.x.loc[predictions["lead_id"], final.features])
    predictions, cutpoints, edges = calibrate_predictions(
        predictions, calibrator, baseline, final_margin
    )
    return Calibrated(calibrator, baseline, cutpoints, edges, predictions)


def _dev_margin(data: TrainingData, final: FinalModel) -> np.ndarray:
    return margin(final.booster, data.x.iloc[data.dev][final.features])


def _selector(cfg: Settings, types: Mapping[str, str]) -> FeatureSelector:
    return FeatureSelector(dict(types), cfg.train.iv_min, cfg.train.vif_max)


def _oof_frame(
    df: pd.DataFrame,
    data: TrainingData,
    xgb_margins: list[np.ndarray],
    base_margins: list[np.ndarray],
) -> pd.DataFrame:
    """One row per out-of-fold prediction: ids, fold and both models' margins."""
    parts = []
    for k, (_, te) in enumerate(data.folds):
        part = df.iloc[te][_ID_COLUMNS].copy()
        part["set"], part["fold"] = "cv", k
        part["xgb_margin"], part["baseline_margin"] = xgb_margins[k], base_margins[k]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _fit_final(data: TrainingData, cfg: Settings, cv: CrossValidation) -> FinalModel:
    """Feature filters, XGBoost (median CV tree count) and baseline on every development row."""
    selector = _selector(cfg, data.types).fit(data.x.iloc[data.dev], data.y[data.dev])
    feats = list(selector.selected_)
    n_trees = cv.n_trees
    params, strategy = {**cv.best["params"], "n_estimators": n_trees}, cv.strategy
    x_dev, x_hold = data.x.iloc[data.dev][feats], data.x.iloc[data.holdout][feats]
    y_dev = data.y[data.dev]
    data.record("xgboost", x_dev, x_hold)
    booster, _ = fit_xgb(x_dev, y_dev, params, strategy, data, n_trees=n_trees)
    data.record("logistic", x_dev, x_hold)
    baseline = fit_baseline(x_dev, y_dev, data)
    return FinalModel(selector, feats, n_trees, params, booster, baseline)


def _with_holdout(
    df: pd.DataFrame, data: TrainingData, oof: pd.DataFrame, final: FinalModel
) -> pd.DataFrame:
    """The out-of-fold rows followed by the final models' margins on the holdout."""
    x_hold = data.x.iloc[data.holdout][final.features]
    ho = df.iloc[data.holdout][_ID_COLUMNS].copy()
    ho["set"], ho["fold"] = "holdout", -1
    ho["xgb_margin"] = margin(final.booster, x_hold)
    ho["baseline_margin"] = np.asarray(final.baseline.decision_function(x_hold))
    return pd.concat([oof, ho], ignore_index=True)


def _by_lead(series: pd.Series | None, ids: pd.Series) -> np.ndarray:
    if series is None:
        return np.full(len(ids), np.nan)
    s = series.copy()
    s.index = s.index.astype(str)
    return np.asarray(s.reindex(ids.to_numpy()).to_numpy(dtype=float))


def _selection_record(
    cv: CrossValidation, final: FinalModel, types: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "folds": [s.report() for s in cv.selectors],
        "stability": selection_stability(cv.selected, list(types)),
        "final": final.selector.report(),
    }
