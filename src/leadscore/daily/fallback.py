"""Daily stage, fallback model: a score for leads without usable vendor data.

Reads the build's lead spine (every contacted lead, matched or not, with its label and its
contact-time features); writes ``<models_dir>/<version>.fallback/`` (``fallback.json``: logistic
coefficients and Platt calibration as JSON, no pickle; ``manifest.json``: SHA-256 checksums,
verified on load) and ``<reports_dir>/fallback/metrics.json``.

The model sees only what every lead has: the contact's day of week and weekend flag. Evaluation
is the main model's: rows in contact-time order, the most recent block a holdout after a gap,
calibration fitted on out-of-fold margins of blocked forward-chaining folds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from leadscore.calibrate import fit_platt
from leadscore.config import Settings
from leadscore.dataset import CRD_REASONS
from leadscore.evaluate import average_precision, brier, ece, roc_auc
from leadscore.io import sha256_file, write_json
from leadscore.train.cv import make_splits, positions
from leadscore.warehouse import Warehouse, tables

#: The catalog features every contacted lead has (from the contact time itself).
FALLBACK_FEATURES: Final = ("Day_of_Contact", "Is_Weekend_Contact")
FALLBACK_FILE: Final = "fallback.json"
MANIFEST: Final = "manifest.json"
_DAYS: Final = tuple(range(1, 8))
_C: Final = 1.0


class FallbackError(ValueError):
    """A fallback model that cannot be used (missing, changed on disk, unreadable)."""


def design(df: pd.DataFrame) -> np.ndarray:
    """One column per ISO weekday (Mon..Sun) plus the weekend flag; one row per lead."""
    day = pd.to_numeric(df["Day_of_Contact"], errors="coerce").fillna(0).to_numpy()
    weekend = df["Is_Weekend_Contact"].astype("float64").fillna(0).to_numpy()
    return np.column_stack([(day == d).astype(float) for d in _DAYS] + [weekend])


@dataclass(frozen=True)
class FallbackModel:
    """Logistic regression on :func:`design`, then Platt scaling of its margin."""

    version: str
    coef: tuple[float, ...]
    intercept: float
    platt_a: float
    platt_b: float
    metrics: dict[str, Any]

    def margin(self, df: pd.DataFrame) -> np.ndarray:
        """Log-odds before calibration."""
        return np.asarray(design(df) @ np.asarray(self.coef) + self.intercept)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of an MQL within the label window."""
        z = self.platt_a * self.margin(df) + self.platt_b
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``fallback.json`` holds)."""
        return {
            "kind": "logistic+platt",
            "version": self.version,
            "features": list(FALLBACK_FEATURES),
            "design": [f"isodow_{d}" for d in _DAYS] + ["Is_Weekend_Contact"],
            "coef": list(self.coef),
            "intercept": self.intercept,
            "platt": {"a": self.platt_a, "b": self.platt_b},
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FallbackModel:
        """Inverse of :meth:`to_dict`."""
        return cls(
            version=str(data["version"]),
            coef=tuple(float(c) for c in data["coef"]),
            intercept=float(data["intercept"]),
            platt_a=float(data["platt"]["a"]),
            platt_b=float(data["platt"]["b"]),
            metrics=dict(data["metrics"]),
        )


def fallback_version(main_version: str) -> str:
    """The fallback's model version (it belongs to one main model)."""
    return f"{main_version}-fallback"


def read_history(wh: Warehouse) -> pd.DataFrame:
    """Every contacted lead with a usable label, matched to vendor data or not: the build's
    spine minus negative-days and right-censored rows."""
    reasons = ", ".join(f"'{r}'" for r in CRD_REASONS)
    spine = f"{tables.TRAINING_SET}_spine"
    if not wh.table_exists(spine):
        raise FallbackError(f"no {spine} table; run `leadscore build` first")
    return wh.query(
        f"SELECT lead_id, contact_ts, target, pit_status, "
        f"{', '.join(FALLBACK_FEATURES)} FROM {spine} "
        f"WHERE exclusion_reason IS NULL OR exclusion_reason IN ({reasons}) "
        "ORDER BY contact_ts, lead_id"
    ).to_pandas()


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """A fitted scikit-learn LogisticRegression (imported here: scoring never needs it)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=_C, max_iter=1000, random_state=seed).fit(x, y)


def train_fallback(history: pd.DataFrame, cfg: Settings, main_version: str) -> FallbackModel:
    """Fit, calibrate out of fold and evaluate on the time-ordered holdout.

    Raises:
        ValueError: too few rows or a fold with one class only.
    """
    t = cfg.train
    seed = cfg.project.global_seed
    splits = make_splits(history, t.cv_folds, t.cv_gap_days, t.holdout_fraction)
    x, y = design(history), history["target"].to_numpy(dtype=float)
    oof_pos, oof_margin = [], []
    for fold in splits.folds:
        train, test = positions(history, fold.train_ids), positions(history, fold.test_ids)
        model = _fit(x[train], y[train], seed)
        oof_pos.append(test)
        oof_margin.append(model.decision_function(x[test]))
    oof = np.concatenate(oof_pos)
    a, b = fit_platt(np.concatenate(oof_margin), y[oof])
    dev, hold = positions(history, splits.dev_ids), positions(history, splits.holdout_ids)
    final = _fit(x[dev], y[dev], seed)
    p_hold = 1.0 / (1.0 + np.exp(-(a * final.decision_function(x[hold]) + b)))
    matched = (history["pit_status"].iloc[hold] == "ok").to_numpy()
    metrics = {
        "n_rows": len(history),
        "n_unmatched_rows": int((history["pit_status"] != "ok").sum()),
        "n_holdout": len(hold),
        "holdout_start": splits.holdout_start.isoformat(),
        "holdout_positive_rate": float(y[hold].mean()),
        "holdout_aucpr": average_precision(y[hold], p_hold),
        "holdout_auc": roc_auc(y[hold], p_hold),
        "holdout_ece": ece(y[hold], p_hold),
        "holdout_brier": brier(y[hold], p_hold),
        "holdout_aucpr_unmatched": _maybe(average_precision, y[hold][~matched], p_hold[~matched]),
    }
    return FallbackModel(
        fallback_version(main_version),
        tuple(float(c) for c in final.coef_[0]),
        float(final.intercept_[0]),
        a,
        b,
        metrics,
    )


def _maybe(fn: Any, y: np.ndarray, p: np.ndarray) -> float | None:
    return float(fn(y, p)) if 0 < y.sum() < len(y) else None


def fallback_dir(bundle_path: Path) -> Path:
    """Where the fallback of the bundle at ``bundle_path`` lives (beside it)."""
    return bundle_path.with_name(f"{bundle_path.name}.fallback")


def save_fallback(model: FallbackModel, bundle_path: Path) -> Path:
    """Write ``fallback.json`` and its checksum manifest beside the bundle."""
    folder = fallback_dir(bundle_path)
    write_json(folder / FALLBACK_FILE, model.to_dict())
    write_json(folder / MANIFEST, {"files": {FALLBACK_FILE: sha256_file(folder / FALLBACK_FILE)}})
    return folder


def load_fallback(bundle_path: Path) -> FallbackModel:
    """Verify the checksum, then read the fallback of a bundle.

    Raises:
        FallbackError: missing, changed since it was written, or unreadable.
    """
    folder = fallback_dir(bundle_path)
    path = folder / FALLBACK_FILE
    if not path.is_file() or not (folder / MANIFEST).is_file():
        raise FallbackError(f"no fallback model in {folder}; run `leadscore fallback`")
    try:
        expected = json.loads((folder / MANIFEST).read_text())["files"][FALLBACK_FILE]
        if sha256_file(path) != expected:
            raise FallbackError(f"{path}: checksum mismatch; the fallback model was changed")
        return FallbackModel.from_dict(json.loads(path.read_text()))
    except (KeyError, TypeError, ValueError) as exc:
        raise FallbackError(f"{folder}: unreadable fallback model ({exc})") from None
