"""Registry stage runner: the I/O around the registry (warehouse, bundles, report files).

Reads settings, the warehouse and model bundles; writes ``model_registry`` rows, the ``LATEST``
mirror of the champion in ``models_dir`` and ``reports/refresh/*.json``. ``stage_refresh``
rebuilds the training set at a new ``as_of``, trains a challenger, compares it with the
champion on the same matured leads and lets it shadow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from leadscore.config import Settings
from leadscore.io import write_json, write_text
from leadscore.registry.compare import compare_models, shared_leads
from leadscore.registry.lifecycle import current_champion, refresh_due
from leadscore.registry.lineage import training_lineage
from leadscore.registry.records import ModelRecord, RegistryError
from leadscore.registry.store import (
    MODEL_REGISTRY,
    apply_changes,
    champion,
    get_model,
    latest_event_time,
    list_models,
    record_comparison,
    register,
)
from leadscore.registry.verify import load_verified, verify_for_use
from leadscore.warehouse import Warehouse, open_warehouse, tables, warehouse_session

LATEST_MODEL = "LATEST"
REFRESH_DIR = "refresh"
LATEST_REFRESH = "latest.json"
TRAIN_SUMMARY = "latest.json"  # reports/train/latest.json: the report's model section
TRAIN_SUMMARY_COPY = "summary.json"  # reports/train/<version>/summary.json


opened = warehouse_session  # the project's warehouse for a ``with`` block


def project_time(wh: Warehouse, cfg: Settings) -> datetime:
    """The project's own clock: the latest of ``dataset.as_of``, the last registry change and
    the last scoring run's ``as_of`` (never the wall clock)."""
    times = [t for t in (cfg.dataset.as_of, latest_event_time(wh)) if t is not None]
    if wh.table_exists(tables.SCORING_RUNS):
        row = wh.query(f"SELECT max(as_of) AS t FROM {tables.SCORING_RUNS}").to_pylist()[0]
        if row["t"] is not None:
            times.append(row["t"])
    if not times:
        raise RegistryError("no time known to this project; pass --at")
    return max(pd.Timestamp(t).tz_convert(UTC).to_pydatetime() for t in times)


def mirror_latest(cfg: Settings, version: str) -> None:
    """Write ``models_dir/LATEST`` = the champion (a convenience mirror; the registry decides),
    and make ``reports/train/latest.json`` (the report's model section) the champion's summary
    when it was kept (see :func:`keep_train_summary`)."""
    write_text(cfg.project.models_dir / LATEST_MODEL, version + "\n")
    kept = train_reports(cfg) / version / TRAIN_SUMMARY_COPY
    if kept.exists():
        write_text(train_reports(cfg) / TRAIN_SUMMARY, kept.read_text())


def train_reports(cfg: Settings) -> Path:
    """``reports/train``: ``latest.json`` and one folder per trained version."""
    return cfg.project.reports_dir / "train"


def keep_train_summary(cfg: Settings, version: str) -> None:
    """Copy the training summary ``train`` just wrote into the version's report folder, so a
    challenger trained by ``refresh`` does not replace the champion's in the report."""
    latest = train_reports(cfg) / TRAIN_SUMMARY
    if latest.exists() and json.loads(latest.read_text()).get("version") == version:
        write_text(train_reports(cfg) / version / TRAIN_SUMMARY_COPY, latest.read_text())


def register_trained(
    cfg: Settings, bundle_path: Path, df: pd.DataFrame, console: Console | None = None
) -> ModelRecord:
    """Register a freshly written bundle; the first model of a registry becomes champion.

    Later models stay candidates until ``refresh`` compares them and ``models promote``
    makes one champion.
    """
    con = console or Console(quiet=True)
    as_of = cfg.dataset.as_of or pd.Timestamp(df["contact_ts"].max()).to_pydatetime()
    keep_train_summary(cfg, bundle_path.name)
    with opened(cfg) as wh:
        last = latest_event_time(wh)
        at = max(as_of, last) if last else as_of
        record = register(wh, bundle_path, at, training_lineage(df, as_of))
        champ = current_champion(wh)
        if champ is None:
            apply_changes(wh, [(record.version, "champion")], "first model in the registry", at)
            champ = get_model(wh, record.version)
        elif champ.version != record.version:
            con.print(
                f"model {record.version} registered as {record.status}; the champion stays "
                f"{champ.version} (`leadscore refresh` compares, `leadscore models promote`)"
            )
        record = get_model(wh, record.version)
    mirror_latest(cfg, champ.version)
    return record


def champion_path(cfg: Settings, read_only: bool = False) -> Path:
    """Folder of the champion's bundle, re-verified against the registry.

    ``read_only`` for a process that must not take DuckDB's write lock (the HTTP service asks
    while the daily job may be writing; a process that already holds a read-write connection
    must not ask read-only). A project trained before the registry existed has no
    ``model_registry`` table; its ``models/LATEST`` pointer is used then. No warehouse is
    created by asking.
    """
    if cfg.warehouse.backend != "duckdb" or Path(cfg.warehouse.path).exists():
        wh = open_warehouse(cfg.warehouse, read_only=read_only)
        try:
            if wh.table_exists(MODEL_REGISTRY):
                return verify_for_use(champion(wh), cfg.project.models_dir)
        finally:
            wh.close()
    pointer = cfg.project.models_dir / LATEST_MODEL
    if not pointer.exists():
        raise FileNotFoundError(f"no trained model in {cfg.project.models_dir}; run `train`")
    return cfg.project.models_dir / pointer.read_text().strip()


def registry_rows(cfg: Settings) -> list[dict[str, Any]]:
    """Every registered version with its status now (for the report's refresh section)."""
    with opened(cfg) as wh:
        records = list_models(wh)
    return [
        {
            "version": r.version,
            "status": r.status,
            "since": r.status_changed_at.isoformat(),
            "as_of": r.as_of.date().isoformat(),
            "aucpr": r.metrics.get("aucpr"),
            "ece": r.metrics.get("ece"),
            "gates_passed": r.gates_passed,
        }
        for r in records
    ]


def with_as_of(cfg: Settings, as_of: datetime) -> Settings:
    """The settings with ``dataset.as_of`` replaced (the refresh's extraction time)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must carry a time zone")
    return cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"as_of": as_of})})


@dataclass(frozen=True)
class RefreshResult:
    """What ``refresh`` did."""

    as_of: datetime
    due: list[str]
    champion: str
    challenger: str
    status: str
    comparison: dict[str, Any] | None
    report_path: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "as_of": self.as_of.isoformat(),
            "due": self.due,
            "champion": self.champion,
            "challenger": self.challenger,
            "status": self.status,
            "comparison": self.comparison,
            "report_path": str(self.report_path),
        }


def stage_refresh(
    cfg: Settings,
    as_of: datetime,
    console: Console | None = None,
    performance_alert: bool = False,
    override_reason: str | None = None,
) -> RefreshResult:
    """Rebuild the training set at ``as_of``, train a challenger, compare, let it shadow.

    Args:
        override_reason: train the challenger despite failed model gates (recorded; promoting
            it still needs its own override).

    Raises:
        RegistryError: there is no champion to compare with.
        GateFailed: a data or model gate stopped the challenger (the champion stays).
    """
    from leadscore.pipeline import stage_build, stage_train

    con = console or Console(quiet=True)
    cfg_at = with_as_of(cfg, as_of)
    # 1. the champion, and why a refresh is due
    with opened(cfg) as wh:
        champ = champion(wh)
        due = refresh_due(wh, cfg, as_of, performance_alert)
    con.print(f"refresh at {as_of.isoformat()}: " + ("; ".join(due) or "no trigger fired"))
    # 2. training set and challenger at the new as_of (registered as a candidate)
    stage_build(cfg_at, "asof", con)
    version = stage_train(cfg_at, override_reason, console=con).name
    # 3. compare on the same matured leads; the challenger shadows
    with opened(cfg) as wh:
        comparison = challenge(wh, cfg, version, as_of)
        status = get_model(wh, version).status
    result = RefreshResult(
        as_of, due, champ.version, version, status, comparison,
        cfg.project.reports_dir / REFRESH_DIR / f"{version}.json",
    )  # fmt: skip
    write_json(result.report_path, result.to_dict())
    write_json(result.report_path.with_name(LATEST_REFRESH), result.to_dict())
    _print_refresh(result, con)
    return result


def challenge(wh: Warehouse, cfg: Settings, version: str, at: datetime) -> dict[str, Any] | None:
    """Compare candidate ``version`` with the champion on the shared matured leads of the
    current training table, record the comparison, and start its shadow period at ``at``
    when its gates passed or an override was recorded. None when it is the champion itself.
    """
    champ, record = champion(wh), get_model(wh, version)
    if record.version == champ.version:
        return None
    old, new = (load_verified(r, cfg.project.models_dir) for r in (champ, record))
    leads = shared_leads(read_training_frame(wh), old, new)
    max_ece = cfg.registry.max_ece if cfg.registry.max_ece is not None else cfg.gates.max_ece
    comparison = compare_models(old, new, leads, cfg.registry, max_ece, cfg.project.global_seed)
    doc = comparison.to_dict()
    record_comparison(wh, version, doc)
    if record.status == "candidate" and (record.gates_passed or record.override_reason):
        why = f"challenger of {champ.version} from {at.isoformat()}"
        apply_changes(wh, [(version, "shadow")], why, at)
    return doc


def read_training_frame(wh: Warehouse) -> pd.DataFrame:
    """The current training table (labelled, one row per lead)."""
    from leadscore.pipeline import read_training_frame as read

    return read(wh)


def _print_refresh(result: RefreshResult, con: Console) -> None:
    comp = result.comparison
    if comp is None:
        con.print(f"challenger {result.challenger} is the champion itself (same data, settings)")
        return
    lo, hi = comp["aucpr_diff_ci"]
    con.print(
        f"challenger {result.challenger} ({result.status}) vs champion {result.champion} on "
        f"{comp['n_leads']:,} shared matured leads ({comp['n_positives']} MQLs): AUC-PR "
        f"{comp['challenger']['aucpr']:.4f} vs {comp['champion']['aucpr']:.4f}, difference "
        f"{comp['aucpr_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]; "
        + ("may be promoted" if comp["passed"] else "refused: " + "; ".join(comp["reasons"]))
    )
