"""Same answer check for the build benchmark: two training frames compared cell by cell.

Reads the warehouse training table (with the pandas baseline's nullable dtypes); returns a
:class:`Comparison` (rows on one side only, differing cells per column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from benchmarks.pandas_pit import to_frame, when_true
from leadscore.warehouse import Warehouse, tables


@dataclass(frozen=True)
class Comparison:
    """Cell-by-cell agreement of two training frames keyed by ``lead_id``."""

    n_rows_left: int
    n_rows_right: int
    n_rows_only_left: int
    n_rows_only_right: int
    n_columns: int
    n_cells: int
    n_mismatched_cells: int
    mismatches_by_column: dict[str, int]

    @property
    def n_mismatches(self) -> int:
        """Rows on one side only plus differing cells (0 = the same answer)."""
        return self.n_rows_only_left + self.n_rows_only_right + self.n_mismatched_cells


def _values_equal(a: pd.Series, b: pd.Series, tol: float) -> np.ndarray:
    both_null = a.isna().to_numpy() & b.isna().to_numpy()
    if is_datetime64_any_dtype(a) or is_datetime64_any_dtype(b):
        return when_true(pd.Series(a.to_numpy() == b.to_numpy())) | both_null
    if is_numeric_dtype(a) and is_numeric_dtype(b):
        x = a.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        y = b.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            close = np.abs(x - y) <= tol * np.maximum(1.0, np.abs(y))
        return close | both_null
    same = a.astype(object).to_numpy() == b.astype(object).to_numpy()
    return np.asarray(same, dtype=bool) | both_null


def compare_frames(
    left: pd.DataFrame, right: pd.DataFrame, columns: list[str], tol: float = 1e-9
) -> Comparison:
    """Compare ``columns`` of two frames on their common ``lead_id`` rows.

    Numbers (and bools, as 0/1) agree within ``tol`` relative to max(1, |value|) or are both
    null; strings and timestamps must be equal or both null.
    """
    a, b = left.set_index("lead_id"), right.set_index("lead_id")
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    by_column: dict[str, int] = {}
    for col in columns:
        bad = int((~_values_equal(a[col], b[col], tol)).sum())
        if bad:
            by_column[col] = bad
    return Comparison(
        n_rows_left=len(left),
        n_rows_right=len(right),
        n_rows_only_left=len(left) - len(common),
        n_rows_only_right=len(right) - len(common),
        n_columns=len(columns),
        n_cells=len(common) * len(columns),
        n_mismatched_cells=sum(by_column.values()),
        mismatches_by_column=by_column,
    )


def read_warehouse_training_set(wh: Warehouse, table: str = tables.TRAINING_SET) -> pd.DataFrame:
    """The warehouse's training table, with the same nullable dtypes as the baseline."""
    return to_frame(wh.query(f'SELECT * FROM "{table}" ORDER BY contact_ts, lead_id'))
