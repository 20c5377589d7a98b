"""Score stage, row checks: which leads' feature values can be scored, and why not (rule 5).

Reads a scoring-set frame, the bundle's feature types and the schema contract (through
``validate.contract_violations`` when that module is installed, else the catalog's ranges and
nullability); returns the frame with values typed for the model and one reason per bad row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

_BOOL_VALUES = {True, False, 0, 1}


class ScoreRejected(ValueError):
    """A lead that cannot be scored; ``reason`` is a short code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_rows(df: pd.DataFrame, bundle: Any, catalog: Any) -> tuple[pd.DataFrame, pd.Series]:
    """Type the bundle's features and find rows that cannot be scored.

    Returns:
        ``(checked, reasons)``: ``checked`` has numeric features as float and bool features as
        0/1 float (other columns untouched); ``reasons`` is ``None`` for a good row, else
        ``"<code>: <detail>"`` with code ``invalid_value`` (not a number, not a bool, not
        finite) or ``contract_violation`` (out of range, null where not nullable).
        Invariant: same index as ``df``.
    """
    types: Mapping[str, str] = getattr(bundle, "feature_types", {}) or {}
    checked = df.copy()
    invalid: list[list[str | None]] = []
    for feature in bundle.features:
        if feature not in df.columns:
            raise KeyError(f"scoring frame lacks feature column {feature!r}")
        kind = types.get(feature, "numeric")
        if kind == "category":
            continue
        typed, bad = (_as_bool if kind == "bool" else _as_number)(df[feature], feature)
        checked[feature] = typed
        invalid.append(bad)
    contract = contract_reasons(checked, bundle, catalog)
    out: list[str | None] = []
    for i, breach in enumerate(contract.tolist()):
        bad_values = [str(bad[i]) for bad in invalid if bad[i] is not None]
        if bad_values:
            out.append("invalid_value: " + "; ".join(bad_values))
        elif isinstance(breach, str) and breach:
            out.append(f"contract_violation: {breach}")
        else:
            out.append(None)
    return checked, pd.Series(out, index=df.index, dtype=object)


def _as_number(s: pd.Series, name: str) -> tuple[pd.Series, list[str | None]]:
    if is_numeric_dtype(s.dtype) and not is_bool_dtype(s.dtype):
        values = s.astype(float)
        bad_mask = ~np.isfinite(values) & values.notna()
    else:
        values = pd.to_numeric(s.astype(object), errors="coerce").astype(float)
        bad_mask = (values.isna() & s.notna()) | (~np.isfinite(values) & values.notna())
    bad: list[str | None] = [None] * len(s)
    for i in np.flatnonzero(bad_mask.to_numpy()):
        bad[i] = f"{name}={s.iloc[i]!r} is not a finite number"
    return values.where(~bad_mask), bad


def _as_bool(s: pd.Series, name: str) -> tuple[pd.Series, list[str | None]]:
    bad: list[str | None] = [None] * len(s)
    out = np.full(len(s), np.nan)
    for i, v in enumerate(s.astype(object).tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            continue
        if isinstance(v, str) or not _is_bool_like(v):
            bad[i] = f"{name}={v!r} is not true/false"
            continue
        out[i] = float(bool(v))
    return pd.Series(out, index=s.index), bad


def _is_bool_like(v: Any) -> bool:
    try:
        return bool(v in _BOOL_VALUES)
    except TypeError:
        return False


def contract_reasons(df: pd.DataFrame, bundle: Any, catalog: Any) -> pd.Series:
    """Schema-contract breaches per row (None when clean).

    Uses ``validate.contract_violations(df, contract)`` with the contract the bundle was trained
    with when both exist; otherwise checks the catalog's ``range`` and ``nullable`` of each
    bundle feature.
    """
    contract = bundle_contract(bundle)
    try:
        from leadscore.validate import contract_violations  # type: ignore[attr-defined]
    except ImportError:
        contract_violations = None
    if contract is not None and contract_violations is not None:
        return _normalise(contract_violations(df, contract), df.index)
    return _catalog_reasons(df, list(bundle.features), catalog)


def bundle_contract(bundle: Any) -> Any:
    """The schema contract a bundle carries (attribute, or ``contract.json`` in its folder)."""
    contract = getattr(bundle, "contract", None)
    if contract is not None:
        return contract
    path = getattr(bundle, "path", None)
    if path is not None and (Path(path) / "contract.json").is_file():
        return json.loads((Path(path) / "contract.json").read_text())
    return None


def _normalise(raw: Any, index: pd.Index) -> pd.Series:
    """Whatever per-row form the validator returns -> one text (or None) per row."""
    if isinstance(raw, pd.DataFrame):  # e.g. columns lead index + reason
        col = next((c for c in raw.columns if "reason" in str(c)), raw.columns[-1])
        grouped = raw.groupby(level=0)[col].apply(lambda s: "; ".join(map(str, s)))
        return grouped.reindex(index).astype(object).where(lambda s: s.notna(), None)
    values = list(raw.tolist() if isinstance(raw, pd.Series) else raw)
    out = []
    for v in values:
        if isinstance(v, list | tuple):
            v = "; ".join(map(str, v)) if v else None
        out.append(None if v is None or v == "" or (isinstance(v, float) and np.isnan(v)) else v)
    return pd.Series(out, index=index, dtype=object)


def _catalog_reasons(df: pd.DataFrame, features: list[str], catalog: Any) -> pd.Series:
    problems: list[list[str]] = [[] for _ in range(len(df))]
    lookup = getattr(catalog, "feature", None)
    for name in features:
        try:
            spec = lookup(name) if lookup else None
        except (KeyError, LookupError):
            spec = None
        if spec is None:
            continue
        col = df[name]
        flags: list[tuple[np.ndarray, str]] = []
        if not getattr(spec, "nullable", True):
            flags.append((col.isna().to_numpy(), f"{name} is null but must not be"))
        low, high = getattr(spec, "range", None) or (None, None)
        if low is not None or high is not None:
            x = pd.to_numeric(col, errors="coerce")
            if low is not None:
                flags.append(((x < low).to_numpy(), f"{name} below {low:g}"))
            if high is not None:
                flags.append(((x > high).to_numpy(), f"{name} above {high:g}"))
        for mask, text in flags:
            for i in np.flatnonzero(mask):
                problems[i].append(f"{text} (got {col.iloc[i]!r})")
    return pd.Series([("; ".join(p) if p else None) for p in problems], index=df.index)
