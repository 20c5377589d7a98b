"""Explain stage, contributions: exact TreeSHAP from XGBoost itself, folded to source features,
and for large batches computed chunk by chunk on worker threads while the calling thread turns
finished chunks into driver texts. Reads a model and a feature frame; writes nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import xgboost as xgb

from leadscore.config import ScoreConfig
from leadscore.explain.assemble import (
    DriverCells,
    DriverColumns,
    Phrases,
    driver_cells,
    driver_columns,
)

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
    bundle: ScoringModel,
    df: pd.DataFrame,
    dmatrix: xgb.DMatrix | None = None,
    booster: xgb.Booster | None = None,
) -> Contributions:
    """Exact TreeSHAP contributions for every row of ``df`` through the bundle's preprocessing.

    Invariant: one output row per input row, in order; one column per model feature (the
    preprocessor keeps categoricals native, so matrix columns are the bundle's features).
    """
    dmatrix = bundle.prepare_matrix(df) if dmatrix is None else dmatrix
    booster = bundle.booster if booster is None else booster  # a copy of it, e.g. one-threaded
    raw = np.asarray(booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)
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
#: Threads computing chunks beside the caller's, each with its own single-threaded booster.
WORKERS = 2


@dataclass(frozen=True)
class ExplainedRows:
    """Every row's contributions, folded contributions, drivers and margin (log-odds)."""

    contributions: Contributions
    folded: pd.DataFrame
    drivers: DriverColumns
    margin: np.ndarray


def explain_rows(
    bundle: ScoringModel,
    df: pd.DataFrame,
    catalog: Catalog,
    cfg: ScoreConfig,
    chunk_rows: int | None = None,
    workers: int | None = None,
    meanwhile: Callable[[], None] | None = None,
    each: Callable[[ExplainedRows], None] | None = None,
) -> ExplainedRows:
    """Contributions, folded contributions, drivers and margin of every row of ``df`` (the
    margin predicted from the same matrix as the contributions).

    XGBoost releases the GIL while it predicts, so ``WORKERS`` threads compute the chunks'
    matrices, contributions, margins and driver cells (NumPy and Arrow, which release the GIL
    too) while this thread puts finished chunks into words, in order. Each worker predicts
    with its own copy of the booster on one thread: the operating system then shares the cores
    among the three threads, where XGBoost's own threads would wait at every parallel step for
    the one that shares its core with this thread. Each row's figures depend on that row
    alone, so the result equals one pass over all rows exactly.

    ``meanwhile``: work of the caller's that needs no contribution, done on this thread while
    the first chunks compute (before anything when there is only one chunk). ``each``: called
    on this thread with every chunk's result, in row order, once it is in words.

    Invariant: one row of each output per row of ``df``, in order.
    """
    size, n_workers = chunk_rows or CHUNK_ROWS, workers or WORKERS

    def compute(bounds: tuple[int, int], booster: xgb.Booster) -> _Chunk:
        rows = df.iloc[bounds[0] : bounds[1]]
        matrix = bundle.prepare_matrix(rows)
        contrib = compute_contributions(bundle, rows, matrix, booster)
        margin = np.asarray(booster.predict(matrix, output_margin=True))
        folded = fold_contributions(contrib, list(bundle.features), rows.index)
        return _Chunk(rows, contrib, margin, folded, driver_cells(folded, cfg))

    chunks = chunk_bounds(len(df), size)
    parts: list[ExplainedRows] = []
    phrases: list[Phrases] = []  # the first chunk's, reused by the later ones
    if len(chunks) == 1:
        if meanwhile is not None:
            meanwhile()
        part = _explain_chunk(catalog, cfg, phrases, compute(chunks[0], bundle.booster))
        if each is not None:
            each(part)
        return part
    # one-threaded copies of the booster, one per worker: the operating system shares the
    # cores among the threads
    boosters: queue.SimpleQueue[xgb.Booster] = queue.SimpleQueue()
    for _ in range(n_workers):
        booster = bundle.booster.copy()
        booster.set_param({"nthread": 1})
        boosters.put(booster)
    own = threading.local()

    def take_booster() -> None:
        own.booster = boosters.get()

    with ThreadPoolExecutor(
        n_workers, thread_name_prefix="treeshap", initializer=take_booster
    ) as pool:
        # every chunk is queued at once: a worker goes on to the next chunk as soon as it is
        # done with one, whether or not this thread has put the earlier ones into words
        pending = [pool.submit(lambda part: compute(part, own.booster), c) for c in chunks]
        try:
            if meanwhile is not None:
                meanwhile()
            for future in pending:
                parts.append(_explain_chunk(catalog, cfg, phrases, future.result()))
                if each is not None:
                    each(parts[-1])
        except BaseException:  # a failure is raised now, not after every queued chunk ran
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return _concat(parts)


def chunk_bounds(n_rows: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of :func:`explain_rows`: ``size`` rows, then the last at
    most ``2 * size`` rows in pieces of a half, a quarter, an eighth and the rest, so that
    little is left to put into words when the last contributions are in."""
    bounds: list[tuple[int, int]] = []
    start = 0
    while n_rows - start > 2 * size:
        bounds.append((start, start + size))
        start += size
    rest = n_rows - start
    if rest <= size:
        return [*bounds, (start, n_rows)]
    for share in (2, 4, 8):
        step = max(rest // share, 1)
        if start + step >= n_rows:
            break
        bounds.append((start, start + step))
        start += step
    return [*bounds, (start, n_rows)]


@dataclass(frozen=True)
class _Chunk:
    """What a worker computes for one chunk: everything but the words."""

    rows: pd.DataFrame
    contrib: Contributions
    margin: np.ndarray
    folded: pd.DataFrame
    cells: DriverCells


def _explain_chunk(
    catalog: Catalog, cfg: ScoreConfig, phrases: list[Phrases], chunk: _Chunk
) -> ExplainedRows:
    """The chunk's drivers in words, with the batch's shared phrases."""
    if not phrases:
        phrases.append(Phrases(chunk.cells.names, catalog))
    drivers = driver_columns(chunk.folded, chunk.rows, catalog, cfg, phrases[0], chunk.cells)
    return ExplainedRows(chunk.contrib, chunk.folded, drivers, chunk.margin)


def _concat(parts: list[ExplainedRows]) -> ExplainedRows:
    if len(parts) == 1:
        return parts[0]
    first = parts[0].contributions
    contributions = Contributions(
        columns=first.columns,
        values=np.concatenate([p.contributions.values for p in parts]),
        bias=np.concatenate([p.contributions.bias for p in parts]),
    )
    drivers = DriverColumns(  # the chunks' arrays as they are: no copy of every string
        pa.chunked_array([p.drivers.text for p in parts], pa.string()),
        pa.chunked_array([p.drivers.json for p in parts], pa.string()),
    )
    margin = np.concatenate([p.margin for p in parts])
    folded = pd.concat([p.folded for p in parts])
    return ExplainedRows(contributions, folded, drivers, margin)
