"""Score stage, row checks: which leads' feature values can be scored, and why not (rule 5).

Reads a scoring-set frame, the bundle's feature types and the schema contract (through
``validate.contract_violations``, with the contract in the bundle's folder or the catalog's);
returns the frame with values typed for the model and one reason per bad row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype

if TYPE_CHECKING:
    from leadscore.catalog import Catalog
    from leadscore.score.protocol import ScoringModel
    from leadscore.validate.contract import SchemaContract

_BOOL_VALUES = {0, 1}  # True == 1 and False == 0


class ScoreRejected(ValueError):
    """A lead that cannot be scored; ``reason`` is a short code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_rows(
    df: pd.DataFrame, bundle: ScoringModel, catalog: Catalog
) -> tuple[pd.DataFrame, pd.Series]:
    """Type the bundle's features and find rows that cannot be scored.

    Returns:
        ``(checked, reasons)``: ``checked`` has numeric features as float and bool features as
        0/1 float (other columns untouched); ``reasons`` is ``None`` for a good row, else
        ``"<code>: <detail>"`` with code ``invalid_value`` (not a number, not a bool, not
        finite) or ``contract_violation`` (out of range, null where not nullable).
        Invariant: same index as ``df``.
    """
    types = bundle.feature_types
    checked = df.copy(deep=False)  # copy-on-write: typing a column never touches ``df``
    invalid: dict[int, list[str]] = {}  # row position -> its invalid values, in feature order
    for feature in bundle.features:
        if feature not in df.columns:
            raise KeyError(f"scoring frame lacks feature column {feature!r}")
        kind = types.get(feature, "numeric")
        if kind == "category":
            continue
        typed, bad = (_as_bool if kind == "bool" else _as_number)(df[feature], feature)
        checked[feature] = typed
        for i, message in bad.items():
            invalid.setdefault(i, []).append(message)
    out = contract_reasons(df, bundle, catalog).to_numpy(dtype=object).copy()
    breach = np.flatnonzero(pd.notna(out))
    out[breach] = [f"contract_violation: {r}" if r else None for r in out[breach]]
    for i, messages in invalid.items():
        out[i] = "invalid_value: " + "; ".join(messages)
    return checked, pd.Series(out, index=df.index, dtype=object)


def _as_number(s: pd.Series, name: str) -> tuple[pd.Series, dict[int, str]]:
    if is_numeric_dtype(s.dtype) and not is_bool_dtype(s.dtype):
        values = s.astype(float)
        bad_mask = np.asarray(~np.isfinite(values) & values.notna(), dtype=bool)
    else:
        values = pd.to_numeric(s.astype(object), errors="coerce").astype(float)
        bad_mask = np.asarray(
            (values.isna() & s.notna()) | (~np.isfinite(values) & values.notna()), dtype=bool
        )
    bad = {
        int(i): f"{name}={s.iloc[i]!r} is not a finite number" for i in np.flatnonzero(bad_mask)
    }
    return values.where(~bad_mask), bad


def _as_bool(s: pd.Series, name: str) -> tuple[pd.Series, dict[int, str]]:
    values = s.astype(object).to_numpy()
    out = np.full(len(s), np.nan)
    look: Iterable[int] = range(len(values))
    if infer_dtype(values, skipna=True) in ("boolean", "empty"):
        # every value is True/False or missing-like: only the missing-like need a closer look
        missing = pd.isna(values)
        out[~missing] = values[~missing].astype(bool)
        look = np.flatnonzero(missing).tolist()
    bad: dict[int, str] = {}
    for i in look:
        v = values[i]
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            continue
        if isinstance(v, str) or not _is_bool_like(v):
            bad[i] = f"{name}={v!r} is not true/false"
            continue
        out[i] = float(bool(v))
    return pd.Series(out, index=s.index), bad


def _is_bool_like(v: object) -> bool:
    try:
        return bool(v in _BOOL_VALUES)
    except TypeError:
        return False


def contract_reasons(df: pd.DataFrame, bundle: ScoringModel, catalog: Catalog) -> pd.Series:
    """Schema-contract breaches per row (None when clean), for the bundle's features only.

    The contract is the one the bundle was trained with (``contract.json`` in its folder),
    else the catalog's (dtypes, ranges, nullability); it is enforced by
    ``validate.contract_violations`` on the values as built (before typing).
    """
    from leadscore.validate.contract import contract_violations

    contract = bundle_contract(bundle, catalog)
    used = set(bundle.features)
    contract = contract.model_copy(
        update={"columns": tuple(c for c in contract.columns if c.name in used)}
    )
    raw = contract_violations(df, contract)
    return pd.Series([r if r else None for r in raw.tolist()], index=df.index, dtype=object)


def bundle_contract(bundle: ScoringModel, catalog: Catalog) -> SchemaContract:
    """The contract the model was trained with, else the one derived from the catalog."""
    from leadscore.validate.contract import SchemaContract

    path = bundle.contract_path
    if path is not None and path.is_file():
        return SchemaContract.load(path)
    return _catalog_contract(catalog)


_CATALOG_CONTRACTS: dict[str, SchemaContract] = {}


def _catalog_contract(catalog: Catalog) -> SchemaContract:
    """The catalog's contract (no data-derived ranges), built once per catalog version."""
    from leadscore.validate.contract import build_contract

    key = catalog.fingerprint
    if key not in _CATALOG_CONTRACTS:
        _CATALOG_CONTRACTS[key] = build_contract(pd.DataFrame(), catalog)
    return _CATALOG_CONTRACTS[key]
