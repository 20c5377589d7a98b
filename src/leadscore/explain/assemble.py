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
    _near_half,
    _priority,
    display_of,
    driver_text,
    format_numbers,
)

if TYPE_CHECKING:
    from leadscore.catalog import Catalog
    from leadscore.config import ScoreConfig


@dataclass(frozen=True)
class DriverColumns:
    """Per row, in row order: the joined text that fits the field and the structured JSON,
    as Arrow string arrays, whole or in chunks (they go to pandas or Parquet without becoming
    Python objects)."""

    text: pa.Array | pa.ChunkedArray
    json: pa.Array | pa.ChunkedArray

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
    ascending = np.argsort(ordered, axis=1, kind="stable")
    # the strongest positives are the end of the same order, reversed, but there ties come
    # in reverse name order: rows with equal values among their top n_positive + 1 (where a
    # tie could change the choice or its order) are sorted again, descending
    top = ascending[:, ::-1][:, : n_positive + 1]
    values = np.take_along_axis(ordered, top, axis=1)
    tied = np.flatnonzero((values[:, :-1] == values[:, 1:]).any(axis=1))
    top = np.ascontiguousarray(top[:, :n_positive])
    if len(tied):
        top[tied] = np.argsort(-ordered[tied], axis=1, kind="stable")[:, :n_positive]
    return by_name[top], by_name[ascending[:, :n_negative]]


class Phrases:
    """Each column's phrases, built once per distinct value: the text and the rest of the JSON
    entry after the contribution. One instance serves every chunk of a batch with the same
    columns, so a value met again in a later chunk is not phrased again."""

    def __init__(self, names: Sequence[str], catalog: Catalog) -> None:
        self.names = list(names)
        self.labels = [display_of(catalog, name) for name in names]
        self.books = [_Book() for _ in names]
        # the store: every phrase made so far, texts and JSON tails, in the order made
        self._texts: list[pa.Array] = [pa.array([], pa.string())]
        self._tails: list[pa.Array] = [pa.array([], pa.string())]
        self._size = 0
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

    def plain_floats(self, j: int, values: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """:meth:`build` of floats of a column whose ``plain`` flag is set, as two Arrow
        arrays: the same words (``driver_text`` -> ``format_value`` for a float, "unknown"
        for NaN) rendered for the whole column at once, and the JSON around them."""
        label, unit = self.labels[j]
        shown = format_numbers(values, unit)
        missing = np.isnan(values)
        if missing.any():
            shown = pc.if_else(pa.array(missing), pa.scalar("unknown"), shown)
        prefix = f"{label}: "
        # JSON escapes character by character, so the text's JSON is the prefix's, escaped
        # once, then each number's (a number in words needs no escape unless its unit does)
        escaped = shown
        if pc.any(pc.match_substring_regex(shown, _ESCAPED)).as_py():
            escaped = pa.array([_json_text(x)[1:-1] for x in shown.to_pylist()], pa.string())
        tails = pc.binary_join_element_wise(
            f',"feature":{self.features[j]},"text":{_json_text(prefix)[:-1]}',
            escaped,
            '","value":',
            _json_numbers(values, finite_only=True),
            "}",
            "",
        )
        return pc.binary_join_element_wise(prefix, shown, ""), tails

    def column(self, j: int, cells: np.ndarray, floats: np.ndarray | None) -> np.ndarray:
        """Where the phrases of column ``j`` at ``cells`` (object values) are in the store,
        made where new; ``floats`` holds the same values as float64 when the column is float,
        so distinct values are found by their bits (-0.0 and 0.0 stay apart, as their JSON
        differs)."""
        book = self.books[j]
        if floats is not None:
            bits, first, inverse = np.unique(
                floats.view(np.int64), return_index=True, return_inverse=True
            )
            new = ~book.has(bits)
            if new.any():
                if self.plain[j]:
                    made = self.plain_floats(j, floats[first[new]])
                else:
                    made = _arrays([self.build(j, cells[k]) for k in first[new]])
                book.add(bits[new], self._store(*made))
            return book.find(bits)[inverse.ravel()]
        # distinct values by pandas' hashing when that tells apart exactly what ``repr`` does:
        # values of one type among bool, int and str (equal ones of mixed types, 1 and True
        # or 1 and 1.0, would fall together); the missing ones, of any type, one by one
        codes, uniques = pd.factorize(cells, use_na_sentinel=True)
        present = codes >= 0
        kinds = set(map(type, cells[present].tolist()))
        if len(kinds) > 1 or not kinds <= {bool, int, str}:
            codes, uniques, present = np.full(len(cells), -1), cells[:0], present & False
        at = np.asarray([self._position(j, value) for value in uniques.tolist()], np.int64)
        positions = at[np.maximum(codes, 0)] if len(at) else np.zeros(len(cells), np.int64)
        for k in np.flatnonzero(~present).tolist():
            positions[k] = self._position(j, cells[k])
        return positions

    def take(self, positions: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """The texts and JSON tails at ``positions`` of the store."""
        if len(self._texts) > 1:  # the phrases made since the last call join the rest
            self._texts = [pa.concat_arrays(self._texts)]
            self._tails = [pa.concat_arrays(self._tails)]
        where = pa.array(positions, pa.int64())
        return self._texts[0].take(where), self._tails[0].take(where)

    def _store(self, texts: pa.Array, tails: pa.Array) -> np.ndarray:
        """Positions of new phrases, added to the store."""
        start, self._size = self._size, self._size + len(texts)
        self._texts.append(texts)
        self._tails.append(tails)
        return np.arange(start, self._size, dtype=np.int64)

    def _position(self, j: int, value: object) -> int:
        """Where the phrases of ``value`` (not a float found by its bits) are, made if new;
        by type and ``repr`` (``repr`` tells 1 from True and 1.0)."""
        key = (type(value), repr(value))
        at = self.books[j].by_repr.get(key)
        if at is None:
            at = self.books[j].by_repr[key] = int(self._store(*_arrays([self.build(j, value)]))[0])
        return at


#: Characters JSON writes escaped (anything but printable ASCII, a quote or a backslash).
_ESCAPED = r"[^\x20\x21\x23-\x5b\x5d-\x7e]"


class _Book:
    """Where one column's phrases are in the store: by the bits of a float (sorted, for
    ``searchsorted``) or by type and ``repr`` of another value."""

    def __init__(self) -> None:
        self.bits = np.empty(0, np.int64)  # sorted
        self.at = np.empty(0, np.int64)  # position of each of ``bits``
        self.by_repr: dict[tuple[type, str], int] = {}

    def has(self, bits: np.ndarray) -> np.ndarray:
        """Whether each of ``bits`` has its phrases."""
        if not len(self.bits):
            return np.zeros(len(bits), dtype=bool)
        where = np.minimum(np.searchsorted(self.bits, bits), len(self.bits) - 1)
        return np.asarray(self.bits[where] == bits)

    def find(self, bits: np.ndarray) -> np.ndarray:
        """Positions of the phrases of ``bits`` (all known)."""
        return np.asarray(self.at[np.searchsorted(self.bits, bits)])

    def add(self, bits: np.ndarray, at: np.ndarray) -> None:
        """Where the phrases of new floats with ``bits`` are."""
        bits = np.concatenate([self.bits, bits])
        at = np.concatenate([self.at, at])
        order = np.argsort(bits, kind="stable")
        self.bits, self.at = bits[order], at[order]


def _arrays(built: list[tuple[str, str]]) -> tuple[pa.Array, pa.Array]:
    return (
        pa.array([b[0] for b in built], pa.string()),
        pa.array([b[1] for b in built], pa.string()),
    )


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
    with np.errstate(over="ignore", invalid="ignore"):  # an infinity is left to Python
        mag = np.abs(x) * 100.0
    python = _near_half(mag)  # also where the product is not finite or not held exactly
    whole = np.rint(np.where(python, 0.0, mag)).astype(np.int64)
    out = pc.binary_join_element_wise(
        pa.array(np.where(np.signbit(x), "-", "+")),
        pa.array(whole // 100).cast(pa.string()),
        ".",
        pc.utf8_slice_codeunits(pa.array(whole % 100 + 100).cast(pa.string()), 1),
        "",
    )  # sign, units, ".", two digits
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

    Column by column; only values without phrases yet become Python objects (a column the
    frame lacks is all missing).
    """
    by_column = np.argsort(cols, kind="stable")
    bounds = np.searchsorted(cols[by_column], np.arange(len(folded.columns) + 1))
    positions = np.zeros(len(rows), dtype=np.int64)
    for j, name in enumerate(folded.columns):
        at = by_column[bounds[j] : bounds[j + 1]]
        if not len(at):
            continue
        picked = rows[at]
        column = df[name] if name in df.columns else None
        floats = None
        if column is not None and column.dtype == np.float64:
            floats = np.ascontiguousarray(column.to_numpy()[picked])
        if column is None:
            cells = np.full(len(picked), np.nan, dtype=object)
        elif floats is not None and phrases.plain[j]:
            cells = np.empty(0, dtype=object)  # plain floats are phrased from ``floats``
        else:
            cells = column.iloc[picked].to_numpy(dtype=object)
        positions[at] = phrases.column(j, cells, floats)
    return phrases.take(positions)
