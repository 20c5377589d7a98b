"""Plots for the training, calibration and validation reports (PNG, Agg backend, no pyplot).

Each function takes plain arrays/tables and a path, writes one PNG atomically and returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from leadscore.evaluate import reliability_table
from leadscore.io import atomic_path


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    return Path(path)


def plot_pr_roc(y: Any, scores: Mapping[str, Any], path: Path) -> Path:
    """Precision-recall and ROC curves of several scores on the same labels."""
    y = np.asarray(y, dtype=int)
    fig = Figure(figsize=(10, 4.2))
    ax_pr, ax_roc = fig.subplots(1, 2)
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y, np.asarray(score, dtype=float))
        ax_pr.step(recall, precision, where="post", label=name)
        fpr, tpr, _ = roc_curve(y, np.asarray(score, dtype=float))
        ax_roc.plot(fpr, tpr, label=name)
    ax_pr.axhline(y.mean(), color="grey", ls=":", label=f"base rate {y.mean():.3f}")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    ax_roc.plot([0, 1], [0, 1], color="grey", ls=":")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax_pr.legend(fontsize=8)
    ax_roc.legend(fontsize=8)
    return _save(fig, path)


def plot_gains(gains: pd.DataFrame, path: Path) -> Path:
    """Lift per score decile (bars) and cumulative share of MQLs captured (line)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    ax.bar(gains["decile"], gains["lift"], color="#4477aa", label="lift")
    ax.axhline(1.0, color="grey", ls=":")
    ax.set(xlabel="score decile (1 = highest)", ylabel="lift vs base rate", title="Gains / lift")
    ax2 = ax.twinx()
    ax2.plot(
        gains["decile"],
        gains["cum_capture"],
        color="#cc6677",
        marker="o",
        label="cumulative capture",
    )
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("share of MQLs captured")
    ax.set_xticks(list(gains["decile"]))
    return _save(fig, path)


def plot_reliability(y: Any, p: Any, segments: Any, path: Path, n_bins: int = 10) -> Path:
    """Reliability diagrams (equal-frequency bins): overall and one panel per segment."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    segments = np.asarray(segments, dtype=object)
    panels = [("overall", np.ones(len(y), dtype=bool))]
    panels += [(str(s), segments == s) for s in sorted(set(segments.tolist()))]
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig = Figure(figsize=(4 * cols, 3.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (name, mask) in zip(axes, panels, strict=False):
        if mask.sum() == 0:
            continue
        table = reliability_table(y[mask], p[mask], n_bins)
        top = max(float(table["predicted"].max()), float(table["observed"].max()), 1e-3) * 1.1
        ax.plot([0, top], [0, top], color="grey", ls=":")
        ax.plot(table["predicted"], table["observed"], marker="o")
        ax.set(
            xlim=(0, top),
            ylim=(0, top),
            title=f"{name} (n={int(mask.sum())})",
            xlabel="mean predicted",
            ylabel="observed rate",
        )
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_score_distributions(groups: Mapping[str, Any], path: Path) -> Path:
    """Calibrated score distribution per time fold and the holdout (step histograms)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    values = [np.asarray(v, dtype=float) for v in groups.values() if len(v)]
    hi = float(np.quantile(np.concatenate(values), 0.995)) if values else 1.0
    bins = np.linspace(0, max(hi, 1e-3), 40).tolist()
    for name, v in groups.items():
        ax.hist(
            np.clip(np.asarray(v, dtype=float), 0, bins[-1]),
            bins=bins,
            density=True,
            histtype="step",
            label=name,
        )
    ax.set(xlabel="calibrated probability", ylabel="density", title="Scores per time fold")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_strategy_comparison(strategies: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """CV AUC-PR per fold for each imbalance strategy (grouped bars), means in the legend."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    names = list(strategies)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        folds: Sequence[float] = strategies[name]["fold_aucpr"]
        xs = np.arange(len(folds)) + i * width
        ax.bar(xs, folds, width, label=f"{name} (mean {strategies[name]['mean_aucpr']:.3f})")
    ax.set(xlabel="CV fold", ylabel="AUC-PR", title="Imbalance strategies")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_cv_folds(folds: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """XGBoost vs logistic baseline (and oracle if known) AUC-PR per CV fold."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    ks = [int(f["fold"]) for f in folds]
    ax.plot(ks, [f["aucpr"] for f in folds], marker="o", label="XGBoost")
    ax.plot(ks, [f["baseline_aucpr"] for f in folds], marker="s", label="logistic baseline")
    if all(f.get("oracle_aucpr") is not None for f in folds):
        ax.plot(ks, [f["oracle_aucpr"] for f in folds], ls=":", label="oracle")
    ax.set(xlabel="CV fold (time order)", ylabel="AUC-PR", title="Forward-chaining CV")
    ax.set_xticks(ks)
    ax.legend(fontsize=8)
    return _save(fig, path)
