"""Daily stage runners: the I/O around the library functions, one per CLI command.

Opens the warehouse, loads the bundle and its fallback, prints a short summary. Reads and
writes what the library functions do, plus ``<reports_dir>/fallback/metrics.json`` and the
call list CSV under ``<reports_dir>/daily``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from leadscore.config import Settings
from leadscore.daily import store
from leadscore.daily.fallback import (
    FallbackError,
    FallbackModel,
    load_fallback,
    read_history,
    save_fallback,
    train_fallback,
)
from leadscore.daily.run import DailyContext, DailyRun, Hook, run_daily
from leadscore.daily.scoring import Models
from leadscore.io import write_json
from leadscore.warehouse import Warehouse, warehouse_session

if TYPE_CHECKING:
    from leadscore.bundle import Bundle


def _console(console: Console | None) -> Console:
    return console or Console(quiet=True)


#: A scheduled run waits this long for a reader (``serve`` reading its lead index) to let go.
BUSY_WAIT_SECONDS = 60.0


def _warehouse(cfg: Settings) -> AbstractContextManager[Warehouse]:
    """The project's warehouse for a ``with`` block, waiting out a brief reader."""
    return warehouse_session(cfg, wait_seconds=BUSY_WAIT_SECONDS)


def daily_dir(cfg: Settings) -> Path:
    """Where daily run records, upsert files and call lists go."""
    return cfg.project.reports_dir / "daily"


def stage_fallback(cfg: Settings, console: Console | None = None) -> FallbackModel:
    """Train the latest bundle's fallback model, save it beside the bundle, report it beside
    the main model's holdout figures."""
    from leadscore.bundle import load_bundle
    from leadscore.pipeline import latest_bundle_path

    path = latest_bundle_path(cfg)
    bundle = load_bundle(path)
    with _warehouse(cfg) as wh:
        history = read_history(wh)
    model = train_fallback(history, cfg, str(bundle.version))
    folder = save_fallback(model, path)
    holdout = bundle.metrics.get("holdout", {})
    main = {"holdout_aucpr": holdout.get("aucpr"), "holdout_ece": holdout.get("ece")}
    write_json(
        cfg.project.reports_dir / "fallback" / "metrics.json",
        {"fallback": model.metrics, "main": main, "fallback_version": model.version},
    )
    m = model.metrics
    _console(console).print(
        f"fallback {model.version} written to {folder}: holdout AUC-PR {m['holdout_aucpr']:.4f}"
        f" (main {main['holdout_aucpr']:.4f}), ECE {m['holdout_ece']:.4f} (main "
        f"{main['holdout_ece']:.4f}); base rate {m['holdout_positive_rate']:.4f}"
    )
    return model


def load_models(cfg: Settings) -> Models:
    """The latest bundle, its fallback and the feature catalog."""
    from leadscore.bundle import load_bundle
    from leadscore.catalog import load_catalog
    from leadscore.pipeline import latest_bundle_path

    path = latest_bundle_path(cfg)
    try:
        fallback = load_fallback(path)
    except FallbackError as exc:
        if not str(exc).startswith("no fallback model"):
            raise  # changed or unreadable: refuse, never retrain over evidence
        # a newly promoted champion has none yet: train it from the history, as `fallback` does
        fallback = stage_fallback(cfg)
    return Models(load_bundle(path), fallback, load_catalog())


def stage_daily(
    cfg: Settings,
    as_of: datetime,
    raw: Path | None = None,
    shadow: bool = False,
    backfill: bool = False,
    console: Console | None = None,
    hooks: Sequence[Hook] = (),
) -> DailyRun:
    """Load the models, open the warehouse and run one day."""
    models = load_models(cfg)
    con = _console(console)
    at = as_of.astimezone(UTC)
    with _warehouse(cfg) as wh:
        # 1. the champion: merge, score, export, record, hooks
        ctx = DailyContext(wh, cfg, models, at, daily_dir(cfg), shadow, hooks)
        run = run_daily(ctx, raw=raw, backfill=backfill)
        _print_run(run, con)
        # 2. challengers in shadow: the same open leads, stored with the shadow flag, never
        #    exported (the champion's fallback scores their unmatched leads)
        for bundle in _shadow_bundles(wh, cfg.project.models_dir, con):
            # the fallback's rows of this pass get their own version label, so they never
            # touch the champion's (exported) fallback rows
            fallback = replace(
                models.fallback, version=f"{models.fallback.version}@{bundle.version}"
            )
            shadow_models = Models(bundle, fallback, models.catalog)
            shadow_ctx = DailyContext(wh, cfg, shadow_models, at, daily_dir(cfg), True)
            _print_run(run_daily(shadow_ctx, backfill=True), con)
        # 3. is a refresh due?
        for reason in _refresh_reasons(wh, cfg, at):
            con.print(f"refresh due: {reason}")
    return run


def _print_run(run: DailyRun, con: Console) -> None:
    s = run.score
    rate = "-" if s.success_rate is None else f"{s.success_rate:.1%}"
    con.print(
        f"{run.run_id} ({run.model_version}): considered {s.n_considered}, scored "
        f"{s.n_scored_main} + fallback {s.n_scored_fallback}, rejected {s.n_rejected}, success "
        f"{rate}; open {run.n_open}, exported {run.n_exported}; {run.wall_seconds:.1f}s"
    )


def _shadow_bundles(wh: Warehouse, models_dir: Path, con: Console) -> list[Bundle]:
    """Bundles of the registry's shadow models (verified), none without a registry.

    A shadow model whose files changed since registration is skipped with a warning: the
    champion's run is already scored and exported, and a broken challenger must not stop it.
    """
    from leadscore.registry.records import TamperedBundle
    from leadscore.registry.store import MODEL_REGISTRY, shadow_models
    from leadscore.registry.verify import load_verified

    if not wh.table_exists(MODEL_REGISTRY):
        return []
    bundles = []
    for record in shadow_models(wh):
        try:
            bundles.append(load_verified(record, models_dir))
        except TamperedBundle as exc:
            con.print(
                f"[yellow]shadow skipped: {exc}; `leadscore models reject {record.version}` "
                "ends its shadow period[/yellow]"
            )
    return bundles


def _refresh_reasons(wh: Warehouse, cfg: Settings, as_of: datetime) -> list[str]:
    from leadscore.registry.lifecycle import refresh_due
    from leadscore.registry.store import MODEL_REGISTRY

    return refresh_due(wh, cfg, as_of) if wh.table_exists(MODEL_REGISTRY) else []


def stage_calls(
    cfg: Settings,
    as_of: datetime,
    owner: str | None = None,
    limit: int = 25,
    console: Console | None = None,
) -> Path:
    """Write (CSV) and print the call list: open leads in call order."""
    from leadscore.io import atomic_path

    models_version = _latest_version(cfg)
    with _warehouse(cfg) as wh:
        store.ensure_daily_tables(wh)
        calls = store.call_list(wh, cfg, as_of.astimezone(UTC), models_version, owner)
    name = f"calls_{as_of.astimezone(UTC):%Y%m%d}" + (f"_{owner}" if owner else "") + ".csv"
    path = daily_dir(cfg) / name
    with atomic_path(path) as tmp:
        calls.to_csv(tmp, index=False)
    con = _console(console)
    table = Table(title=f"call list as of {as_of.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    shown = ("lead_id", "owner_id", "tier", "score", "bucket", "drivers_text")
    for col in shown:
        table.add_column(col, overflow="fold")
    for row in calls.head(limit).itertuples():
        table.add_row(*[str(getattr(row, c)) for c in shown])
    con.print(table)
    con.print(f"{len(calls):,} open leads; written to {path}")
    return path


def _latest_version(cfg: Settings) -> str:
    from leadscore.pipeline import latest_bundle_path

    return latest_bundle_path(cfg).name


def summary_daily(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Min/max figures over the per-day records (for the console and summary.json)."""
    rates = [r["success_rate"] for r in records if r["success_rate"] is not None]
    return {
        "n_days": len(records),
        "min_success_rate": min(rates) if rates else None,
        "max_seconds": max((r["seconds"] for r in records), default=None),
    }
