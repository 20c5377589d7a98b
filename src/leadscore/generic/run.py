"""Generic source, runner: build -> validate (leakage) -> train -> explain -> score -> report on a
team's own CRM export described by a mapping.

Reads the mapping's tables; writes the cleaned and point-in-time tables in the warehouse, the
model bundle under ``models_dir`` and ``<reports_dir>/generic/`` (leakage evidence, metrics,
drivers, scores, ``report.md``). Every training stage is the engine's own function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.gates import GateResult
from leadscore.generic.build import (
    GenericContext,
    LoadResult,
    build_spine,
    level_counts,
    load_source,
    resolve_as_of,
)
from leadscore.generic.catalog import GenericCatalog, catalog_from_mapping
from leadscore.generic.leakage import LeakageReport, detect_leakage
from leadscore.generic.mapping import SourceMapping
from leadscore.generic.report import stamp_figures, write_generic_report
from leadscore.io import write_json
from leadscore.warehouse import Warehouse, open_warehouse

#: Below this share of parseable event times, or this many distinct days, time is unusable.
MIN_TIME_SHARE = 0.9
MIN_DISTINCT_DAYS = 30
RANDOM_SPLIT_WARNING = (
    "RANDOM SPLIT: the table has no usable time column, so rows were split at random; "
    "figures are optimistic and say nothing about future leads"
)
_SYNTHETIC_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")


@dataclass
class GenericRun:
    """What a generic run did and measured."""

    as_of: datetime
    label_window_days: int
    has_time: bool
    warnings: list[str]
    load: LoadResult
    n_rows: int
    n_positives: int
    excluded: dict[str, int]
    leakage: LeakageReport
    dropped: list[str]
    gates: list[GateResult]
    metrics: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    bundle_path: Path | None = None
    n_scored: int = 0
    report_path: Path | None = None
    report_dir: Path | None = None


def time_is_usable(wh: Warehouse, mapping: SourceMapping) -> tuple[bool, str | None]:
    """Whether the event time column can order the rows; else the reason why not."""
    if mapping.event_ts_col is None:
        return False, "the mapping names no event time column"
    row = wh.query(
        "SELECT COUNT(*) AS n, COUNT(event_ts) AS n_ts, "
        "COUNT(DISTINCT CAST(event_ts AS DATE)) AS n_days FROM generic_leads"
    ).to_pylist()[0]
    share = row["n_ts"] / row["n"] if row["n"] else 0.0
    if share < MIN_TIME_SHARE:
        return False, f"only {share:.0%} of {mapping.event_ts_col!r} values parse as times"
    if row["n_days"] < MIN_DISTINCT_DAYS:
        return False, f"{mapping.event_ts_col!r} spans only {row['n_days']} distinct days"
    return True, None


def random_order_times(ids: pd.Series, seed: int) -> pd.Series:
    """Stand-in event times that put the rows in a seeded random order, one minute apart, so
    the engine's time-ordered splits become a random split. They are labels, not times."""
    order = np.random.default_rng(seed).permutation(len(ids))
    return pd.Series(_SYNTHETIC_EPOCH + pd.to_timedelta(order, unit="min"), index=ids.index)


def _dev_end(wh: Warehouse, mapping: SourceMapping, cfg: Settings, as_of: datetime) -> datetime:
    """Where the development rows end (levels for grouping are counted before it)."""
    start = wh.query("SELECT MIN(event_ts) AS t FROM generic_leads").to_pylist()[0]["t"]
    last = as_of - timedelta(days=mapping.label_window_days)
    span = (last - start) * (1 - cfg.train.holdout_fraction)
    return start + span - timedelta(days=cfg.train.cv_gap_days)


def _leakage_gate(
    report: LeakageReport, mapping: SourceMapping, path: Path
) -> tuple[GateResult, list[str]]:
    flagged = [f for f in report.flagged() if f not in _excluded(mapping)]
    dropped = flagged if mapping.leakage.action == "drop" else []
    kept = [f for f in flagged if f not in dropped]
    detail = f"flagged {flagged}; dropped {dropped}" if flagged else "no field flagged"
    return GateResult.check("leakage_fields", len(kept), 0, "<=", path, detail), dropped


def data_gates(
    train: pd.DataFrame, mapping: SourceMapping, cfg: Settings, path: Path
) -> list[GateResult]:
    """The build's own gates: no enrichment row available after a lead's point in time (0, or
    stop), and enough positives for every time block of the validation to hold some."""
    late = np.zeros(len(train), dtype=bool)
    for e in mapping.enrichments:
        available = pd.to_datetime(train[f"{e.name}_available_ts"], utc=True)
        late |= (available > pd.to_datetime(train["pit_ts"], utc=True)).to_numpy()
    minimum = 10 * (cfg.train.cv_folds + 1)
    return [
        GateResult.check("pit_violations", int(late.sum()), 0, "<=", path),
        GateResult.check("min_positives", int(train["target"].sum()), minimum, ">=", path),
    ]


def _excluded(mapping: SourceMapping) -> set[str]:
    return {f.name for f in mapping.all_fields() if f.exclude}


def prepare(
    wh: Warehouse, mapping: SourceMapping, cfg: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, GenericCatalog, dict[str, Any]]:
    """Load, clean and join; return training rows, rows to score, the catalog and facts."""
    load = load_source(wh, mapping)
    as_of = resolve_as_of(wh, mapping)
    has_time, why = time_is_usable(wh, mapping)
    warnings = list(load.warnings)
    if not has_time:
        warnings.append(f"no usable time column ({why}); {RANDOM_SPLIT_WARNING}")
    end = _dev_end(wh, mapping, cfg, as_of) if has_time else None
    catalog = catalog_from_mapping(mapping, level_counts(wh, mapping, end))
    spine = build_spine(wh, GenericContext(mapping, as_of, has_time), catalog)
    reasons = spine["exclusion_reason"]
    train = spine[reasons.isna()].reset_index(drop=True)
    to_score = spine[reasons == "right_censored"].reset_index(drop=True)
    if not has_time:
        train["contact_ts"] = random_order_times(train["lead_id"], cfg.project.global_seed)
    excluded = {str(k): int(v) for k, v in reasons.value_counts().items()}
    facts = {"as_of": as_of, "has_time": has_time, "warnings": warnings, "load": load}
    return train, to_score, catalog, {**facts, "excluded": excluded}


def run_generic(
    mapping: SourceMapping, cfg: Settings, override_reason: str | None = None
) -> GenericRun:
    """The whole pipeline on a mapped CRM export; stops at the first failed gate after writing
    the report (the :class:`~leadscore.gates.GateFailed` propagates)."""
    out_dir = cfg.project.reports_dir / "generic"
    wh = open_warehouse(cfg.warehouse)
    try:
        train, to_score, catalog, facts = prepare(wh, mapping, cfg)
    finally:
        wh.close()
    # validate: leakage evidence for every field (excluded ones too), then the gate
    report = detect_leakage(
        train, mapping.all_fields(), mapping.leakage, facts["has_time"], cfg.project.global_seed
    )
    write_json(out_dir / "leakage.json", report.to_dict())
    gate, dropped = _leakage_gate(report, mapping, out_dir / "report.md")
    run = GenericRun(
        as_of=facts["as_of"], label_window_days=mapping.label_window_days,
        has_time=facts["has_time"], warnings=facts["warnings"],
        load=facts["load"], n_rows=len(train), n_positives=int(train["target"].sum()),
        excluded=facts["excluded"], leakage=report, dropped=dropped,
        gates=[*data_gates(train, mapping, cfg, out_dir / "report.md"), gate],
    )  # fmt: skip
    try:
        for check in run.gates:
            check.raise_if_failed()
        model_catalog = catalog_from_mapping_like(catalog, dropped)
        _train_explain_score(run, train, to_score, model_catalog, cfg, override_reason)
    finally:
        run.report_path = write_generic_report(run, out_dir, RANDOM_SPLIT_WARNING)
    return run


def catalog_from_mapping_like(catalog: GenericCatalog, dropped: list[str]) -> GenericCatalog:
    """The same catalog without the features of the ``dropped`` fields."""
    gone = set(dropped) | {f"{d}_age_days" for d in dropped}
    features = tuple(f for f in catalog.features if f.name not in gone)
    return GenericCatalog(
        version=catalog.version, pii=(), segments=catalog.segments, features=features,
        columns=catalog.columns,
    )  # fmt: skip


def _train_explain_score(
    run: GenericRun,
    train: pd.DataFrame,
    to_score: pd.DataFrame,
    catalog: GenericCatalog,
    cfg: Settings,
    override_reason: str | None,
) -> None:
    from leadscore.bundle import publish_model
    from leadscore.explain.contributions import compute_contributions, fold_contributions
    from leadscore.explain.shap import global_importance
    from leadscore.train.fit import train_model
    from leadscore.validate.contract import build_contract

    out_dir = cfg.project.reports_dir / "generic"
    # The model version and bundle config carry the export's as_of and label window.
    dataset = cfg.dataset.model_copy(
        update={"as_of": run.as_of, "label_window_days": run.label_window_days}
    )
    cfg = cfg.model_copy(update={"dataset": dataset})
    if not run.has_time:  # no time: no gap to keep, the split is random
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"cv_gap_days": 0})})
    result = train_model(
        train,
        catalog.feature_types(),
        cfg,
        override_reason=override_reason,
        catalog_fingerprint=catalog.fingerprint,
    )
    run.version, run.metrics = result.version, result.metrics
    run.gates += result.gates
    contract = build_contract(train, catalog).model_dump(mode="json")
    run.report_dir = result.report_dir
    try:  # publish writes the training reports, then stops on a failed gate
        run.bundle_path = publish_model(
            result, cfg.project.models_dir, catalog.model_dump(mode="json"), contract
        )
    finally:
        if not run.has_time:
            stamp_figures(result.report_dir, RANDOM_SPLIT_WARNING)
    pred = result.predictions
    columns = ["lead_id", "contact_ts", "target", "xgb_proba", "baseline_proba"]
    pred.loc[pred["set"] == "holdout", columns].to_csv(
        out_dir / "holdout_predictions.csv", index=False
    )
    holdout = train[train["lead_id"].isin(set(result.splits.holdout_ids))]
    contrib = compute_contributions(result, holdout)
    importance = global_importance(fold_contributions(contrib, result.features, holdout.index))
    importance.to_csv(out_dir / "importance.csv", index=False)
    if len(to_score):
        scored = score_with_bundle(run.bundle_path, to_score, cfg)
        scored.insert(0, "lead_id", to_score["lead_id"].to_numpy())
        scored.to_csv(out_dir / "scores.csv", index=False)
        run.n_scored = int(scored["reject_reason"].isna().sum())


def score_with_bundle(bundle_path: Path, df: pd.DataFrame, cfg: Settings) -> pd.DataFrame:
    """Score rows with the published bundle and the catalog stored in it (nothing from memory):
    probability, score, bucket, tier, drivers and ``reject_reason`` (None when scored).

    Invariant: one output row per input row, same index.
    """
    from leadscore.bundle import load_bundle
    from leadscore.score.batch import score_frame
    from leadscore.score.checks import check_rows

    bundle = load_bundle(bundle_path)
    catalog = GenericCatalog.model_validate_json((bundle_path / "catalog.json").read_text())
    checked, reasons = check_rows(df, bundle, catalog)
    scored = score_frame(bundle, checked[reasons.isna()], catalog, cfg.score)
    return scored.reindex(df.index).assign(reject_reason=reasons)
