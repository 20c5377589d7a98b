"""Train stage, for people: training, calibration and performance-validation reports.

Reads a :class:`~leadscore.train.fit.TrainResult`; writes Markdown and PNG files into one folder
(``reports/train/<version>/``). The figure that matters comes first in every report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from leadscore.catalog import segment_column
from leadscore.config import DEFAULT_BUCKETS
from leadscore.io import write_text
from leadscore.report import plots

if TYPE_CHECKING:
    from leadscore.train.fit import TrainResult

TRAINING_REPORT = "training_report.md"
CALIBRATION_REPORT = "calibration_report.md"
VALIDATION_REPORT = "performance_validation.md"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | np.floating):
        return "nan" if np.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` restricted to ``columns``."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n" for r in rows)
    return head + body


def _headline(result: TrainResult) -> str:
    m = result.metrics
    hold = m["holdout"]
    lo, hi = hold.get("aucpr_ci95", [None, None])
    oracle = m.get("oracle")
    line = (
        f"**Holdout AUC-PR {hold['aucpr']:.3f}** (95% CI {_fmt(lo, 3)}–{_fmt(hi, 3)}) vs "
        f"logistic baseline {m['baseline_holdout_aucpr']:.3f}, base rate "
        f"{hold['base_rate']:.3f}"
    )
    if oracle:
        line += (
            f"; oracle {oracle['aucpr']:.3f} (model reaches "
            f"{oracle['model_aucpr_fraction']:.0%} of it)"
        )
    failed = [g.name for g in result.gates if not g.passed]
    verdict = "all gates pass" if not failed else f"gates failed: {', '.join(failed)}"
    if failed and result.override_reason:
        verdict += f" (overridden: {result.override_reason})"
    return f"{line}. Model `{result.version}`: {verdict}.\n"


def render_training_report(result: TrainResult, figures: Mapping[str, str]) -> str:
    """Per-fold metrics, strategy comparison, tuning, XGBoost vs baseline, selection."""
    m, sel = result.metrics, result.selection
    strat = result.strategy_comparison
    parts = [
        f"# Training report — {result.version}\n\n",
        _headline(result),
        f"\n![CV folds]({figures['cv']})\n\n## Folds (blocked forward-chaining, "
        f"{result.splits.gap_days}-day gap)\n\n",
        md_table(
            result.splits.summary(),
            ["fold", "train_end", "test_start", "test_end", "n_train", "n_test"],
        ),
        f"\nHoldout: {len(result.splits.holdout_ids)} leads contacted from "
        f"{result.splits.holdout_start.isoformat()} (development ends "
        f"{result.splits.dev_end.isoformat()}).\n\n## Per-fold metrics (XGBoost vs baseline)\n\n",
        md_table(
            m["cv_folds"],
            [
                "fold",
                "n",
                "n_pos",
                "aucpr",
                "aucpr_refit",
                "aucpr_raw",
                "baseline_aucpr",
                "oracle_aucpr",
                "aucroc",
                "precision_at_10pct",
                "train_aucpr_raw",
                "train_test_gap",
            ],
        ),
        f"\nMean CV AUC-PR {m['cv_aucpr_mean']:.4f} (CoV {_fmt(m['cv_aucpr_cov'])}) for the "
        "fold models refitted like the shipped model (`aucpr_refit`, raw margin); the "
        f"early-stopped runs tuning compared: {_fmt(m.get('cv_aucpr_mean_early_stopped'))} "
        f"(CoV {_fmt(m.get('cv_aucpr_cov_early_stopped'))}); "
        f"baseline {m['cv_baseline_aucpr_mean']:.4f}. Per-fold ranking uses each fold model's "
        "raw margin (`aucpr_raw`, what selection optimized) and its calibrated probability.\n",
        f"\n## Imbalance strategies\n\n![strategies]({figures['strategies']})\n\n",
        md_table(
            [{"strategy": k, **v} for k, v in strat["strategies"].items()],
            ["strategy", "mean_aucpr"],
        ),
        f"\nWinner: **{strat['winner']}** (ties within {strat['tie_tolerance']} go to the "
        f"simpler of {' < '.join(strat['order'])}).\n\n## Tuning\n\n",
        f"{result.tuning['n_trials']} TPE trials (seed {result.tuning['seed']}); best trial "
        f"{result.tuning['best_trial']} with CV AUC-PR {result.tuning['best_cv_aucpr']:.4f}.\n\n",
        md_table(
            [
                {"trial": t["number"], "cv_aucpr": t["cv_aucpr"], **t["params"]}
                for t in result.tuning["trials"]
            ],
            [
                "trial",
                "cv_aucpr",
                "max_depth",
                "learning_rate",
                "subsample",
                "colsample_bytree",
                "reg_alpha",
                "reg_lambda",
                "min_child_weight",
            ],
        ),
        f"\nFinal model: {result.params['n_estimators']} trees (median early-stopping round of "
        f"the best trial's folds; early stopping validates on the last 15% of each training "
        f"fold after a {result.splits.gap_days}-day gap), {len(result.features)} features. "
        "The fold models were refitted with the same tree count and parameters; their "
        "out-of-fold margins are what the calibrators, score edges and bucket cuts are fitted "
        "on.\n\n",
        "## Feature selection (IV, VIF) per fold\n\n",
        f"Mean pairwise Jaccard of kept sets: {sel['stability']['mean_jaccard']:.3f}; "
        f"kept in every fold: {len(sel['stability']['always'])}, in none: "
        f"{len(sel['stability']['never'])}.\n\n",
        md_table(
            [
                {
                    "fold": i,
                    "kept": len(f["selected"]),
                    "removed": "; ".join(f"{k}: {v}" for k, v in f["removed"].items()) or "–",
                }
                for i, f in enumerate(sel["folds"])
            ],
            ["fold", "kept", "removed"],
        ),
        "\nFinal filters (all development rows) removed: "
        + ("; ".join(f"`{k}` ({v})" for k, v in sel["final"]["removed"].items()) or "nothing")
        + ".\n",
    ]
    return "".join(parts)


def _ci(block: Mapping[str, Any], key: str) -> str:
    lo, hi = block[f"{key}_ci95"]
    return f"{_fmt(block[key], 3)} ({_fmt(lo, 3)} to {_fmt(hi, 3)})"


def _calibration_rows(cal: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks = {"all": cal["overall"] | {"gated": True}, **cal["by_tier"]}
    return [
        {
            "rows": name,
            "n": b["n"],
            "n_pos": b["n_pos"],
            "mean_predicted": b["mean_predicted"],
            "observed_rate": b["observed_rate"],
            "intercept (95% CI)": _ci(b, "intercept"),
            "slope (95% CI)": _ci(b, "slope"),
            "ece": b["ece"],
            "ece_noise_band": b["ece_noise"]["band"],
            "brier": b["brier"],
            "brier_base_rate": b["brier_base_rate"],
            "gated": "yes" if b["gated"] else "no (too small)",
        }
        for name, b in blocks.items()
    ]


def render_calibration_report(result: TrainResult, figures: Mapping[str, str]) -> str:
    """Calibration of the shipped model on the holdout, overall and per AUM tier; buckets."""
    hold = result.metrics["holdout"]
    cal, gates = result.calibrator.to_dict(), result.config.gates
    overall = hold["calibration"]["overall"]
    cut_rows = [{"bucket": k, "min_probability": v} for k, v in result.cutpoints.items()]
    share_cols = ["bucket", "nominal_share", "share"]
    for col in ("truth_share", "difference_from_truth", "truth_quantile_share"):
        if hold.get("bucket_shares") and col in hold["bucket_shares"][0]:
            share_cols.append(col)
    return "".join(
        [
            f"# Calibration report — {result.version}\n\n",
            f"**Holdout ECE {overall['ece']:.4f}** against {_fmt(overall['ece_noise']['band'])}, "
            f"the {gates.ece_noise_quantile:.0%} point of the ECE a perfectly calibrated model "
            f"shows on the same rows (outcomes drawn {gates.ece_noise_samples} times from the "
            f"model's own probabilities; mean {_fmt(overall['ece_noise']['mean'])}). "
            f"Calibration-in-the-large {_ci(overall, 'intercept')}, slope "
            f"{_ci(overall, 'slope')}; Brier {overall['brier']:.4f} vs "
            f"{overall['brier_base_rate']:.4f} for the base-rate predictor.\n\n",
            f"![reliability]({figures['reliability']})\n\n",
            f"Method: {cal['method']} per AUM tier, fitted on the out-of-fold margins of fold "
            f"models refitted like the shipped model ({result.params['n_estimators']} trees, same "
            "parameters), never on rows the scoring model was trained on; tiers with too few rows "
            f"or positives use the global calibrator: {', '.join(cal['fallback']) or 'none'}. "
            "ECE uses 10 equal-frequency bins. Intercept: `a` in logit P(MQL) = a + logit(p) "
            "(0 is right, above 0 the model under-predicts); slope: `b` in logit P(MQL) = c + "
            "b logit(p) (1 is right, below 1 the scores are too extreme); 95% Wald intervals. "
            f"A tier is gated with at least {gates.calibration_min_rows} holdout leads and "
            f"{gates.calibration_min_positives} MQLs; smaller tiers are reported only.\n\n"
            "## Calibration on the holdout, overall and per AUM tier\n\n",
            md_table(
                _calibration_rows(hold["calibration"]),
                list(_calibration_rows(hold["calibration"])[0]),
            ),
            "\n## Buckets\n\nCut on calibrated probability at quantiles of the out-of-fold "
            f"scores: {DEFAULT_BUCKETS.describe()}\n\n",
            md_table(cut_rows, ["bucket", "min_probability"]),
            "\n### Bucket shares on the holdout\n\n`share`: holdout leads per bucket under the "
            "shipped model. `truth_share` (synthetic worlds): the same probability cut points "
            "applied to each holdout lead's true probability. `truth_quantile_share`: the truth "
            "cut the same way as the model (its own cut points at the nominal quantiles of the "
            "same out-of-fold leads), applied to the holdout's true probabilities.\n\n",
            md_table(hold.get("bucket_shares", []), share_cols),
        ]
    )


def render_validation_report(result: TrainResult, figures: Mapping[str, str]) -> str:
    """Gates, holdout metrics, curves, gains, score stability, business and oracle figures."""
    m = result.metrics
    hold = m["holdout"]
    gates = [
        {
            "gate": g.name,
            "figure": g.figure,
            "comparison": g.comparison,
            "threshold": g.threshold,
            "verdict": "pass" if g.passed else "FAIL",
        }
        for g in result.gates
    ]
    keys = [
        "aucpr",
        "aucroc",
        "precision_at_10pct",
        "recall_at_10pct",
        "lift_at_10pct",
        "bottom_20pct_rate",
        "brier",
        "log_loss",
        "ece",
    ]
    compare = [
        {
            "metric": k,
            "xgboost": hold[k],
            "baseline": m["baseline_holdout"][k],
            "oracle": (m["oracle"] or {}).get(k),
        }
        for k in keys
    ]
    parts = [
        f"# Performance validation — {result.version}\n\n",
        _headline(result),
        "\n## Gates\n\n",
        md_table(gates, ["gate", "figure", "comparison", "threshold", "verdict"]),
        f"\nOverride: {result.override_reason or 'none'}.\n\n",
        f"![PR and ROC]({figures['pr_roc']})\n\n## Holdout metrics\n\n",
        md_table(compare, ["metric", "xgboost", "baseline", "oracle"]),
        f"\nTrain AUC-PR {m['train_aucpr']:.4f} vs holdout {hold['aucpr_raw']:.4f}: relative "
        f"gap {_fmt(m['train_test_gap'])}. Stability, out of sample: the largest KS between "
        "the calibrated scores of the time blocks (each CV block scored by the fold model that "
        "did not train on it, the holdout by the final model; blocks compared: "
        f"{', '.join(m['ks']['blocks'])}) is {m['ks']['ks']:.4f} "
        f"({' vs '.join(m['ks']['pair'] or [])}); over every block "
        f"{m['ks']['all_blocks']['ks']:.4f}. For comparison only, in sample (the final model "
        f"on the CV blocks it was trained on): {m['ks_in_sample']['ks']:.4f}.\n\n",
        f"## Gains\n\n![gains]({figures['gains']})\n\n",
        md_table(hold["gains"], ["decile", "n", "n_pos", "rate", "cum_capture", "lift"]),
        f"\n## Score distribution per fold (out of sample)\n\n![scores]({figures['scores']})\n",
    ]
    if m.get("mqls_per_100_dials"):
        rows = [{"bucket": k, **v} for k, v in m["mqls_per_100_dials"].items()]
        parts += [
            "\n## MQLs per 100 dials by bucket (holdout)\n\nDials counted from contact to "
            f"{result.config.dataset.label_window_days} days after it, none after the MQL "
            "(dials before contact, after the MQL or after the window are left out).\n\n",
            md_table(rows, ["bucket", "leads", "mqls", "dials", "mqls_per_100_dials"]),
        ]
    return "".join(parts)


def write_training_reports(result: TrainResult, out_dir: Path) -> dict[str, Path]:
    """Write the three reports and their figures; return name -> path."""
    out_dir = Path(out_dir)
    pred = result.predictions
    cv, ho = pred[pred["set"] == "cv"], pred[pred["set"] == "holdout"]
    scores = {"XGBoost": ho["xgb_proba"], "logistic baseline": ho["baseline_proba"]}
    if ho["true_probability"].notna().all():
        scores["oracle"] = ho["true_probability"]
    groups = {f"fold {k}": g["xgb_proba"] for k, g in cv.groupby("fold", sort=True)}
    groups["holdout"] = ho["xgb_proba"]
    figures = {
        "cv": plots.plot_cv_folds(result.metrics["cv_folds"], out_dir / "cv_folds.png"),
        "strategies": plots.plot_strategy_comparison(
            result.strategy_comparison["strategies"], out_dir / "strategies.png"
        ),
        "reliability": plots.plot_reliability(
            ho["target"], ho["xgb_proba"], ho[segment_column()], out_dir / "reliability.png"
        ),
        "pr_roc": plots.plot_pr_roc(ho["target"], scores, out_dir / "pr_roc.png"),
        "gains": plots.plot_gains(_gains_frame(result), out_dir / "gains.png"),
        "scores": plots.plot_score_distributions(groups, out_dir / "score_distribution.png"),
    }
    names = {k: v.name for k, v in figures.items()}
    out = {
        "training": write_text(out_dir / TRAINING_REPORT, render_training_report(result, names)),
        "calibration": write_text(
            out_dir / CALIBRATION_REPORT, render_calibration_report(result, names)
        ),
        "validation": write_text(
            out_dir / VALIDATION_REPORT, render_validation_report(result, names)
        ),
    }
    return {**out, **figures}


def _gains_frame(result: TrainResult) -> Any:
    import pandas as pd

    return pd.DataFrame(result.metrics["holdout"]["gains"])
