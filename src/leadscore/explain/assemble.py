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
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.explain.drivers import (
    _ELLIPSIS,
    _priority,
    display_of,
    driver_text,
    number_formatter,
)

if TYPE_CHECKING:
    from leadscore.catalog import Catalog
    from leadscore.config import ScoreConfig


@dataclass(frozen=True)
class DriverColumns:
    """Per row, in row order: the joined text that fits the field and the structured JSON,
    as Arrow string arrays (they go to pandas or Parquet without becoming Python objects)."""

    text: pa.Array
    json: pa.Array

    @property
    def texts(self) -> list[str]:
        """The texts as Python strings."""
        return list(self.text.to_pylist())

    @property
    def jsons(self) -> list[str]:
        """The JSON documents as Python strings."""
        return list(self.json.to_pylist())


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


class Phrases:
    """Each column's phrases, built once per distinct value: (text, JSON tail of the entry).
    One instance serves every chunk of a batch with the same columns, so a value met again in
    a later chunk is not phrased again."""

    def __init__(self, names: Sequence[str], catalog: Catalog) -> None:
        self.names = list(names)
        self.labels = [display_of(catalog, name) for name in names]
        self.by_bits: list[dict[int, tuple[str, str]]] = [{} for _ in names]
        self.by_repr: list[dict[tuple[type, str], tuple[str, str]]] = [{} for _ in names]
        self.features = [json.dumps(name) for name in names]
        # driver_text says "<label>: <value in its unit>" for a number unless the label has a
        # {value} placeholder or the unit makes it a flag: then numbers take the fast path
        self.plain = [
            "{value}" not in label and (unit or "").lower() not in {"flag", "bool"}
            for label, unit in self.labels
        ]

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

    def plain_floats(self, j: int, values: np.ndarray) -> list[tuple[str, str]]:
        """:meth:`build` of plain floats of a column whose ``plain`` flag is set: the same
        words (``driver_text`` -> ``format_value`` for a float) without choosing the unit's
        rendering again for every value; the JSON around them is joined by Arrow."""
        label, unit = self.labels[j]
        render = number_formatter(unit)
        prefix = f"{label}: "
        shown = [render(x) if x == x else "unknown" for x in values.tolist()]  # NaN: missing
        texts = [prefix + x for x in shown]
        # JSON escapes character by character, so the text's JSON is the prefix's, escaped
        # once, then each number's (a number in words needs no escape unless its unit does)
        joined = "".join(shown)
        escaped = shown if _json_text(joined)[1:-1] == joined else [
            _json_text(x)[1:-1] for x in shown
        ]  # fmt: skip
        tails = pc.binary_join_element_wise(
            f',"feature":{self.features[j]},"text":{_json_text(prefix)[:-1]}',
            pa.array(escaped, pa.string()),
            '","value":',
            _json_numbers(values, finite_only=True),
            "}",
            "",
        )
        return list(zip(texts, tails.to_pylist(), strict=True))

    def column(
        self, j: int, cells: np.ndarray, floats: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Phrases of column ``j`` at ``cells`` (object values) as two object arrays;
        ``floats`` holds the same values as float64 when the column is float, so distinct
        values are found by their bits (-0.0 and 0.0 stay apart, as their JSON differs)."""
        if floats is not None:
            bits, first, inverse = np.unique(
                floats.view(np.int64), return_index=True, return_inverse=True
            )
            known, keys = self.by_bits[j], bits.tolist()
            new = [i for i, key in enumerate(keys) if key not in known]
            if new and self.plain[j]:
                built = self.plain_floats(j, floats[first[new]])
            else:
                built = [self.build(j, cells[first[i]]) for i in new]
            known.update(zip([keys[i] for i in new], built, strict=True))
            pairs = [known[key] for key in keys]
            texts, tails = _objects([b[0] for b in pairs]), _objects([b[1] for b in pairs])
            return texts[inverse.ravel()], tails[inverse.ravel()]
        cache = self.by_repr[j]
        words: list[str] = []
        rests: list[str] = []
        for value in cells.tolist():
            key = (type(value), repr(value))  # repr tells 1 from True and 1 from 1.0
            hit = cache.get(key)
            if hit is None:
                hit = cache[key] = self.build(j, value)
            words.append(hit[0])
            rests.append(hit[1])
        return _objects(words), _objects(rests)


def _objects(items: list[str]) -> np.ndarray:
    """A 1-d object array of ``items`` (``np.array`` would make a fixed-width string array)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _json_float(x: float) -> str:
    """``json.dumps`` of a float (``repr``; NaN and infinities as ``json`` writes them)."""
    return float.__repr__(x) if math.isfinite(x) else json.dumps(x)


def _json_floats(values: list[float]) -> list[str]:
    """``json.dumps`` of each float, in one call (no float's text contains ``", "``)."""
    return json.dumps(values)[1:-1].split(", ") if values else []


def _json_scalar(value: object) -> str:
    """``json.dumps(value, default=str)`` of a driver's value, the common types directly."""
    if isinstance(value, str):
        return _json_text(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float):
        return _json_float(value) if math.isfinite(value) else "null"  # NaN is not JSON
    if isinstance(value, int):
        return int.__repr__(value)
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class DriverCells:
    """The cells that become a batch's drivers, chosen by NumPy alone (no Python objects, so
    a worker thread can choose them while another thread holds the GIL): each chosen cell's
    row, slot (positives first, strongest first) and column, and its contribution written
    two ways."""

    names: list[str]
    n_rows: int
    keep: np.ndarray
    rows: np.ndarray
    slots: np.ndarray
    cols: np.ndarray
    signed: pa.Array  # "+0.42"
    numbers: pa.Array  # the contribution as JSON


def driver_cells(folded: pd.DataFrame, cfg: ScoreConfig) -> DriverCells:
    """Each row's driver cells: its strongest ``drivers_positive`` positive contributions,
    then its strongest ``drivers_negative`` negative ones."""
    names = [str(c) for c in folded.columns]
    contrib = folded.to_numpy(dtype=float)
    n_pos, n_neg = cfg.drivers_positive, cfg.drivers_negative
    up, down = rank_drivers(contrib, names, n_pos, n_neg)
    candidates = np.concatenate([up, down], axis=1)
    chosen = np.take_along_axis(contrib, candidates, axis=1)
    keep = np.concatenate([chosen[:, :n_pos] > 0, chosen[:, n_pos:] < 0], axis=1)
    rows, slots = np.nonzero(keep)
    cols = candidates[rows, slots]
    values = contrib[rows, cols]
    return DriverCells(names, len(contrib), keep, rows, slots, cols, _hundredths(values),
                       _json_numbers(values))  # fmt: skip


def driver_columns(
    folded: pd.DataFrame,
    df: pd.DataFrame,
    catalog: Catalog,
    cfg: ScoreConfig,
    phrases: Phrases | None = None,
    cells: DriverCells | None = None,
) -> DriverColumns:
    """Every row's drivers text and JSON (as ``drivers_text`` / ``drivers_json`` are stored).
    ``phrases``: the phrases of earlier chunks of the same batch, reused and added to;
    ``cells``: :func:`driver_cells` of ``folded``, when already chosen.

    Invariant: one entry per row of ``folded``, in order; ``df`` holds the same rows.
    """
    c = driver_cells(folded, cfg) if cells is None else cells
    if phrases is None or phrases.names != c.names:
        phrases = Phrases(c.names, catalog)
    # words and JSON of each cell, built once per distinct value of a column
    texts, tails = _cell_phrases(phrases, folded, df, c.rows, c.cols)
    items = pc.binary_join_element_wise(texts, " (", c.signed, ")", "")  # "<text> (+0.42)"
    entries = pc.binary_join_element_wise('{"contribution":', c.numbers, tails, "")
    # per row: the line that fits the field (which items fit: decided for all rows at once),
    # and the JSON; Arrow joins each row's cells (cells are in row order)
    n_pos = cfg.drivers_positive
    sizes = pc.utf8_length(items).to_numpy()
    fits = _fitting(c.keep, c.rows, c.slots, sizes, n_pos, cfg.max_drivers_chars)
    fits = fits[c.rows, c.slots]
    is_up = c.slots < n_pos
    jsons = pc.binary_join_element_wise(
        '{"negative":[', _join_rows(entries, c.rows, ~is_up, c.n_rows, ","), '],"positive":[',
        _join_rows(entries, c.rows, is_up, c.n_rows, ","), "]}", "",
    )  # fmt: skip
    lines = _lines(items, c.rows, is_up, fits, c.n_rows, cfg.max_drivers_chars)
    return DriverColumns(lines, jsons)


def _hundredths(values: np.ndarray) -> pa.Array:
    """``format(x, "+.2f")`` of every value, as an Arrow string array.

    NumPy rounds ``|x| * 100`` to a whole number. Python rounds the exact binary value, and
    the product carries a rounding error of half a unit in its last place, so where the
    product lies within a few units of a half (or is not a finite, exactly held number) the
    value is formatted by Python instead.
    """
    x = np.asarray(values, dtype=np.float64)
    mag = np.abs(x) * 100.0
    usable = np.isfinite(mag) & (mag < 2.0**52)
    mag = np.where(usable, mag, 0.0)
    near_half = np.abs(mag - np.floor(mag) - 0.5) <= 4 * np.spacing(mag)
    whole = np.rint(mag).astype(np.int64)
    out = pc.binary_join_element_wise(
        pa.array(np.where(np.signbit(x), "-", "+")),
        pa.array(whole // 100).cast(pa.string()),
        ".",
        pc.utf8_slice_codeunits(pa.array(whole % 100 + 100).cast(pa.string()), 1),
        "",
    )  # sign, units, ".", two digits
    python = ~usable | near_half
    if python.any():
        exact = [format(v, "+.2f") for v in x[python].tolist()]
        out = pc.replace_with_mask(out, pa.array(python), pa.array(exact, pa.string()))
    return out


def _json_numbers(values: np.ndarray, finite_only: bool = False) -> pa.Array:
    """``json.dumps`` of every float, as an Arrow string array (``finite_only``: NaN and the
    infinities as ``null``, as :func:`_json_scalar` writes a driver's value).

    Arrow's cast writes the same shortest round-trip digits as Python's ``repr``; the layout
    is the same for numbers that are not whole and lie in [1e-4, 1e6) (outside, Python uses an
    exponent where Arrow does not, or the other way round, and Arrow writes 2.0 as "2"). The
    rest, NaN and the infinities included, are written by ``json.dumps``.
    """
    x = np.asarray(values, dtype=np.float64)
    size = np.abs(x)
    arrow = np.isfinite(x) & (size >= 1e-4) & (size < 1e6) & (x != np.trunc(x))
    out = pc.cast(pa.array(x), pa.string())
    if not arrow.all():
        rest = _json_floats(x[~arrow].tolist())
        if finite_only:
            finite = np.isfinite(x[~arrow]).tolist()
            rest = [r if ok else "null" for r, ok in zip(rest, finite, strict=True)]
        out = pc.replace_with_mask(out, pa.array(~arrow), pa.array(rest, pa.string()))
    return out


def _join_rows(
    cells: pa.Array, rows: np.ndarray, take: np.ndarray, n_rows: int, sep: str
) -> pa.Array:
    """Per row of ``n_rows``: its ``cells`` where ``take`` holds, joined by ``sep`` ("" for a
    row with none). ``rows`` (ascending) is each cell's row."""
    counts = np.bincount(rows[take], minlength=n_rows)
    offsets = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), cells.filter(pa.array(take)))
    return pc.binary_join(lists, sep)


def _lines(
    items: pa.Array, rows: np.ndarray, up: np.ndarray, fits: np.ndarray, n_rows: int,
    max_chars: int,
) -> pa.Array:  # fmt: skip
    """Each row's line from the items that fit (as :func:`fit_items` renders it). A row where
    nothing fits (even its strongest driver alone is too long) is rendered by :func:`_line`."""
    has_up = np.bincount(rows[fits & up], minlength=n_rows) > 0
    has_down = np.bincount(rows[fits & ~up], minlength=n_rows) > 0
    ups = pc.binary_join_element_wise("Up: ", _join_rows(items, rows, fits & up, n_rows, "; "), "")
    downs = pc.binary_join_element_wise(
        "Down: ", _join_rows(items, rows, fits & ~up, n_rows, "; "), ""
    )
    empty = pa.scalar("", pa.string())
    ups = pc.if_else(pa.array(has_up), ups, empty)
    downs = pc.if_else(pa.array(has_down), downs, empty)
    lines = pc.if_else(
        pa.array(has_up & has_down),
        pc.binary_join_element_wise(ups, downs, " | "),
        pc.binary_join_element_wise(ups, downs, ""),
    )
    has_items = np.bincount(rows, minlength=n_rows) > 0
    odd = np.flatnonzero((has_items & ~has_up & ~has_down)
                         | (pc.utf8_length(lines).to_numpy() > max_chars))  # fmt: skip
    if not len(odd):
        return lines
    out = lines.to_numpy(zero_copy_only=False).astype(object)
    start = np.searchsorted(rows, odd)
    stop = np.searchsorted(rows, odd, side="right")
    for r, a, b in zip(odd.tolist(), start.tolist(), stop.tolist(), strict=True):
        cell = items.slice(a, b - a).to_pylist()
        is_up, ok = up[a:b].tolist(), fits[a:b].tolist()
        out[r] = _line(
            [c for c, u in zip(cell, is_up, strict=True) if u],
            [c for c, u in zip(cell, is_up, strict=True) if not u],
            [f for f, u in zip(ok, is_up, strict=True) if u],
            [f for f, u in zip(ok, is_up, strict=True) if not u],
            max_chars,
        )
    return pa.array(out, pa.string())


def _fitting(
    keep: np.ndarray,
    rows: np.ndarray,
    slots: np.ndarray,
    item_sizes: np.ndarray,
    n_pos: int,
    max_chars: int,
) -> np.ndarray:
    """Which driver slots of every row stay in its line: the greedy of
    :func:`~leadscore.explain.drivers.fit_items`, one priority step at a time over all rows.

    A row's own priority order is the full order with its absent slots left out, and a slot
    is kept when the line with it still fits, so stepping through the full order is the same.
    """
    sizes = np.zeros(keep.shape, dtype=np.int64)
    sizes[rows, slots] = item_sizes
    n = len(keep)
    count = {"+": np.zeros(n, np.int64), "-": np.zeros(n, np.int64)}
    chars = {"+": np.zeros(n, np.int64), "-": np.zeros(n, np.int64)}
    fits = np.zeros(keep.shape, dtype=bool)
    for side, i in _priority(n_pos, keep.shape[1] - n_pos):
        slot = i if side == "+" else n_pos + i
        trial_count = {**count, side: count[side] + 1}
        trial_chars = {**chars, side: chars[side] + sizes[:, slot]}
        ok = keep[:, slot] & (_lengths(trial_count, trial_chars) <= max_chars)
        count[side] = np.where(ok, trial_count[side], count[side])
        chars[side] = np.where(ok, trial_chars[side], chars[side])
        fits[:, slot] = ok
    return fits


def _lengths(count: dict[str, np.ndarray], chars: dict[str, np.ndarray]) -> np.ndarray:
    """Length of each row's line with ``count[side]`` items of ``chars[side]`` characters."""
    up = np.where(count["+"] > 0, 4 + chars["+"] + 2 * (count["+"] - 1), 0)  # "Up: ", "; "
    down = np.where(count["-"] > 0, 6 + chars["-"] + 2 * (count["-"] - 1), 0)  # "Down: "
    return up + down + np.where((count["+"] > 0) & (count["-"] > 0), 3, 0)  # " | "


def _line(
    ups: list[str], downs: list[str], up_fits: list[bool], down_fits: list[bool], max_chars: int
) -> str:
    """One row's line from the items that fit (as :func:`fit_items` renders it)."""
    kept_ups = [x for x, ok in zip(ups, up_fits, strict=True) if ok]
    kept_downs = [x for x, ok in zip(downs, down_fits, strict=True) if ok]
    if not kept_ups and not kept_downs:
        if not ups and not downs:
            return ""
        # even the strongest driver alone is too long: it is cut
        kept_ups, kept_downs = (ups[:1], []) if ups else ([], downs[:1])
    parts = []
    if kept_ups:
        parts.append("Up: " + "; ".join(kept_ups))
    if kept_downs:
        parts.append("Down: " + "; ".join(kept_downs))
    text = " | ".join(parts)
    return text if len(text) <= max_chars else text[: max_chars - len(_ELLIPSIS)] + _ELLIPSIS


def _cell_phrases(
    phrases: Phrases, folded: pd.DataFrame, df: pd.DataFrame, rows: np.ndarray, cols: np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """(text, JSON tail) of every cell ``(rows[k], cols[k])``, in that order, as Arrow strings.

    Only the chosen cells become Python objects (a column the frame lacks is all missing).
    """
    texts = _objects([""] * len(rows))
    tails = _objects([""] * len(rows))
    for j, name in enumerate(folded.columns):
        at = np.flatnonzero(cols == j)
        if not len(at):
            continue
        picked = rows[at]
        column = df[name] if name in df.columns else None
        floats = None
        if column is not None and column.dtype == np.float64:
            floats = np.ascontiguousarray(column.to_numpy()[picked])
        if column is None:
            cells = np.full(len(at), np.nan, dtype=object)
        elif floats is not None and phrases.plain[j]:
            cells = np.empty(0, dtype=object)  # plain floats are phrased from ``floats``
        else:
            cells = column.iloc[picked].to_numpy(dtype=object)
        texts[at], tails[at] = phrases.column(j, cells, floats)
    return pa.array(texts, pa.string()), pa.array(tails, pa.string())
