"""Train stage, step 1: the training table in model order and its model-ready features.

Reads the training table (one row per lead) and its feature types; returns the ordered table,
its fingerprint and a :class:`TrainingData` (preprocessed features, labels, folds). The
:class:`Preprocessor` learned here is the one scoring applies, byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.catalog import CALIBRATION_SEGMENT
from leadscore.train.cv import Splits, positions

FeatureType = Literal["numeric", "bool", "category"]
REQUIRED_COLUMNS = ("lead_id", "contact_ts", "target", CALIBRATION_SEGMENT)


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

    def _column(self, s: pd.Series, kind: str, name: str) -> pd.Categorical | np.ndarray:
        if kind == "category":
            levels = self.levels_[name]
            known = set(levels)
            text = (None if pd.isna(v) else str(v) for v in s.astype(object).tolist())
            return pd.Categorical([v if v in known else None for v in text], categories=levels)
        if kind == "bool":  # missing stays NaN, anything else reads as truthy or not
            values = s.astype(object).to_numpy()
            missing = pd.isna(values)
            out = np.full(len(values), np.nan)
            out[~missing] = values[~missing].astype(bool)
            return out
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
class TrainingData:
    """Model-ready development data shared by every model and fold of one training run.

    ``x`` holds all features, preprocessed, indexed by lead id and ordered by contact time;
    ``folds`` are (train, test) row positions into it; ``usage`` records which rows each model
    was trained and tested on (tests compare the models' rows). ``contact_ts`` (by lead id)
    and ``gap_days`` let early stopping keep the CV gap before its validation rows.
    """

    x: pd.DataFrame
    y: np.ndarray
    tiers: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    types: dict[str, str]
    seed: int
    dev: np.ndarray
    holdout: np.ndarray
    contact_ts: pd.Series = field(default_factory=lambda: pd.Series(dtype="datetime64[ns, UTC]"))
    gap_days: int = 0
    usage: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def record(self, model: str, x_train: pd.DataFrame, x_test: pd.DataFrame) -> None:
        """Remember which rows ``model`` was trained and tested on."""
        entry = {"train": ids_digest(x_train.index), "test": ids_digest(x_test.index)}
        if entry not in self.usage.setdefault(model, []):
            self.usage[model].append(entry)


def ids_digest(index: pd.Index) -> str:
    """Short SHA-256 of a set of lead ids (order does not matter)."""
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


def prepare_table(df: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """Check the training table and order it by (contact time, lead id).

    Raises:
        KeyError: a required or feature column is missing.
        ValueError: an unknown feature type, or a target that is not 0/1.
    """
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


def training_data(
    df: pd.DataFrame, splits: Splits, types: Mapping[str, str], seed: int, gap_days: int = 0
) -> tuple[Preprocessor, TrainingData]:
    """Fit the preprocessor on development rows only and preprocess every row of ``df``."""
    dev, hold = positions(df, splits.dev_ids), positions(df, splits.holdout_ids)
    prep = Preprocessor(types).fit(df.iloc[dev])
    x = prep.transform(df).set_axis(pd.Index(df["lead_id"], name="lead_id"))
    folds = [(positions(df, f.train_ids), positions(df, f.test_ids)) for f in splits.folds]
    data = TrainingData(
        x=x,
        y=df["target"].to_numpy(int),
        tiers=df[CALIBRATION_SEGMENT].astype(str).to_numpy(object),
        folds=folds,
        types=dict(types),
        seed=seed,
        dev=dev,
        holdout=hold,
        contact_ts=pd.Series(df["contact_ts"].to_numpy(), index=x.index),
        gap_days=gap_days,
    )
    return prep, data
