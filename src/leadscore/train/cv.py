"""Train stage, splits: a time-ordered holdout and blocked forward-chaining CV folds (rule 4).

Reads the training table's contact times and lead Ids; returns fold definitions that can be
saved to and reloaded from JSON so every later step (and a re-run) uses the same boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.io import write_json


@dataclass(frozen=True)
class Fold:
    """One forward-chaining fold.

    Training rows have ``contact_ts < train_end`` where ``train_end = test_start - gap``;
    test rows have ``test_start <= contact_ts < test_end``. Rows in the gap belong to neither.
    """

    index: int
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]


@dataclass(frozen=True)
class Splits:
    """The holdout (the most recent block, touched once) and the CV folds on the rest."""

    gap_days: int
    data_start: pd.Timestamp
    dev_end: pd.Timestamp
    holdout_start: pd.Timestamp
    data_end: pd.Timestamp
    dev_ids: tuple[str, ...]
    holdout_ids: tuple[str, ...]
    folds: tuple[Fold, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ISO timestamps and lead Ids."""
        return {
            "gap_days": self.gap_days,
            "data_start": self.data_start.isoformat(),
            "dev_end": self.dev_end.isoformat(),
            "holdout_start": self.holdout_start.isoformat(),
            "data_end": self.data_end.isoformat(),
            "dev_ids": list(self.dev_ids),
            "holdout_ids": list(self.holdout_ids),
            "folds": [
                {
                    "index": f.index,
                    "train_end": f.train_end.isoformat(),
                    "test_start": f.test_start.isoformat(),
                    "test_end": f.test_end.isoformat(),
                    "n_train": len(f.train_ids),
                    "n_test": len(f.test_ids),
                    "train_ids": list(f.train_ids),
                    "test_ids": list(f.test_ids),
                }
                for f in self.folds
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Splits:
        """Inverse of :meth:`to_dict`."""
        folds = tuple(
            Fold(
                index=int(f["index"]),
                train_end=pd.Timestamp(f["train_end"]),
                test_start=pd.Timestamp(f["test_start"]),
                test_end=pd.Timestamp(f["test_end"]),
                train_ids=tuple(f["train_ids"]),
                test_ids=tuple(f["test_ids"]),
            )
            for f in data["folds"]
        )
        return cls(
            gap_days=int(data["gap_days"]),
            data_start=pd.Timestamp(data["data_start"]),
            dev_end=pd.Timestamp(data["dev_end"]),
            holdout_start=pd.Timestamp(data["holdout_start"]),
            data_end=pd.Timestamp(data["data_end"]),
            dev_ids=tuple(data["dev_ids"]),
            holdout_ids=tuple(data["holdout_ids"]),
            folds=folds,
        )

    def summary(self) -> list[dict[str, Any]]:
        """Fold boundaries and sizes without the Ids (for reports)."""
        return [
            {
                "fold": f.index,
                "train_end": f.train_end.isoformat(),
                "test_start": f.test_start.isoformat(),
                "test_end": f.test_end.isoformat(),
                "n_train": len(f.train_ids),
                "n_test": len(f.test_ids),
            }
            for f in self.folds
        ]


def make_splits(
    df: pd.DataFrame,
    n_folds: int = 5,
    gap_days: int = 30,
    holdout_fraction: float = 0.15,
    ts_col: str = "contact_ts",
    id_col: str = "lead_id",
) -> Splits:
    """Split leads by contact time into a holdout and ``n_folds`` forward-chaining folds.

    The holdout is every lead contacted in the last ``holdout_fraction`` of the contact-time
    span. Development rows end ``gap_days`` before it. The development rows are cut into
    ``n_folds + 1`` consecutive blocks of (about) equal row count; fold *k* tests on block
    *k + 1* and trains on every development row contacted more than ``gap_days`` before that
    block starts (an expanding window). Boundaries are timestamps, so ties stay together.

    Raises:
        ValueError: missing timestamps, duplicate Ids, or a fold without training rows.
    """
    ts = pd.to_datetime(df[ts_col], utc=True)
    if ts.isna().any():
        raise ValueError(f"{ts_col} has {int(ts.isna().sum())} missing values")
    ids = df[id_col].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"{id_col} has duplicates; one row per lead is required")
    gap = pd.Timedelta(days=gap_days)
    start, end = ts.min(), ts.max()
    holdout_start = end - (end - start) * holdout_fraction
    dev_end = holdout_start - gap
    order = np.lexsort((ids.to_numpy(), ts.to_numpy()))
    ts_sorted = ts.iloc[order].reset_index(drop=True)
    ids_sorted = ids.iloc[order].reset_index(drop=True)
    dev = (ts_sorted < dev_end).to_numpy()
    holdout = (ts_sorted >= holdout_start).to_numpy()
    dev_ts = ts_sorted[dev].reset_index(drop=True)
    if len(dev_ts) < 2 * (n_folds + 1):
        raise ValueError(f"only {len(dev_ts)} development rows for {n_folds} folds")
    cuts = [dev_ts.iloc[round(i * len(dev_ts) / (n_folds + 1))] for i in range(1, n_folds + 1)]
    bounds = [*cuts, dev_end]
    folds = []
    for k in range(n_folds):
        test_start, test_end = bounds[k], bounds[k + 1]
        train_end = test_start - gap
        train_mask = (ts_sorted < train_end).to_numpy() & dev
        test_mask = ((ts_sorted >= test_start) & (ts_sorted < test_end)).to_numpy()
        if not train_mask.any() or not test_mask.any():
            raise ValueError(
                f"fold {k} is empty (train {int(train_mask.sum())}, test {int(test_mask.sum())})"
                f"; use fewer folds or a shorter cv_gap_days"
            )
        folds.append(
            Fold(
                index=k,
                train_end=train_end,
                test_start=test_start,
                test_end=test_end,
                train_ids=tuple(ids_sorted[train_mask]),
                test_ids=tuple(ids_sorted[test_mask]),
            )
        )
    return Splits(
        gap_days=gap_days,
        data_start=start,
        dev_end=dev_end,
        holdout_start=holdout_start,
        data_end=end,
        dev_ids=tuple(ids_sorted[dev]),
        holdout_ids=tuple(ids_sorted[holdout]),
        folds=tuple(folds),
    )


def positions(df: pd.DataFrame, ids: Iterable[str], id_col: str = "lead_id") -> np.ndarray:
    """Row positions of ``ids`` in ``df`` (in the order given). Unknown Ids raise KeyError."""
    index = pd.Index(df[id_col].astype(str))
    wanted = pd.Index(list(ids))
    pos = index.get_indexer(wanted)
    if (pos < 0).any():
        missing = wanted[pos < 0][:5].tolist()
        raise KeyError(f"lead Ids not in the table: {missing}")
    return np.asarray(pos)


def save_folds(splits: Splits, path: Path) -> Path:
    """Persist fold boundaries (dates and lead Ids) as JSON, atomically."""
    return write_json(path, splits.to_dict())


def load_folds(path: Path) -> Splits:
    """Read fold definitions written by :func:`save_folds`."""
    return Splits.from_dict(json.loads(Path(path).read_text()))


def fold_sizes(splits: Splits) -> Sequence[tuple[int, int]]:
    """(n_train, n_test) per fold."""
    return [(len(f.train_ids), len(f.test_ids)) for f in splits.folds]
