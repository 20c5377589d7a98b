"""Score stage: what scoring needs from a fitted model, as a typed protocol.

A loaded :class:`~leadscore.bundle.Bundle` and a fresh
:class:`~leadscore.train.fit.TrainResult` both satisfy it, so either scores through
:func:`leadscore.score.batch.score_frame`. Reads and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from leadscore.catalog import CALIBRATION_SEGMENT


class ScoringModel(Protocol):
    """What scoring needs from a fitted model: a loaded bundle or a fresh ``TrainResult``."""

    @property
    def version(self) -> str: ...

    @property
    def features(self) -> list[str]: ...

    @property
    def feature_types(self) -> dict[str, str]: ...

    @property
    def booster(self) -> xgb.Booster: ...

    @property
    def contract_path(self) -> Path | None:
        """The schema contract the model was trained with, when it has been written."""
        ...

    def prepare_matrix(self, df: pd.DataFrame) -> xgb.DMatrix: ...

    def predict_proba(
        self,
        df: pd.DataFrame,
        segment_col: str = CALIBRATION_SEGMENT,
        dmatrix: xgb.DMatrix | None = None,
    ) -> np.ndarray: ...

    def proba_from_margin(
        self, df: pd.DataFrame, margin: npt.ArrayLike, segment_col: str = CALIBRATION_SEGMENT
    ) -> np.ndarray: ...

    def score(self, p: npt.ArrayLike) -> np.ndarray: ...

    def bucket(self, p: npt.ArrayLike) -> np.ndarray: ...

    def tier(self, p: npt.ArrayLike) -> np.ndarray: ...
