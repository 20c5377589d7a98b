"""Serve stage, fast path: one lead scored with NumPy, exactly as the batch scorer scores it.

Reads a loaded bundle (features, preprocessing levels, schema contract, booster, calibrator,
cut points) and the catalog once, when the bundle is loaded; writes nothing. Per request it
types the lead's values, builds a one-row matrix and reads the margin and the TreeSHAP
contributions from it; probability, score, bucket, tier and drivers then come from the batch
scorer's own functions, so the answer is the batch answer bit for bit.

The typing is conservative: it accepts a row only when every value is plainly valid (a finite
number in the contract's range, a true/false, a text, or a missing value where the contract
allows one). Any other row returns ``None`` and the caller scores it through the batch path
(``check_rows`` + ``score_frame``), which gives the exact rejection reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from leadscore.catalog import segment_column
from leadscore.config import ScoreConfig
from leadscore.explain.drivers import display_of, join_drivers, pick_drivers
from leadscore.score.checks import bundle_contract

if TYPE_CHECKING:
    from leadscore.bundle import Bundle
    from leadscore.catalog import Catalog
    from leadscore.validate.contract import ColumnContract

_MAX_EXACT_INT = 2**53  # larger ints do not survive the float the batch path makes of them
_NAN = float("nan")


@dataclass(frozen=True)
class _Feature:
    """What one model feature accepts on the fast path (from the bundle and its contract)."""

    name: str
    kind: str  # numeric | bool | category
    supported: bool  # a kind/contract pairing the fast path knows; else always the batch path
    nullable: bool = True
    integral: bool = False
    lo: float | None = None
    hi: float | None = None
    codes: Mapping[str, int] | None = None

    def typed(self, value: object) -> tuple[float, object] | None:
        """(matrix value, value as the batch path's checked frame holds it), or None when the
        value is not plainly valid (the batch path decides then)."""
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or (type(value) is float and value != value):  # missing (NaN too)
            if not self.nullable:
                return None
            # the checked frame keeps a category as given; numbers and flags become NaN
            return _NAN, value if self.kind == "category" else _NAN
        if self.kind == "numeric":
            return self._number(value)
        if self.kind == "bool":
            return (1.0, 1.0) if value is True else (0.0, 0.0) if value is False else None
        if type(value) is not str or self.codes is None:
            return None
        return float(self.codes.get(value, _NAN)), value  # an unseen level is missing

    def _number(self, value: object) -> tuple[float, object] | None:
        if type(value) is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            x = float(value)
        elif type(value) is float and math.isfinite(value):
            x = value
        else:
            return None  # bools, texts, huge ints, infinities: the batch path words the reason
        if self.integral and not x.is_integer():
            return None
        if (self.lo is not None and x < self.lo) or (self.hi is not None and x > self.hi):
            return None
        return x, x


def _feature(name: str, kind: str, col: ColumnContract | None, levels: list[str]) -> _Feature:
    codes = {level: k for k, level in enumerate(levels)} if kind == "category" else None
    if col is None:
        return _Feature(name, kind, kind in ("numeric", "bool", "category"), codes=codes)
    pairs = {"numeric": ("float", "int"), "bool": ("bool",), "category": ("category",)}
    lo, hi = col.valid_range if col.valid_range is not None else (None, None)
    return _Feature(
        name, kind, col.dtype in pairs.get(kind, ()), col.nullable, col.dtype == "int",
        None if lo is None else float(lo), None if hi is None else float(hi), codes,
    )  # fmt: skip


@dataclass(frozen=True)
class TypedRow:
    """One lead, typed for the model: the matrix row, the checked values, the segment."""

    matrix: np.ndarray
    checked: dict[str, object]
    segment: str


class FastScorer:
    """Scores one typed lead with the bundle's booster (built once per loaded bundle)."""

    def __init__(self, bundle: Bundle, catalog: Catalog, cfg: ScoreConfig) -> None:
        self.bundle, self.catalog, self.cfg = bundle, catalog, cfg
        contract = {c.name: c for c in bundle_contract(bundle, catalog).columns}
        levels: Mapping[str, list[str]] = getattr(bundle.preprocessor, "levels_", {})
        self.features = tuple(
            _feature(f, bundle.feature_types.get(f, "numeric"), contract.get(f), levels.get(f, []))
            for f in bundle.features
        )
        self.complete = all(f.supported for f in self.features)
        self.booster = bundle.booster.copy()  # one row: one thread, and no shared settings
        self.booster.set_param({"nthread": 1})
        self._names = list(bundle.booster.feature_names or bundle.features)
        self._types = bundle.booster.feature_types
        if self._names != list(bundle.features):
            self.complete = False  # the matrix would not be the bundle's feature order
        self._segment = segment_column()
        self._labels = {name: display_of(catalog, name) for name in self._names}

    def typed(self, values: Mapping[str, object]) -> TypedRow | None:
        """The lead typed for the model, or None: the batch path must check it."""
        if not self.complete or self._segment not in values:
            return None
        matrix = np.empty(len(self.features), dtype=np.float64)
        checked: dict[str, object] = {}
        for j, feature in enumerate(self.features):
            if feature.name not in values:
                return None
            got = feature.typed(values[feature.name])
            if got is None:
                return None
            matrix[j], checked[feature.name] = got
        segment = values[self._segment]
        if isinstance(segment, np.generic):
            segment = segment.item()
        # as predict_proba reads the segment: missing (None, NaN, NA) is "Unknown", else text
        missing = segment is None or segment is pd.NA or segment is pd.NaT
        missing = missing or (isinstance(segment, float) and segment != segment)
        return TypedRow(matrix, checked, "Unknown" if missing else str(segment))

    def score(self, row: TypedRow) -> dict[str, Any]:
        """Probability, score, bucket, tier, drivers text and drivers of one typed lead."""
        bundle, cfg = self.bundle, self.cfg
        dmatrix = xgb.DMatrix(
            row.matrix.reshape(1, -1), missing=np.nan, feature_names=self._names,
            feature_types=self._types, enable_categorical=True, nthread=1,
        )  # fmt: skip
        margin = self.booster.predict(dmatrix, output_margin=True, validate_features=False)
        proba = bundle.calibrator.predict(np.asarray(margin), np.array([row.segment], object))
        proba = np.asarray(proba, dtype=np.float64).reshape(-1)
        raw = self.booster.predict(dmatrix, pred_contribs=True, validate_features=False)
        # the folded contributions of score_frame: matrix columns are the features, in order
        contrib = np.asarray(raw, dtype=np.float64)[0, :-1] + 0.0
        positive, negative = pick_drivers(
            dict(zip(self._names, contrib.tolist(), strict=True)), row.checked, self.catalog,
            cfg.drivers_positive, cfg.drivers_negative, self._labels,
        )  # fmt: skip
        return {
            "probability": float(proba[0]),
            "score": int(np.asarray(bundle.score(proba))[0]),
            "bucket": str(bundle.bucket(proba)[0]),
            "tier": str(bundle.tier(proba)[0]),
            "drivers_text": join_drivers(positive, negative, cfg.max_drivers_chars),
            "drivers": {  # as json.loads(drivers_json) gives them: keys in sorted order
                "negative": [dict(sorted(d.to_dict().items())) for d in negative],
                "positive": [dict(sorted(d.to_dict().items())) for d in positive],
            },
            "model_version": str(bundle.version),
        }
