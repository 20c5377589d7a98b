"""Explain stage, many rows at once: every row's drivers as the Salesforce text and the JSON.

Reads folded contributions (one column per source feature) and the feature frame; writes
nothing. NumPy ranks the candidates of all rows in two sorts; each distinct (feature, value)
phrase is built once by :func:`~leadscore.explain.drivers.driver_text`; the per-row work is
string joins. Row by row the output equals ``join_drivers(pick_drivers(...))`` and
``drivers_json`` (a test holds the two paths together).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_text  # what json.dumps uses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leadscore.explain.drivers import display_of, driver_text, fit_items

if TYPE_CHECKING:
    from leadscore.catalog import Catalog
    from leadscore.config import ScoreConfig


@dataclass(frozen=True)
class DriverColumns:
    """Per row, in row order: the joined text that fits the field and the structured JSON."""

    texts: list[str]
    jsons: list[str]


def rank_drivers(
    contrib: np.ndarray, names: Sequence[str], n_positive: int, n_negative: int
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of each row's strongest ``n_positive`` and ``n_negative`` candidates.

    Strongest first, ties broken by feature name (a stable sort over columns already in name
    order), exactly as :func:`~leadscore.explain.drivers.pick_drivers` orders them. A
    candidate is a driver only when its contribution has the right sign.
    """
    by_name = np.argsort(np.asarray(names, dtype=str), kind="stable")
    ordered = contrib[:, by_name]
    up = by_name[np.argsort(-ordered, axis=1, kind="stable")[:, :n_positive]]
    down = by_name[np.argsort(ordered, axis=1, kind="stable")[:, :n_negative]]
    return up, down


class _Phrases:
    """Each column's phrases, built once per distinct value: (text, JSON tail of the entry)."""

    def __init__(self, names: Sequence[str], catalog: Catalog) -> None:
        self.labels = [display_of(catalog, name) for name in names]
        self.features = [json.dumps(name) for name in names]

    def build(self, j: int, value: object) -> tuple[str, str]:
        """Words for column ``j`` at ``value`` and the rest of its JSON entry after the
        contribution (keys sorted: contribution, feature, text, value)."""
        if isinstance(value, np.generic):
            value = value.item()
        label, unit = self.labels[j]
        text = driver_text(label, unit, value)
        # Driver.to_dict: a value that is not a plain number, bool or text is written as text
        if value is not None and not isinstance(value, bool | int | float | str):
            value = str(value)
        tail = f',"feature":{self.features[j]},"text":{_json_text(text)},'
        return text, tail + f'"value":{_json_scalar(value)}}}'

    def column(
        self, j: int, cells: np.ndarray, floats: np.ndarray | None
    ) -> tuple[list[str], list[str]]:
        """Phrases of column ``j`` at ``cells`` (object values); ``floats`` holds the same
        values as float64 when the column is float, so distinct values are found by their
        bits (-0.0 and 0.0 stay apart, as their JSON differs)."""
        if floats is not None:
            _, first, inverse = np.unique(
                floats.view(np.int64), return_index=True, return_inverse=True
            )
            built = [self.build(j, cells[k]) for k in first.tolist()]
            return [built[k][0] for k in inverse.tolist()], [built[k][1] for k in inverse.tolist()]
        cache: dict[tuple[type, str], tuple[str, str]] = {}
        texts, tails = [], []
        for value in cells.tolist():
            key = (type(value), repr(value))  # repr tells 1 from True and 1 from 1.0
            hit = cache.get(key)
            if hit is None:
                hit = cache[key] = self.build(j, value)
            texts.append(hit[0])
            tails.append(hit[1])
        return texts, tails


def _json_float(x: float) -> str:
    """``json.dumps`` of a float (``repr``; NaN and infinities as ``json`` writes them)."""
    return float.__repr__(x) if math.isfinite(x) else json.dumps(x)


def _json_scalar(value: object) -> str:
    """``json.dumps(value, default=str)`` of a driver's value, the common types directly."""
    if isinstance(value, str):
        return _json_text(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, int):
        return int.__repr__(value)
    return json.dumps(value, default=str)


def driver_columns(
    folded: pd.DataFrame, df: pd.DataFrame, catalog: Catalog, cfg: ScoreConfig
) -> DriverColumns:
    """Every row's drivers text and JSON (as ``drivers_text`` / ``drivers_json`` are stored).

    Invariant: one entry per row of ``folded``, in order; ``df`` holds the same rows.
    """
    names = [str(c) for c in folded.columns]
    contrib = folded.to_numpy(dtype=float)
    n_pos, n_neg = cfg.drivers_positive, cfg.drivers_negative
    up, down = rank_drivers(contrib, names, n_pos, n_neg)
    # 1. the driver cells, row by row: a row's positives (strongest first), then its negatives
    candidates = np.concatenate([up, down], axis=1)
    chosen = np.take_along_axis(contrib, candidates, axis=1)
    keep = np.concatenate([chosen[:, :n_pos] > 0, chosen[:, n_pos:] < 0], axis=1)
    rows, slots = np.nonzero(keep)
    cols = candidates[rows, slots]
    # 2. words and JSON of each cell, built once per distinct value of a column
    texts, tails = _cell_phrases(_Phrases(names, catalog), folded, df, rows, cols)
    items, entries = [], []
    for text, tail, c in zip(texts, tails, contrib[rows, cols].tolist(), strict=True):
        items.append(f"{text} ({c:+.2f})")
        entries.append('{"contribution":' + _json_float(c) + tail)
    # 3. per row: the line that fits the field, and the JSON
    n_up = keep[:, :n_pos].sum(axis=1).tolist()
    n_down = keep[:, n_pos:].sum(axis=1).tolist()
    out_texts, out_jsons, at = [], [], 0
    for u, d in zip(n_up, n_down, strict=True):
        mid, end = at + u, at + u + d
        out_texts.append(fit_items(items[at:mid], items[mid:end], cfg.max_drivers_chars))
        out_jsons.append(
            '{"negative":[' + ",".join(entries[mid:end]) + '],"positive":['
            + ",".join(entries[at:mid]) + "]}"
        )  # fmt: skip
        at = end
    return DriverColumns(out_texts, out_jsons)


def _cell_phrases(
    phrases: _Phrases, folded: pd.DataFrame, df: pd.DataFrame, rows: np.ndarray, cols: np.ndarray
) -> tuple[list[str], list[str]]:
    """(text, JSON tail) of every cell ``(rows[k], cols[k])``, in that order."""
    values = df.reindex(columns=folded.columns).to_numpy(dtype=object)
    texts: list[str] = [""] * len(rows)
    tails: list[str] = [""] * len(rows)
    for j, name in enumerate(folded.columns):
        at = np.flatnonzero(cols == j)
        if not len(at):
            continue
        column = df[name] if name in df.columns else None
        floats = None
        if column is not None and column.dtype == np.float64:
            floats = np.ascontiguousarray(column.to_numpy()[rows[at]])
        col_texts, col_tails = phrases.column(j, values[rows[at], j], floats)
        for k, text, tail in zip(at.tolist(), col_texts, col_tails, strict=True):
            texts[k] = text
            tails[k] = tail
    return texts, tails
