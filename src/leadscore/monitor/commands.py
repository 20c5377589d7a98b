"""Monitoring stage runner for the CLI: open the warehouse, load the bundle's reference, bin
scores not binned yet, run the monitor as of a date, print the findings. Reads/writes what
:mod:`leadscore.monitor.run` does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from leadscore.config import Settings
from leadscore.monitor.run import MonitorResult, bin_pending, load_reference, run_monitor
from leadscore.warehouse import open_warehouse


class MonitorError(ValueError):
    """Monitoring cannot run (e.g. the bundle has no reference)."""


def stage_monitor(cfg: Settings, as_of: datetime, console: Console | None = None) -> MonitorResult:
    """Run the monitor as of ``as_of`` on the latest bundle."""
    from leadscore.bundle import verify_bundle
    from leadscore.pipeline import latest_bundle_path

    path = latest_bundle_path(cfg)
    verify_bundle(path)
    reference = load_reference(path)
    if reference is None:
        raise MonitorError(f"{path}: no reference.json (bundle trained before monitoring)")
    wh = open_warehouse(cfg.warehouse)
    try:
        from leadscore.catalog import load_catalog

        bin_pending(wh, cfg, reference, load_catalog(), path.name)
        result = run_monitor(wh, cfg, reference, path.name, as_of.astimezone(UTC))
    finally:
        wh.close()
    con = console or Console(quiet=True)
    table = Table(title=f"monitor as of {as_of:%Y-%m-%d}")
    for col in ("rule", "subject", "level", "value", "threshold", "detail"):
        table.add_column(col, overflow="fold")
    for f in result.findings:
        if f.level is not None or f.rule != "feature_drift":
            value = "-" if f.value is None else f"{f.value:.4g}"
            table.add_row(
                f.rule, f.subject, f.level or "ok", value, f"{f.threshold:.4g}", f.detail
            )
    con.print(table)
    con.print(f"{len(result.new_alerts)} new alerts; record {result.record_path}")
    return result
