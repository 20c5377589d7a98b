"""The data checks of the validate stage (class balance, leakage and the data gates).

Each takes the training frame and returns a :class:`CheckReport`; none does I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from leadscore.catalog import Catalog
from leadscore.config import ValidateConfig
from leadscore.gates import GateResult
from leadscore.report.markdown import CheckReport, gate_lines, md_table

#: Columns of the training table that are keys, label or bookkeeping, never features.
META_COLUMNS = frozenset(
    {
        "lead_id",
        "RepCRD",
        "OwnerId",
        "contact_ts",
        "converted_ts",
        "days_to_conversion",
        "target",
        "reps_snapshot_quarter",
        "reps_available_at",
        "firms_snapshot_quarter",
        "firms_available_at",
        "pit_ts",
        "pit_status",
    }
)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _after(available: pd.Series, contact: pd.Series) -> pd.Series:
    return (available > contact).fillna(False).astype(bool)


def check_leakage(df: pd.DataFrame, join: str, n_total: int | None = None) -> CheckReport:
    """Temporal leakage: a joined snapshot that became available after contact."""
    total = int(n_total if n_total is not None else len(df))
    matched = int(df["reps_snapshot_quarter"].notna().sum())
    leak = _after(df["reps_available_at"], df["contact_ts"]) | _after(
        df["firms_available_at"], df["contact_ts"]
    )
    n_leak = int(leak.sum())
    figures = {
        "join": join,
        "total_records": total,
        "matched_records": matched,
        "leakage_records_overall": n_leak,
        "leakage_rate_percent_overall": round(100 * n_leak / total, 2) if total else 0.0,
        "leakage_records_matched": n_leak,
        "leakage_rate_percent_matched": round(100 * n_leak / matched, 2) if matched else 0.0,
        "examples": df.loc[leak, ["lead_id", "contact_ts", "reps_available_at"]]
        .head(5)
        .astype(str)
        .to_dict("records"),
    }
    gate = GateResult.check("temporal_leakage", n_leak, 0, "==")
    if join == "quarter" and n_leak:
        verdict = (
            f"The quarter join (`contact_quarter = snapshot_quarter`) leaks: "
            f"{n_leak} matched rows saw a snapshot that was not yet available at contact. "
            "This is why leadscore joins as-of on availability time (see docs/point-in-time.md)."
        )
    elif n_leak:
        verdict = f"{n_leak} rows saw a snapshot that was not yet available at contact: STOP."
    else:
        verdict = f"0 leaks ({join} join): every joined snapshot was available at contact."
    rows = [(k, v) for k, v in figures.items() if k != "examples"]
    md = f"{md_table(['metric', 'value'], rows)}\n\n{verdict}"
    return CheckReport("leakage", "Temporal leakage", figures, md, [gate])


def _rates(df: pd.DataFrame, by: pd.Series) -> list[dict]:
    grouped = df.groupby(by, dropna=False, observed=True)["target"].agg(["count", "sum", "mean"])
    return [
        {"segment": str(k), "n": int(r["count"]), "positives": int(r["sum"]), "rate": r["mean"]}
        for k, r in grouped.iterrows()
    ]


def check_class_distribution(
    df: pd.DataFrame, catalog: Catalog, cfg: ValidateConfig
) -> CheckReport:
    """Class distribution and the imbalance-ratio gate."""
    n, n_pos = len(df), int(df["target"].sum())
    n_converted = int(df["converted_ts"].notna().sum())
    ratio = (n - n_pos) / n_pos if n_pos else float("inf")
    day = df["contact_ts"].dt.day_of_week.map(lambda d: f"{d + 1} {DAY_NAMES[d]}")
    figures: dict[str, Any] = {
        "n_rows": n,
        "n_positives": n_pos,
        "conversion_rate_all_time": n_converted / n if n else 0.0,
        "conversion_rate_window": n_pos / n if n else 0.0,
        "n_late_conversions": n_converted - n_pos,
        "imbalance_ratio": ratio,
        **{f"by_{name}": _rates(df, df[name]) for name in catalog.segment_names()},
        "by_day_of_week": _rates(df, day),
    }
    if ratio < cfg.min_imbalance_ratio:
        gate = GateResult.check("imbalance_ratio", ratio, cfg.min_imbalance_ratio, ">=")
    else:
        gate = GateResult.check("imbalance_ratio", ratio, cfg.max_imbalance_ratio, "<=")
    head = [(k, v) for k, v in figures.items() if not k.startswith("by_")]
    parts = [md_table(["metric", "value"], head)]
    for key in [f"by_{name}" for name in catalog.segment_names()] + ["by_day_of_week"]:
        rows = [(r["segment"], r["n"], r["positives"], r["rate"]) for r in figures[key]]
        parts.append(
            f"### Conversion rate {key[3:].replace('_', ' ')}\n\n"
            + md_table(["segment", "n", "positives", "rate"], rows)
        )
    return CheckReport(
        "class_distribution", "Class distribution", figures, "\n\n".join(parts), [gate]
    )


def check_data_quality(
    df: pd.DataFrame, catalog: Catalog, cfg: ValidateConfig, crd_match_rate: float | None
) -> CheckReport:
    """CRD match rate, completeness of critical features, one row per lead."""
    critical = catalog.critical_features()
    completeness = {c: float(df[c].notna().mean()) if c in df else 0.0 for c in critical}
    worst = min(completeness.values(), default=1.0)
    low = [c for c, v in completeness.items() if v < cfg.min_completeness_critical]
    n_dup = int(df["lead_id"].duplicated().sum())
    gates = [
        GateResult.check(
            "completeness_critical",
            worst,
            cfg.min_completeness_critical,
            ">=",
            detail=f"below threshold: {low}" if low else "",
        ),
        GateResult.check("duplicate_lead_ids", n_dup, 0, "=="),
    ]
    if crd_match_rate is not None:
        gates.insert(
            0, GateResult.check("crd_match_rate", crd_match_rate, cfg.min_crd_match_rate, ">")
        )
    figures = {
        "crd_match_rate": crd_match_rate,
        "completeness_critical": completeness,
        "n_duplicate_lead_ids": n_dup,
    }
    rows = [(c, v) for c, v in completeness.items()]
    md = (
        f"CRD match rate: {crd_match_rate if crd_match_rate is not None else 'n/a (no build)'}"
        f"\n\nDuplicate lead ids: {n_dup}\n\n### Completeness of critical features\n\n"
        + md_table(["feature", "non-null share"], rows)
    )
    return CheckReport("data_quality", "Data quality", figures, md, gates)


def univariate_auc(values: np.ndarray, target: np.ndarray) -> float | None:
    """AUC-ROC of one numeric column against a 0/1 label (NaNs dropped; ties averaged)."""
    keep = ~np.isnan(values)
    x, y = values[keep], target[keep]
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(x)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _numeric(series: pd.Series) -> np.ndarray | None:
    if series.dtype.kind in "biuf":
        return series.to_numpy(dtype=float, na_value=np.nan)
    if series.dtype.kind == "O":
        numeric = pd.to_numeric(series, errors="coerce")
        if numeric.notna().sum() >= 0.5 * series.notna().sum() > 0:
            return numeric.to_numpy(dtype=float, na_value=np.nan)
    return None


def check_suspicious_features(
    df: pd.DataFrame, catalog: Catalog, cfg: ValidateConfig
) -> CheckReport:
    """Probable leaks: a single column with AUC >= threshold, or one read after contact."""
    target = df["target"].to_numpy(dtype=int)
    post_contact = set(catalog.post_contact_features())
    rows: list[dict[str, Any]] = []
    for col in df.columns:
        if col in META_COLUMNS or col in catalog.segment_names():
            continue
        values = _numeric(df[col])
        auc = None if values is None else univariate_auc(values, target)
        score = None if auc is None else max(auc, 1 - auc)
        reasons: list[str] = []
        if score is not None and score >= cfg.suspicious_auc:
            reasons.append(f"univariate AUC {score:.3f} >= {cfg.suspicious_auc}")
        if col in post_contact:
            reasons.append("computed from data known only after contact")
        rows.append(
            {
                "feature": col,
                "auc": score,
                "reasons": reasons,
                "in_catalog": col in catalog.model_features(),
                "allow_listed": cfg.allow_list.get(col),
            }
        )
    flagged = [r for r in rows if r["reasons"] and not r["allow_listed"]]
    detail = "; ".join(f"{r['feature']}: {', '.join(r['reasons'])}" for r in flagged)
    gate = GateResult.check("suspicious_features", len(flagged), 0, "==", detail=detail)
    table = md_table(
        ["feature", "AUC (max(auc, 1-auc))", "flags", "allow-listed because"],
        [
            (
                r["feature"],
                r["auc"] if r["auc"] is not None else "n/a",
                ", ".join(r["reasons"]),
                r["allow_listed"] or "",
            )
            for r in sorted(rows, key=lambda r: -(r["auc"] or 0))
        ],
    )
    figures = {"flagged": [r["feature"] for r in flagged], "columns": rows}
    md = f"{gate_lines([gate])}\n\n{table}"
    return CheckReport("suspicious_features", "Suspicious-feature scan", figures, md, [gate])


def check_multicollinearity(
    df: pd.DataFrame, catalog: Catalog, cfg: ValidateConfig
) -> CheckReport:
    """Pairwise |r| above the threshold and VIF per continuous feature (informational).

    VIF is the diagonal of the inverse correlation matrix (NaNs filled with the median, a
    pseudo-inverse for singular matrices), not one regression per feature.
    """
    cols = [c for c, t in catalog.feature_types().items() if t == "numeric" and c in df]
    frame = df[cols].apply(pd.to_numeric, errors="coerce").astype(float)
    frame = frame.loc[:, frame.std(skipna=True).fillna(0) > 0]
    corr = frame.corr()
    values = corr.to_numpy()
    upper = np.triu(np.abs(np.nan_to_num(values)) > cfg.max_pairwise_correlation, k=1)
    pairs = [
        (str(corr.columns[i]), str(corr.columns[j]), float(values[i, j]))
        for i, j in zip(*np.nonzero(upper), strict=True)
    ]
    filled = frame.fillna(frame.median())
    filled = filled.loc[:, filled.std() > 0]
    vif: dict[str, float] = {}
    if filled.shape[1] >= 2:
        inverse = np.linalg.pinv(np.corrcoef(filled.to_numpy(), rowvar=False))
        vif = dict(zip(filled.columns, np.diag(inverse).astype(float), strict=True))
    ranked = sorted(vif.items(), key=lambda kv: -kv[1])
    figures = {"high_correlation_pairs": pairs, "vif": dict(ranked)}
    md = (
        f"### Pairs with |r| > {cfg.max_pairwise_correlation}\n\n"
        + md_table(["feature a", "feature b", "r"], pairs)
        + "\n\n### VIF (informational; train filters inside folds)\n\n"
        + md_table(["feature", "VIF"], ranked)
    )
    return CheckReport("multicollinearity", "Multicollinearity overview", figures, md)
