"""Generic source, validate: find fields recorded after the outcome in a team's own table.

Reads the training rows (event time, label, outcome time, every field); returns per field the
evidence and a verdict. A field is judged by how its strength holds *within* time blocks versus
pooled across them, and by how it behaves around the event and outcome times:

* A field whose univariate strength (cross-fitted AUC) holds inside every time block as well as
  pooled separates converters from the rest among leads scored in the same weeks, which no
  field known before the event should do alone: flagged (``within_blocks``).
* A field that predicts well only pooled over time, and whose strength collapses within blocks,
  tracks the calendar (a macro index, a monthly campaign code): reported as a calendar proxy,
  not flagged.
* A date field dated after the event time (or at/after the outcome) was recorded later:
  flagged (``after_event``).
* A field whose presence (filled in vs blank) separates outcomes within blocks is filled in
  by the sales process: flagged (``presence``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.generic.mapping import FieldSpec, LeakageSettings

_PRIOR_ROWS = 10.0
_MIN_CLASS = 5
_N_BINS = 10
_CROSS_FOLDS = 5


@dataclass(frozen=True)
class FieldEvidence:
    """The figures behind one field's verdict (AUCs are cross-fitted, 0.5 = no signal)."""

    field: str
    feature: str
    kind: str
    missing_share: float
    auc_pooled: float | None
    auc_within: float | None
    block_aucs: list[float | None]
    share_blocks_strong: float | None
    time_auc: float | None
    presence_auc_within: float | None
    after_event_share: float | None
    at_or_after_outcome_share: float | None
    calendar_proxy: bool
    pooled_rule_would_flag: bool
    reasons: list[str] = dc_field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """Whether the field is judged to be recorded after the outcome."""
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready evidence with the verdict."""
        return {**asdict(self), "flagged": self.flagged}


@dataclass(frozen=True)
class LeakageReport:
    """Evidence for every field, the blocks used, and whether time could be used at all."""

    fields: list[FieldEvidence]
    has_time: bool
    block_edges: list[str]
    n_rows: int
    n_positives: int

    def flagged(self) -> list[str]:
        """Names of the flagged fields."""
        return [f.field for f in self.fields if f.flagged]

    def calendar_proxies(self) -> list[str]:
        """Names of the fields whose pooled strength comes from the calendar (not flagged)."""
        return [f.field for f in self.fields if f.calendar_proxy and not f.flagged]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "has_time": self.has_time,
            "block_edges": self.block_edges,
            "n_rows": self.n_rows,
            "n_positives": self.n_positives,
            "flagged": self.flagged(),
            "calendar_proxies": self.calendar_proxies(),
            "fields": [f.to_dict() for f in self.fields],
        }


def value_codes(values: pd.Series, kind: str) -> np.ndarray:
    """Integer codes of a field: quantile bins for numbers, levels otherwise; missing has its
    own code (so a field whose blanks carry the signal keeps it)."""
    if kind in ("numeric", "date"):
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        codes = np.full(len(x), -1, dtype=np.int64)
        ok = ~np.isnan(x)
        if ok.any():
            edges = np.unique(np.quantile(x[ok], np.linspace(0, 1, _N_BINS + 1)[1:-1]))
            codes[ok] = np.searchsorted(edges, x[ok], side="right")
        return codes
    return np.asarray(
        pd.factorize(values.astype(object), use_na_sentinel=False)[0], dtype=np.int64
    )


def crossfit_auc(codes: np.ndarray, y: np.ndarray, seed: int) -> float | None:
    """AUC of an out-of-fold target encoding of ``codes`` (None without both classes).

    Each row's score is the smoothed positive rate of its code among the other folds' rows, so
    a field with many levels (an id-like code) does not look strong by memorising.
    """
    y = np.asarray(y, dtype=float)
    if len(y) < 2 * _CROSS_FOLDS or min(y.sum(), len(y) - y.sum()) < _MIN_CLASS:
        return None
    fold = np.random.default_rng(seed).permutation(len(y)) % _CROSS_FOLDS
    score = np.zeros(len(y))
    for k in range(_CROSS_FOLDS):
        score[fold == k] = _encode(codes, y, fold != k)[fold == k]
    return float(roc_auc_score(y, score))


def time_blocks(ts: pd.Series, n_blocks: int) -> tuple[np.ndarray, list[str]]:
    """Equal-count blocks of event time: block index per row and the block start times."""
    order = np.argsort(ts.to_numpy(), kind="stable")
    block = np.empty(len(ts), dtype=np.int64)
    block[order] = np.arange(len(ts)) * n_blocks // max(len(ts), 1)
    starts = [ts.iloc[order[np.searchsorted(block[order], b)]] for b in range(n_blocks)]
    return block, [pd.Timestamp(s).isoformat() for s in starts]


def _encode(codes: np.ndarray, y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Smoothed positive rate of each row's code, learned on the ``train`` rows only."""
    shifted = codes - codes.min()
    n_codes = int(shifted.max()) + 1
    prior = y[train].mean()
    n = np.bincount(shifted[train], minlength=n_codes)
    pos = np.bincount(shifted[train], weights=y[train], minlength=n_codes)
    return np.asarray(((pos + _PRIOR_ROWS * prior) / (n + _PRIOR_ROWS))[shifted])


def _within(
    codes: np.ndarray, y: np.ndarray, block: np.ndarray
) -> tuple[float | None, list[float | None]]:
    """Strength inside each time block of an encoding learned on the *other* blocks.

    Returns the row-weighted mean of the per-block AUCs and the AUC of each block. A code seen
    only in one block (a monthly campaign code, a macro index value) gets the prior there, so a
    field that merely tracks the calendar scores about 0.5; a field whose meaning holds across
    time keeps its strength.
    """
    y = np.asarray(y, dtype=float)
    aucs: list[float | None] = []
    weights, kept = [], []
    for b in range(int(block.max()) + 1):
        rows = block == b
        yb = y[rows]
        if min(yb.sum(), len(yb) - yb.sum()) < _MIN_CLASS:
            aucs.append(None)
            continue
        auc = float(roc_auc_score(yb, _encode(codes, y, ~rows)[rows]))
        aucs.append(round(auc, 4))
        weights.append(rows.sum())
        kept.append(auc)
    mean = float(np.average(kept, weights=weights)) if kept else None
    return mean, aucs


def _date_timing(
    df: pd.DataFrame, spec: FieldSpec, has_time: bool
) -> tuple[float | None, float | None]:
    """Share of a date field's values after the event time, and at/after the outcome time
    among the positives whose outcome time is known."""
    col = f"{spec.name}__ts"
    if spec.kind != "date" or not has_time or col not in df:
        return None, None
    ts = pd.to_datetime(df[col], utc=True)
    present = ts.notna()
    after = float((ts[present] > df.loc[present, "contact_ts"]).mean()) if present.any() else 0.0
    pos = present & (df["target"] == 1) & df["outcome_ts"].notna()
    at_outcome = float((ts[pos] >= df.loc[pos, "outcome_ts"]).mean()) if pos.any() else None
    return after, at_outcome


def feature_column(spec: FieldSpec) -> str:
    """The training-table column of a field (dates become ages)."""
    return f"{spec.name}_age_days" if spec.kind == "date" else spec.name


def field_evidence(
    df: pd.DataFrame,
    spec: FieldSpec,
    block: np.ndarray | None,
    cfg: LeakageSettings,
    seed: int,
) -> FieldEvidence:
    """All the evidence about one field and its verdict."""
    column = feature_column(spec)
    values = df[column]
    y = df["target"].to_numpy(int)
    missing = values.isna().to_numpy()
    codes = value_codes(values, spec.kind)
    pooled = crossfit_auc(codes, y, seed)
    has_time = block is not None
    if block is not None:
        within, blocks = _within(codes, y, block)
        later = (block >= (int(block.max()) + 1) / 2).astype(int)
        time_auc = crossfit_auc(codes, later, seed)
        presence, _ = _within(missing.astype(np.int64), y, block)
    else:
        within, blocks, time_auc = pooled, [], None
        presence = crossfit_auc(missing.astype(np.int64), y, seed)
    if not 0.02 <= missing.mean() <= 0.98:
        presence = None
    after, at_outcome = _date_timing(df, spec, has_time)
    strong = [a for a in blocks if a is not None]
    share = (sum(a >= cfg.block_auc_floor for a in strong) / len(strong)) if strong else None
    reasons = _reasons(within, share, presence, after, at_outcome, cfg, has_time)
    calendar = (
        has_time
        and pooled is not None
        and within is not None
        and pooled >= 0.6
        and (within - 0.5) <= (1 - cfg.calendar_drop) * (pooled - 0.5)
    )
    return FieldEvidence(
        field=spec.name,
        feature=column,
        kind=spec.kind,
        missing_share=round(float(missing.mean()), 4),
        auc_pooled=_round(pooled),
        auc_within=_round(within),
        block_aucs=blocks,
        share_blocks_strong=_round(share),
        time_auc=_round(time_auc),
        presence_auc_within=_round(presence),
        after_event_share=_round(after),
        at_or_after_outcome_share=_round(at_outcome),
        calendar_proxy=bool(calendar),
        pooled_rule_would_flag=bool(pooled is not None and pooled >= cfg.within_auc_flag),
        reasons=reasons,
    )


def _reasons(
    within: float | None,
    share: float | None,
    presence: float | None,
    after: float | None,
    at_outcome: float | None,
    cfg: LeakageSettings,
    has_time: bool,
) -> list[str]:
    reasons = []
    if after is not None and after >= cfg.after_event_share_flag:
        text = f"{after:.0%} of its dates are after the event time"
        if at_outcome is not None:
            text += f" ({at_outcome:.0%} of converters' dates at or after the outcome)"
        reasons.append("after_event: " + text)
    holds = share is None or share >= cfg.block_share
    if within is not None and within >= cfg.within_auc_flag and holds:
        where = "within time blocks" if has_time else "pooled (no time: blocks impossible)"
        reasons.append(f"within_blocks: AUC {within:.3f} {where} >= {cfg.within_auc_flag}")
    if presence is not None and presence >= cfg.presence_auc_flag:
        reasons.append(f"presence: filled-in vs blank separates outcomes, AUC {presence:.3f}")
    return reasons


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def detect_leakage(
    df: pd.DataFrame,
    specs: list[FieldSpec],
    cfg: LeakageSettings,
    has_time: bool,
    seed: int,
) -> LeakageReport:
    """Evidence and verdict for every field of the training rows.

    Args:
        df: training rows (``contact_ts``, ``target``, ``outcome_ts``, the feature columns and
            ``<field>__ts`` for date fields).
        has_time: False when the table has no usable time column: the within-block test is
            impossible and pooled strength is judged instead (the report says so).
    """
    block: np.ndarray | None = None
    edges: list[str] = []
    if has_time:
        block, edges = time_blocks(pd.to_datetime(df["contact_ts"], utc=True), cfg.n_blocks)
    evidence = [field_evidence(df, s, block, cfg, seed + i) for i, s in enumerate(specs)]
    return LeakageReport(
        fields=evidence,
        has_time=has_time,
        block_edges=edges,
        n_rows=len(df),
        n_positives=int(df["target"].sum()),
    )
