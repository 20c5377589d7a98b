"""Schema contract: generated from the catalog and the training data,
saved as JSON, enforced on every later load.

``enforce_contract`` fails a whole table (build, train); ``contract_violations`` gives per-row
reasons so scoring can send bad rows to the rejects table and score the good ones (rule 5).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from leadscore.catalog import Catalog
from leadscore.gates import GateFailed, GateResult
from leadscore.io import write_json

DType = Literal["float", "int", "bool", "category"]
N_EXAMPLES = 5


class ColumnContract(BaseModel):
    """What one column must look like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dtype: DType
    nullable: bool
    valid_range: tuple[float | None, float | None] | None = None
    expected_range: tuple[float, float] | None = None
    is_mutable: bool
    kind: str


class SchemaContract(BaseModel):
    """The contract of a feature table: one entry per model feature, in catalog order.

    ``valid_range`` (from the catalog: what is physically possible) is enforced;
    ``expected_range`` (the 0.1 and 99.9 percentiles of the training data) is recorded for
    drift monitoring: by construction 0.2% of the training rows lie outside it, so it cannot
    be a hard bound.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    catalog_fingerprint: str
    n_rows: int
    columns: tuple[ColumnContract, ...]

    def save(self, path: Path) -> Path:
        return write_json(path, self.model_dump(mode="json"))

    @classmethod
    def load(cls, path: Path) -> SchemaContract:
        return cls.model_validate(json.loads(Path(path).read_text()))


class ContractViolation(GateFailed):
    """A table broke its contract; ``problems`` lists column, count and examples."""

    def __init__(self, problems: list[dict[str, Any]], report_path: str | Path | None) -> None:
        self.problems = problems
        lines = [
            f"  {p['column']}: {p['problem']} ({p['count']} rows; e.g. {p['examples']})"
            for p in problems
        ]
        super().__init__(
            "schema_contract",
            float(len(problems)),
            0.0,
            report_path,
            comparison="==",
            detail="contract violations:\n" + "\n".join(lines),
        )


def to_frame(data: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """A pandas frame (nullable dtypes kept as object-free numpy where possible)."""
    return data.to_pandas() if isinstance(data, pa.Table) else data


def build_contract(data: pd.DataFrame | pa.Table, catalog: Catalog) -> SchemaContract:
    """Contract of ``catalog.model_features()`` with percentile ranges taken from ``data``."""
    df = to_frame(data)
    columns = []
    for name in catalog.model_features():
        feature = catalog.feature(name)
        expected = None
        if feature.dtype in ("float", "int") and name in df:
            values = pd.to_numeric(df[name], errors="coerce").dropna().to_numpy(dtype=float)
            if values.size:
                lo, hi = np.percentile(values, [0.1, 99.9])
                expected = (float(lo), float(hi))
        columns.append(
            ColumnContract(
                name=name,
                dtype=feature.dtype,
                nullable=feature.nullable,
                valid_range=feature.range,
                expected_range=expected,
                is_mutable=feature.kind in ("mutable", "calculable"),
                kind=feature.kind,
            )
        )
    return SchemaContract(
        catalog_fingerprint=catalog.fingerprint, n_rows=len(df), columns=tuple(columns)
    )


def _bad_type_mask(series: pd.Series, dtype: str) -> pd.Series:
    """Rows whose value is not of ``dtype`` (NULLs are judged by nullability, not here)."""
    if dtype in ("float", "int"):
        numeric = pd.to_numeric(series, errors="coerce")
        bad = numeric.isna() & series.notna()
        if dtype == "int":
            bad |= numeric.notna() & (np.mod(numeric.fillna(0), 1) != 0)
        return bad
    inferred = pd.api.types.infer_dtype(series, skipna=True)  # C speed; "empty" if all NULL
    if inferred in ("empty", "boolean" if dtype == "bool" else "string"):
        return pd.Series(False, index=series.index)
    if dtype == "bool":
        return series.notna() & ~series.map(lambda v: isinstance(v, bool | np.bool_))
    return series.notna() & ~series.map(lambda v: isinstance(v, str))


def _range_mask(series: pd.Series, col: ColumnContract) -> pd.Series:
    if col.valid_range is None or col.dtype not in ("float", "int"):
        return pd.Series(False, index=series.index)
    numeric = pd.to_numeric(series, errors="coerce")
    lo, hi = col.valid_range
    bad = pd.Series(False, index=series.index)
    if lo is not None:
        bad |= numeric < lo
    if hi is not None:
        bad |= numeric > hi
    bad |= np.isinf(numeric.astype(float))
    return bad.fillna(False)


def _column_checks(df: pd.DataFrame, col: ColumnContract) -> list[tuple[str, pd.Series]]:
    """(problem, row mask) pairs for one column present in ``df``."""
    series = df[col.name]
    checks = [(f"not {col.dtype}", _bad_type_mask(series, col.dtype))]
    if not col.nullable:
        checks.append(("NULL in a non-nullable column", series.isna()))
    if col.valid_range is not None and col.dtype in ("float", "int"):
        checks.append((f"outside valid range {list(col.valid_range)}", _range_mask(series, col)))
    return checks


def contract_problems(data: pd.DataFrame | pa.Table, contract: SchemaContract) -> list[dict]:
    """Every column-level problem: missing column, wrong dtype, NULLs, out-of-range values."""
    df = to_frame(data)
    problems: list[dict[str, Any]] = []
    for col in contract.columns:
        if col.name not in df:
            problems.append(
                {"column": col.name, "problem": "missing column", "count": len(df), "examples": []}
            )
            continue
        for problem, mask in _column_checks(df, col):
            count = int(mask.sum())
            if count:
                examples = df.loc[mask, col.name].head(N_EXAMPLES).tolist()
                problems.append(
                    {"column": col.name, "problem": problem, "count": count, "examples": examples}
                )
    return problems


def enforce_contract(
    data: pd.DataFrame | pa.Table,
    contract: SchemaContract,
    report_path: str | Path | None = None,
) -> GateResult:
    """Fail hard on any contract problem.

    Raises:
        ContractViolation: names each column, the problem, the offending count and examples.
    """
    problems = contract_problems(data, contract)
    if problems:
        raise ContractViolation(problems, report_path)
    path = None if report_path is None else str(report_path)
    return GateResult("schema_contract", True, 0.0, 0.0, "==", path)


def contract_violations(data: pd.DataFrame | pa.Table, contract: SchemaContract) -> pd.Series:
    """Per-row reasons (``''`` for a good row), aligned with ``data``'s rows.

    The scoring stage writes rows with a reason to the rejects table and scores the rest.
    """
    df = to_frame(data)
    reasons: list[list[str]] = [[] for _ in range(len(df))]
    for col in contract.columns:
        if col.name not in df:
            for row in reasons:
                row.append(f"{col.name}: missing column")
            continue
        for problem, mask in _column_checks(df, col):
            values = df[col.name].to_numpy()
            for i in np.flatnonzero(mask.to_numpy(dtype=bool)):
                reasons[i].append(f"{col.name}: {problem} ({values[i]!r})")
    return pd.Series(["; ".join(r) for r in reasons], index=df.index, name="reject_reason")
