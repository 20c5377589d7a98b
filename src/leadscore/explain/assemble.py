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
        self.cache: list[dict[tuple[type, str], tuple[str, str]]] = [{} for _ in names]

    def get(self, j: int, value: object) -> tuple[str, str]:
        key = (type(value), repr(value))  # repr tells -0.0 from 0.0 and 1 from True
        hit = self.cache[j].get(key)
        if hit is None:
            hit = self.cache[j][key] = self._build(j, value)
        return hit

    def _build(self, j: int, value: object) -> tuple[str, str]:
        if isinstance(value, np.generic):
            value = value.item()
        label, unit = self.labels[j]
        text = driver_text(label, unit, value)
        # Driver.to_dict: a value that is not a plain number, bool or text is written as text
        if value is not None and not isinstance(value, bool | int | float | str):
            value = str(value)
        tail = f',"feature":{self.features[j]},"text":{json.dumps(text)},'
        return text, tail + f'"value":{json.dumps(value, default=str)}}}'


def _json_float(x: float) -> str:
    return repr(x) if math.isfinite(x) else json.dumps(x)


def driver_columns(
    folded: pd.DataFrame, df: pd.DataFrame, catalog: Catalog, cfg: ScoreConfig
) -> DriverColumns:
    """Every row's drivers text and JSON (as ``drivers_text`` / ``drivers_json`` are stored).

    Invariant: one entry per row of ``folded``, in order; ``df`` holds the same rows.
    """
    names = [str(c) for c in folded.columns]
    contrib = folded.to_numpy(dtype=float)
    values = df.reindex(columns=folded.columns).to_numpy(dtype=object)
    up, down = rank_drivers(contrib, names, cfg.drivers_positive, cfg.drivers_negative)
    phrases = _Phrases(names, catalog)
    texts: list[str] = []
    jsons: list[str] = []
    for row, vals, ups, downs in zip(
        contrib.tolist(), values, up.tolist(), down.tolist(), strict=True
    ):
        items: tuple[list[str], list[str]] = ([], [])
        entries: tuple[list[str], list[str]] = ([], [])
        for side, cols in (
            (0, [j for j in ups if row[j] > 0]),
            (1, [j for j in downs if row[j] < 0]),
        ):
            for j in cols:
                c = row[j]
                text, tail = phrases.get(j, vals[j])
                items[side].append(f"{text} ({c:+.2f})")
                entries[side].append('{"contribution":' + _json_float(c) + tail)
        texts.append(fit_items(items[0], items[1], cfg.max_drivers_chars))
        jsons.append(
            '{"negative":[' + ",".join(entries[1]) + '],"positive":[' + ",".join(entries[0]) + "]}"
        )
    return DriverColumns(texts, jsons)
