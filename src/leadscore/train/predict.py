"""Train stage: how a fitted model turns a frame into margins, probabilities and buckets.

Shared by :class:`~leadscore.train.fit.TrainResult` (in memory, straight after training) and
the loaded model bundle, so both score through the same preprocessing and calibration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from leadscore.calibrate import SegmentCalibrator, assign_buckets, assign_scores, assign_tiers
from leadscore.catalog import CALIBRATION_SEGMENT
from leadscore.train.preprocess import Preprocessor


class ScoringMethods:
    """Scoring behaviour of a fitted model; the class using it holds the learned attributes."""

    booster: xgb.Booster
    preprocessor: Preprocessor
    features: list[str]
    calibrator: SegmentCalibrator
    cutpoints: dict[str, float]
    score_edges: list[float]

    @property
    def contract_path(self) -> Path | None:
        """Where the trained-with schema contract is; None until it is written."""
        return None

    def prepare_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Training's preprocessing: feature order, dtypes, fixed category levels."""
        return self.preprocessor.transform(df, self.features)

    def prepare_matrix(self, df: pd.DataFrame) -> xgb.DMatrix:
        """DMatrix exactly as in training (unseen category levels become missing)."""
        return xgb.DMatrix(self.prepare_frame(df), enable_categorical=True, missing=np.nan)

    def predict_margin(self, df: pd.DataFrame, dmatrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Raw log-odds of the booster (``dmatrix``: ``prepare_matrix(df)`` made already)."""
        matrix = self.prepare_matrix(df) if dmatrix is None else dmatrix
        return np.asarray(self.booster.predict(matrix, output_margin=True))

    def predict_proba(
        self,
        df: pd.DataFrame,
        segment_col: str = CALIBRATION_SEGMENT,
        dmatrix: xgb.DMatrix | None = None,
    ) -> np.ndarray:
        """Calibrated probability (per-AUM-tier calibrator; needs ``segment_col``)."""
        if segment_col not in df.columns:
            raise KeyError(f"predict_proba needs the {segment_col!r} column")
        return self.proba_from_margin(df, self.predict_margin(df, dmatrix), segment_col)

    def proba_from_margin(
        self, df: pd.DataFrame, margin: npt.ArrayLike, segment_col: str = CALIBRATION_SEGMENT
    ) -> np.ndarray:
        """Calibrated probability of margins already predicted for the rows of ``df``."""
        if segment_col not in df.columns:
            raise KeyError(f"predict_proba needs the {segment_col!r} column")
        segments = df[segment_col].astype(object).where(df[segment_col].notna(), "Unknown")
        return self.calibrator.predict(margin, segments.astype(str).to_numpy())

    def score(self, p: npt.ArrayLike) -> np.ndarray:
        """Score 1-99: the percentile of the calibrated probability among out-of-fold leads."""
        return assign_scores(p, self.score_edges)

    def bucket(self, p: npt.ArrayLike) -> np.ndarray:
        """Very Hot / Hot / Warm / Cool / Cold per calibrated probability."""
        return assign_buckets(np.asarray(p, dtype=float), self.cutpoints)

    def tier(self, p: npt.ArrayLike) -> np.ndarray:
        """A / B / C call tier per calibrated probability."""
        return assign_tiers(np.asarray(p, dtype=float), self.cutpoints)
