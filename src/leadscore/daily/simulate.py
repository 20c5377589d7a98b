"""Daily stage, simulation: run ``daily`` over the synthetic future, one delivery folder per day,
through the same runner the ``daily`` command calls, and check the operating targets.

Reads the world's ``manifest.json`` and ``future/YYYY-MM-DD/`` folders; writes what each daily
run writes, ``<reports_dir>/daily/simulation.json`` and ``summary.json``'s ``daily`` records
(one per day) and ``daily_checks``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from leadscore.config import Settings
from leadscore.daily import store
from leadscore.daily.commands import daily_dir, stage_daily, summary_daily
from leadscore.daily.run import DailyRun
from leadscore.io import write_json
from leadscore.warehouse import Warehouse, open_warehouse

SUMMARY_FILE = "summary.json"


def day_folders(raw: Path, days: int) -> list[tuple[Path, datetime]]:
    """``(folder, as_of)`` per future day: each day's delivery, run at the next midnight.

    Raises:
        ValueError: the world has fewer future days than asked for.
    """
    manifest = json.loads((raw / "manifest.json").read_text())
    have = int(manifest.get("future_days", 0))
    if have < days:
        raise ValueError(f"{raw} has {have} future days; regenerate with --future-days {days}")
    start = datetime.fromisoformat(manifest["as_of"].replace("Z", "+00:00")).astimezone(UTC)
    out = []
    for k in range(days):
        day = start + timedelta(days=k)
        out.append((raw / "future" / day.date().isoformat(), day + timedelta(days=1)))
    return out


def converted_in(folder: Path) -> set[str]:
    """Ids of leads whose conversion arrived in a day's Lead.csv."""
    path = folder / "crm" / "Lead.csv"
    if not path.exists():
        return set()
    leads = pd.read_csv(path, dtype=str, keep_default_na=False)
    return set(leads.loc[leads["Stage_Entered_Call_Scheduled__c"] != "", "Id"])


def stage_simulate(
    cfg: Settings, days: int, raw: Path | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Run ``daily`` for ``days`` future days; record and check the targets."""
    raw = raw or cfg.project.data_dir.parent / "raw"
    con = console or Console(quiet=True)
    records = []
    for folder, as_of in day_folders(raw, days):
        run = stage_daily(cfg, as_of, raw=folder, console=con)
        records.append({**run.summary_record(), **_call_list_check(cfg, run, folder)})
    with _open(cfg) as wh:
        checks = check_targets(wh, records)
    result = {"daily": records, "daily_checks": checks}
    write_json(daily_dir(cfg) / "simulation.json", result)
    _merge_summary(cfg.project.data_dir.parent / SUMMARY_FILE, result)
    con.print(
        f"simulated {days} days: min success rate {checks['min_success_rate']}, max "
        f"{checks['max_seconds']} s/day; checks {'passed' if checks['passed'] else 'FAILED'}"
    )
    return result


class _open:
    """Context manager around a warehouse connection."""

    def __init__(self, cfg: Settings) -> None:
        self.wh = open_warehouse(cfg.warehouse)

    def __enter__(self) -> Warehouse:
        return self.wh

    def __exit__(self, *exc: object) -> None:
        self.wh.close()


def _call_list_check(cfg: Settings, run: DailyRun, folder: Path) -> dict[str, Any]:
    """Leads whose conversion arrived today must be off today's call list."""
    converted = converted_in(folder)
    with _open(cfg) as wh:
        listed = set(store.call_list(wh, cfg, run.as_of, run.model_version)["lead_id"])
    return {
        "n_open": run.n_open,
        "n_open_unscored": run.n_open_unscored,
        "n_conversions_arrived": len(converted),
        "n_converted_still_listed": len(converted & listed),
    }


def check_targets(wh: Warehouse, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The operating targets over the simulated days, from ``daily_events`` and the records."""
    twice = wh.query(
        f"SELECT count(*) AS n FROM (SELECT lead_id, model_version FROM {store.DAILY_EVENTS} "
        "WHERE event IN ('scored', 'fallback') GROUP BY 1, 2 HAVING count(*) > 1)"
    ).to_pylist()[0]["n"]
    rejected_twice = wh.query(
        f"SELECT count(*) AS n FROM (SELECT lead_id, reason FROM {store.DAILY_EVENTS} "
        "WHERE event = 'rejected' GROUP BY 1, 2 HAVING count(*) > 1)"
    ).to_pylist()[0]["n"]
    history = wh.query(
        f"SELECT count(DISTINCT lead_id) AS n FROM {store.DAILY_EVENTS} WHERE event = 'scored' "
        f"AND lead_id IN (SELECT lead_id FROM {store.DAILY_EVENTS} WHERE event = 'fallback')"
    ).to_pylist()[0]["n"]
    figures = summary_daily(records)
    rates = [r["success_rate"] for r in records if r["success_rate"] is not None]
    checks = {
        **figures,
        "days_below_95pct": sum(1 for r in rates if r < 0.95),
        "n_lead_versions_scored_twice": int(twice),
        "n_leads_rejected_twice_same_reason": int(rejected_twice),
        "n_fallback_leads_rescored_by_main": int(history),
        "n_converted_still_listed": sum(r["n_converted_still_listed"] for r in records),
        "n_open_unscored_max": max((r["n_open_unscored"] for r in records), default=0),
    }
    checks["passed"] = (
        checks["days_below_95pct"] == 0
        and checks["n_lead_versions_scored_twice"] == 0
        and checks["n_leads_rejected_twice_same_reason"] == 0
        and checks["n_converted_still_listed"] == 0
        and checks["n_open_unscored_max"] == 0
    )
    return checks


def _merge_summary(path: Path, result: dict[str, Any]) -> None:
    summary = json.loads(path.read_text()) if path.exists() else {}
    summary.update(result)
    write_json(path, summary)
