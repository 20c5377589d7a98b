"""Daily stage, shadow report: the last N daily runs' figures and the shadow gate.

Reads ``daily_runs`` (shadow runs when there are any, else live runs) and their rows of
``lead_scores``; writes ``<reports_dir>/daily/shadow_report.{json,md}``. The gate: success rate
> 95% on every day covered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from rich.console import Console

from leadscore.config import Settings
from leadscore.daily import store
from leadscore.daily.commands import daily_dir
from leadscore.io import write_json, write_text
from leadscore.report.markdown import md_table
from leadscore.warehouse import Warehouse, open_warehouse, tables

GATE_SUCCESS_RATE: Final = 0.95


def shadow_figures(wh: Warehouse, days: int = 7) -> dict[str, Any]:
    """Per-run figures of the last ``days`` runs and the gate verdict."""
    store.ensure_daily_tables(wh)
    shadow_runs = wh.query(f"SELECT count(*) AS n FROM {store.DAILY_RUNS} WHERE shadow")
    mode = "shadow" if shadow_runs.to_pylist()[0]["n"] else "live"
    rows = wh.query(
        f"SELECT run_id, record FROM {store.DAILY_RUNS} WHERE shadow = {mode == 'shadow'} "
        f"ORDER BY as_of DESC, run_id DESC LIMIT {int(days)}"
    ).to_pylist()
    runs = [_run_figures(wh, json.loads(r["record"])) for r in reversed(rows)]
    passed = bool(runs) and all(
        r["success_rate"] is not None and r["success_rate"] > GATE_SUCCESS_RATE for r in runs
    )
    gate = {"name": "shadow_success_rate", "threshold": GATE_SUCCESS_RATE, "passed": passed}
    return {"mode": mode, "days": len(runs), "runs": runs, "gate": gate}


def _run_figures(wh: Warehouse, record: dict[str, Any]) -> dict[str, Any]:
    dist = wh.query(
        f"SELECT bucket, count(*) AS n, avg(probability) AS mean_p FROM {tables.LEAD_SCORES} "
        f"WHERE run_id = '{record['run_id']}' GROUP BY bucket ORDER BY bucket"
    ).to_pylist()
    availability = record.get("feature_availability") or {}
    return {
        "run_id": record["run_id"],
        "date": record["as_of"][:10],
        "n_considered": record["n_considered"],
        "n_scored": record["n_scored"],
        "n_fallback": record["n_scored_fallback"],
        "success_rate": record["success_rate"],
        "per_lead_ms": record["per_lead_ms"],
        "wall_seconds": record["wall_seconds"],
        "mean_feature_availability": (
            sum(availability.values()) / len(availability) if availability else None
        ),
        "buckets": {d["bucket"]: d["n"] for d in dist},
    }


def stage_shadow_report(cfg: Settings, days: int = 7, console: Console | None = None) -> Path:
    """Write the shadow report (JSON and Markdown) and print its gate."""
    wh = open_warehouse(cfg.warehouse)
    try:
        figures = shadow_figures(wh, days)
    finally:
        wh.close()
    out = daily_dir(cfg)
    write_json(out / "shadow_report.json", figures)
    cols = ["date", "n_considered", "n_scored", "n_fallback", "success_rate", "per_lead_ms",
            "mean_feature_availability"]  # fmt: skip
    table = md_table(cols, [[r[c] for c in cols] for r in figures["runs"]])
    verdict = "PASSED" if figures["gate"]["passed"] else "FAILED"
    text = (
        f"# Shadow report ({figures['mode']} runs, last {figures['days']})\n\n{table}\n\n"
        f"Gate: success rate > {GATE_SUCCESS_RATE:.0%} on every day: **{verdict}**\n"
    )
    path = write_text(out / "shadow_report.md", text)
    (console or Console(quiet=True)).print(f"shadow gate {verdict}; report: {path}")
    return path
