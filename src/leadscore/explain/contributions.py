"""Explain stage, contributions: exact TreeSHAP from XGBoost itself, folded to source features,
and for large batches computed chunk by chunk on a worker thread while the calling thread turns
the previous chunk into driver texts. Reads a model and a feature frame; writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import xgboost as xgb

from leadscore.config import ScoreConfig
from leadscore.explain.assemble import DriverColumns, Phrases, driver_columns

if TYPE_CHECKING:
    from leadscore.catalog import Catalog
    from leadscore.score.protocol import ScoringModel

#: Separators between a categorical source feature and its level in one-hot column names.
_ONEHOT_SEPARATORS = ("=", "__", ":", ".", "_")


@dataclass(frozen=True)
class Contributions:
    """Per-row SHAP values of one matrix: ``values.sum(axis=1) + bias == margin``."""

    columns: tuple[str, ...]
    values: np.ndarray
    bias: np.ndarray

    @property
    def margin(self) -> np.ndarray:
        """The model margin (log-odds) the contributions add up to."""
        return np.asarray(self.values.sum(axis=1, dtype=np.float64) + self.bias)


def compute_contributions(
    bundle: ScoringModel, df: pd.DataFrame, dmatrix: xgb.DMatrix | None = None
) -> Contributions:
    """Exact TreeSHAP contributions for every row of ``df`` through the bundle's preprocessing.

    Invariant: one output row per input row, in order; one column per model feature (the
    preprocessor keeps categoricals native, so matrix columns are the bundle's features).
    """
    dmatrix = bundle.prepare_matrix(df) if dmatrix is None else dmatrix
    raw = np.asarray(bundle.booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)
    columns = tuple(dmatrix.feature_names or ())
    if raw.ndim != 2 or len(columns) != raw.shape[1] - 1:
        raise ValueError(f"contribution matrix of shape {raw.shape} for {len(columns)} columns")
    return Contributions(columns=columns, values=raw[:, :-1], bias=raw[:, -1])


def source_features(columns: Sequence[str], features: Sequence[str]) -> dict[str, str]:
    """Map each matrix column to the feature it came from (one-hot levels fold to their source).

    An exact name maps to itself; else the longest feature name that prefixes the column
    followed by a separator (``metro_area=NYC`` -> ``metro_area``).
    """
    by_length = sorted(features, key=len, reverse=True)
    out: dict[str, str] = {}
    for col in columns:
        if col in features:
            out[col] = col
        else:
            out[col] = next(
                (f for f in by_length if any(col.startswith(f + s) for s in _ONEHOT_SEPARATORS)),
                col,
            )
    return out


def fold_contributions(
    contrib: Contributions,
    features: Sequence[str],
    index: pd.Index | None = None,
) -> pd.DataFrame:
    """Contributions summed per source feature: one column per feature, in ``features`` order.

    Folding keeps additivity: each row still sums (with the bias) to the margin.
    """
    mapping = source_features(contrib.columns, features)
    sources = list(mapping.values())
    if len(set(sources)) == len(sources):  # no one-hot levels: folding only renames columns
        position = {source: k for k, source in enumerate(sources)}
        order = [f for f in features if f in position]
        order += sorted(c for c in position if c not in order)
        values = np.asarray(contrib.values, dtype=np.float64)[:, [position[c] for c in order]]
        return pd.DataFrame(values + 0.0, columns=order, index=index)  # as a sum: -0.0 -> 0.0
    frame = pd.DataFrame(contrib.values, columns=list(contrib.columns), index=index)
    folded = frame.T.groupby(pd.Series(mapping)).sum().T
    order = [f for f in features if f in folded.columns]
    order += sorted(c for c in folded.columns if c not in order)
    return folded.reindex(columns=order).astype(np.float64)


#: Rows per chunk of :func:`explain_rows`; a batch no larger runs in one pass on the caller.
CHUNK_ROWS = 8192

#: A per-chunk prediction beside the contributions, from the chunk's rows and its matrix.
ChunkPredict = Callable[[pd.DataFrame, xgb.DMatrix], np.ndarray]


@dataclass(frozen=True)
class ExplainedRows:
    """Every row's contributions, folded contributions, drivers and ``predict`` output."""

    contributions: Contributions
    folded: pd.DataFrame
    drivers: DriverColumns
    predicted: np.ndarray | None


def explain_rows(
    bundle: ScoringModel,
    df: pd.DataFrame,
    catalog: Catalog,
    cfg: ScoreConfig,
    predict: ChunkPredict | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ExplainedRows:
    """Contributions, folded contributions and drivers of every row of ``df`` (and
    ``predict(rows, matrix)`` from the same matrix, when given).

    XGBoost releases the GIL while it predicts, so a worker thread computes the next chunk's
    matrix, contributions and prediction while this thread assembles the drivers of the one
    before. Each row's figures depend on that row alone, so the result equals one pass over
    all rows exactly.

    Invariant: one row of each output per row of ``df``, in order.
    """

    def compute(start: int) -> tuple[pd.DataFrame, Contributions, np.ndarray | None]:
        rows = df.iloc[start : start + chunk_rows]
        matrix = bundle.prepare_matrix(rows)
        contrib = compute_contributions(bundle, rows, matrix)
        return rows, contrib, None if predict is None else np.asarray(predict(rows, matrix))

    starts = list(range(0, len(df), chunk_rows)) or [0]
    parts: list[ExplainedRows] = []
    phrases: list[Phrases] = []  # the first chunk's, reused by the later ones
    if len(starts) == 1:
        parts.append(_explain_chunk(bundle, catalog, cfg, phrases, *compute(0)))
    else:
        with ThreadPoolExecutor(1, thread_name_prefix="treeshap") as pool:
            pending = pool.submit(compute, starts[0])
            for k in range(len(starts)):
                done = pending.result()
                if k + 1 < len(starts):
                    pending = pool.submit(compute, starts[k + 1])
                parts.append(_explain_chunk(bundle, catalog, cfg, phrases, *done))
    return _concat(parts)


def _explain_chunk(
    bundle: ScoringModel,
    catalog: Catalog,
    cfg: ScoreConfig,
    phrases: list[Phrases],
    rows: pd.DataFrame,
    contrib: Contributions,
    predicted: np.ndarray | None,
) -> ExplainedRows:
    folded = fold_contributions(contrib, list(bundle.features), rows.index)
    if not phrases:
        phrases.append(Phrases([str(c) for c in folded.columns], catalog))
    drivers = driver_columns(folded, rows, catalog, cfg, phrases[0])
    return ExplainedRows(contrib, folded, drivers, predicted)


def _concat(parts: list[ExplainedRows]) -> ExplainedRows:
    if len(parts) == 1:
        return parts[0]
    first = parts[0].contributions
    contributions = Contributions(
        columns=first.columns,
        values=np.concatenate([p.contributions.values for p in parts]),
        bias=np.concatenate([p.contributions.bias for p in parts]),
    )
    drivers = DriverColumns(
        pa.concat_arrays([p.drivers.text for p in parts]),
        pa.concat_arrays([p.drivers.json for p in parts]),
    )
    predicted = None if parts[0].predicted is None else np.concatenate(
        [np.asarray(p.predicted) for p in parts]
    )  # fmt: skip
    folded = pd.concat([p.folded for p in parts])
    return ExplainedRows(contributions, folded, drivers, predicted)
