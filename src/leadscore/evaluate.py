"""Evaluate stage: ranking, calibration, stability and business metrics, and the model gates.

Reads labels, scores, AUM tiers and dials; returns JSON-ready metric blocks and gate verdicts.
Metric functions are plain NumPy and are tested against scikit-learn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from leadscore import reliability as rel
from leadscore.calibrate import bucket_cutpoints
from leadscore.catalog import CALIBRATION_SEGMENT
from leadscore.config import GatesConfig, Settings
from leadscore.gates import GateFailed, GateResult


def average_precision(y: Any, score: Any) -> float:
    """AUC-PR as average precision (step interpolation, ties grouped like scikit-learn)."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(yy)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(y: Any, score: Any) -> float:
    """AUC-ROC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata  # imported on use: loading a bundle needs no SciPy

    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def brier(y: Any, p: Any) -> float:
    """Mean squared error of probabilities."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def log_loss(y: Any, p: Any, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood, probabilities clipped to [eps, 1 - eps]."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _top_order(score: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(score, dtype=float), kind="mergesort")


def top_fraction(y: Any, score: Any, fraction: float = 0.10) -> dict[str, float]:
    """Precision, recall and lift among the ``ceil(fraction * n)`` highest scores."""
    y = np.asarray(y, dtype=float)
    k = max(1, math.ceil(fraction * len(y)))
    top = y[_top_order(score)[:k]]
    base = y.mean()
    precision = float(top.mean())
    return {
        "precision": precision,
        "recall": float(top.sum() / y.sum()) if y.sum() else float("nan"),
        "lift": precision / base if base else float("nan"),
    }


def bottom_conversion(y: Any, score: Any, fraction: float = 0.20) -> float:
    """Conversion rate among the ``ceil(fraction * n)`` lowest scores."""
    y = np.asarray(y, dtype=float)
    k = max(1, math.ceil(fraction * len(y)))
    return float(y[_top_order(score)[::-1][:k]].mean())


def ece(y: Any, p: Any, n_bins: int = 10) -> float:
    """Expected calibration error over equal-frequency bins of predicted probability."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    total = 0.0
    for chunk in np.array_split(order, min(n_bins, len(y))):
        total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return float(total / len(y))


def reliability_table(y: Any, p: Any, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate per equal-frequency bin (for reliability plots)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="mergesort")
    rows = [
        {"n": len(c), "predicted": p[c].mean(), "observed": y[c].mean()}
        for c in np.array_split(order, min(n_bins, len(y)))
        if len(c)
    ]
    return pd.DataFrame(rows)


def gains_table(y: Any, score: Any, n_bins: int = 10) -> pd.DataFrame:
    """Gains by decile of score (decile 1 = highest): leads, MQLs, rate, capture, lift."""
    y = np.asarray(y, dtype=float)
    chunks = np.array_split(_top_order(score), n_bins)
    base = y.mean()
    rows, cum = [], 0.0
    for i, chunk in enumerate(chunks, start=1):
        n_pos = float(y[chunk].sum())
        cum += n_pos
        rate = n_pos / len(chunk) if len(chunk) else float("nan")
        rows.append(
            {
                "decile": i,
                "n": len(chunk),
                "n_pos": int(n_pos),
                "rate": rate,
                "cum_capture": cum / y.sum() if y.sum() else float("nan"),
                "lift": rate / base if base else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def bootstrap_interval(
    y: Any, score: Any, n_samples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of AUC-PR (rows resampled with replacement, seeded)."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_samples):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].sum() > 0:
            stats.append(average_precision(y[idx], score[idx]))
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def max_pairwise_ks(groups: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Largest two-sample KS statistic between any two score samples, and which pair."""
    from scipy.stats import ks_2samp

    best: dict[str, Any] = {"ks": 0.0, "pair": None}
    for (a, xa), (b, xb) in itertools.combinations(groups.items(), 2):
        if len(xa) and len(xb):
            stat = float(ks_2samp(xa, xb).statistic)
            if stat > best["ks"]:
                best = {"ks": stat, "pair": [a, b]}
    return best


def mqls_per_100_dials(y: Any, buckets: Any, dials: Any) -> dict[str, dict[str, float]]:
    """MQLs per 100 dials per bucket (rows without a dial count are left out)."""
    frame = pd.DataFrame(
        {"y": np.asarray(y, float), "bucket": np.asarray(buckets), "dials": np.asarray(dials)}
    ).dropna(subset=["dials"])
    out = {}
    for name, grp in frame.groupby("bucket", sort=True):
        total = float(grp["dials"].sum())
        out[str(name)] = {
            "leads": len(grp),
            "mqls": float(grp["y"].sum()),
            "dials": total,
            "mqls_per_100_dials": 100 * float(grp["y"].sum()) / total if total else float("nan"),
        }
    return out


def score_metrics(
    y: Any,
    p: Any,
    tiers: Any = None,
    n_bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The standard metric block for one set of labels and probabilities."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    top = top_fraction(y, p, 0.10)
    out: dict[str, Any] = {
        "n": len(y),
        "n_pos": int(y.sum()),
        "base_rate": float(y.mean()),
        "aucpr": average_precision(y, p),
        "aucroc": roc_auc(y, p),
        "precision_at_10pct": top["precision"],
        "recall_at_10pct": top["recall"],
        "lift_at_10pct": top["lift"],
        "bottom_20pct_rate": bottom_conversion(y, p, 0.20),
        "brier": brier(y, p),
        "log_loss": log_loss(y, p),
        "ece": ece(y, p),
    }
    if n_bootstrap:
        out["aucpr_ci95"] = list(bootstrap_interval(y, p, n_bootstrap, seed))
    if tiers is not None:
        tiers = np.asarray(tiers, dtype=object)
        out["ece_by_tier"] = {
            str(t): {"n": int((tiers == t).sum()), "ece": ece(y[tiers == t], p[tiers == t])}
            for t in sorted(set(tiers.tolist()))
        }
    return out


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Sample standard deviation over mean."""
    arr = np.asarray(values, dtype=float)
    if len(arr) < 2 or arr.mean() == 0:
        return float("nan")
    return float(arr.std(ddof=1) / arr.mean())


def relative_gap(train: float, test: float) -> float:
    """(train - test) / train."""
    return float((train - test) / train) if train else float("nan")


def _gate(name: str, figure: float, threshold: float, comparison: str, report: str | None):
    ops = {
        ">=": figure >= threshold,
        ">": figure > threshold,
        "<=": figure <= threshold,
        "<": figure < threshold,
    }
    passed = bool(ops[comparison]) and not math.isnan(figure)
    return GateResult(name, passed, float(figure), float(threshold), comparison, report)


def evaluate_gates(
    metrics: Mapping[str, Any], gates: GatesConfig, report_path: str | None = None
) -> list[GateResult]:
    """Model gates on the holdout and CV summary (see GatesConfig for the thresholds).

    ``metrics`` needs ``holdout`` (a :func:`score_metrics` block with ``calibration``, see
    :func:`calibration_block`), ``baseline_holdout_aucpr``, ``train_test_gap``,
    ``cv_aucpr_cov`` and ``ks`` (out-of-sample). The ECE gates compare the observed ECE with
    the noise band of a perfectly calibrated model on the same rows (and ``max_ece``, the
    stricter wins); tiers below the minimum size are reported, not gated.
    """
    hold = metrics["holdout"]
    cal = hold["calibration"]
    out = [
        _gate("min_aucpr", hold["aucpr"], gates.min_aucpr, ">=", report_path),
        _gate("ship_aucpr", hold["aucpr"], gates.ship_threshold_aucpr, ">=", report_path),
        _gate(
            "precision_at_10pct",
            hold["precision_at_10pct"],
            gates.ship_threshold_precision_at_10pct,
            ">=",
            report_path,
        ),
        _gate(
            "ece_overall",
            cal["overall"]["ece"],
            _ece_limit(cal["overall"], gates),
            "<=",
            report_path,
        ),
        _gate(
            "brier_skill_vs_base_rate",
            cal["overall"]["brier_skill"],
            gates.min_brier_skill,
            ">=",
            report_path,
        ),
    ]
    for tier, block in cal["by_tier"].items():
        if block["gated"]:
            out.append(
                _gate(f"ece_{tier}", block["ece"], _ece_limit(block, gates), "<=", report_path)
            )
    out += [
        _gate(
            "train_test_gap", metrics["train_test_gap"], gates.max_train_test_gap, "<", report_path
        ),
        _gate("cv_aucpr_cov", metrics["cv_aucpr_cov"], gates.max_cv_cov, "<", report_path),
        _gate("ks_time_folds", metrics["ks"]["ks"], gates.max_ks, "<=", report_path),
        _gate(
            "beats_baseline", hold["aucpr"], metrics["baseline_holdout_aucpr"], ">", report_path
        ),
    ]
    return out


def _ece_limit(block: Mapping[str, Any], gates: GatesConfig) -> float:
    return float(min(block["ece_noise"]["band"], gates.max_ece))


def enforce_gates(gates: Sequence[GateResult], override_reason: str | None = None) -> None:
    """Raise :class:`GateFailed` for the first failed gate unless an override reason is given."""
    failed = [g for g in gates if not g.passed]
    if failed and not override_reason:
        raise GateFailed(failed[0])


# --- the training run's metrics --------------------------------------------------------------


def summarize_metrics(
    predictions: pd.DataFrame,
    best: Mapping[str, Any],
    train_aucpr: float,
    cfg: Settings,
    has_dials: bool,
    cutpoints: Mapping[str, float] | None = None,
    fold_train_share: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Per-fold, holdout, baseline, stability, business and oracle metrics of a training run.

    ``predictions`` is the training run's frame (``set`` = "cv" or "holdout", ``fold``,
    ``target``, ``aum_tier``, margins, calibrated probabilities, ``bucket``, ``dials``,
    ``true_probability``); ``best`` the winning CV run (per-fold ``aucpr``/``train_aucpr``).
    Per-fold ranking figures use the fold model's raw margin (what selection optimized) and
    its calibrated probability; the holdout figures are the honest, once-only ones. Every
    stability and calibration figure comes from out-of-fold and holdout predictions; the one
    in-sample figure (``ks_in_sample``) is labelled so and gates nothing.
    """
    cv = predictions[predictions["set"] == "cv"]
    ho = predictions[predictions["set"] == "holdout"]
    folds = _fold_metrics(cv, best)
    tiers = ho[CALIBRATION_SEGMENT].astype(str)
    holdout = score_metrics(
        ho["target"], ho["xgb_proba"], tiers, cfg.train.bootstrap_samples, cfg.project.global_seed
    )
    holdout["aucpr_raw"] = average_precision(ho["target"], ho["xgb_margin"])
    holdout["gains"] = gains_table(ho["target"], ho["xgb_proba"]).to_dict("records")
    holdout["calibration"] = rel.calibration_block(
        ho["target"], ho["xgb_proba"], tiers, cfg.gates, cfg.project.global_seed
    )
    for tier, block in holdout["ece_by_tier"].items():
        block["gated"] = holdout["calibration"]["by_tier"][tier]["gated"]
    if cutpoints is not None:
        truth = ho["true_probability"] if ho["true_probability"].notna().all() else None
        truth_cuts = None
        if truth is not None and cv["true_probability"].notna().all():
            truth_cuts = bucket_cutpoints(cv["true_probability"])
        holdout["bucket_shares"] = rel.bucket_shares(ho["xgb_proba"], cutpoints, truth, truth_cuts)
    baseline = score_metrics(ho["target"], ho["baseline_proba"], tiers)
    out: dict[str, Any] = {
        "cv_folds": folds,
        # CV figures of the fold models refitted like the shipped model (fixed tree count);
        # the early-stopped runs' figures (what tuning optimized) are kept beside them.
        "cv_aucpr_mean": float(np.mean([f["aucpr_refit"] for f in folds])),
        "cv_aucpr_cov": coefficient_of_variation([f["aucpr_refit"] for f in folds]),
        "cv_aucpr_mean_early_stopped": float(np.mean(best["aucpr"])),
        "cv_aucpr_cov_early_stopped": coefficient_of_variation(best["aucpr"]),
        "cv_baseline_aucpr_mean": float(np.mean([f["baseline_aucpr"] for f in folds])),
        "holdout": holdout,
        "baseline_holdout": baseline,
        "baseline_holdout_aucpr": baseline["aucpr"],
        "train_aucpr": train_aucpr,
        "train_test_gap": relative_gap(train_aucpr, holdout["aucpr_raw"]),
        # Stability across time, out of sample: each CV test block scored by the fold model
        # that did not train on it, and the holdout scored by the final model.
        "ks": rel.stability_ks(cv, ho, fold_train_share, cfg.gates.stability_min_train_share),
        # In sample (the final model on rows it was trained on), for comparison only.
        "ks_in_sample": max_pairwise_ks(rel.time_blocks(cv, ho, "final_proba")),
        "oracle": None,
    }
    if has_dials:
        out["mqls_per_100_dials"] = mqls_per_100_dials(ho["target"], ho["bucket"], ho["dials"])
    if ho["true_probability"].notna().all() and len(ho):
        oracle = score_metrics(ho["target"], ho["true_probability"], tiers)
        oracle["model_aucpr_fraction"] = holdout["aucpr"] / oracle["aucpr"]
        out["oracle"] = oracle
    return out


def _fold_metrics(cv: pd.DataFrame, best: Mapping[str, Any]) -> list[dict[str, Any]]:
    folds = []
    for k, grp in cv.groupby("fold", sort=True):
        block = score_metrics(grp["target"], grp["xgb_proba"])
        block["fold"] = int(str(k))
        block["aucpr_raw"] = best["aucpr"][k]
        block["aucpr_refit"] = average_precision(grp["target"], grp["xgb_margin"])
        block["train_aucpr_raw"] = best["train_aucpr"][k]
        block["train_test_gap"] = relative_gap(best["train_aucpr"][k], best["aucpr"][k])
        block["baseline_aucpr"] = average_precision(grp["target"], grp["baseline_proba"])
        block["oracle_aucpr"] = _maybe_ap(grp["target"], grp["true_probability"])
        folds.append(block)
    return folds


def _maybe_ap(y: pd.Series, score: pd.Series) -> float | None:
    return None if score.isna().any() else average_precision(y, score)
