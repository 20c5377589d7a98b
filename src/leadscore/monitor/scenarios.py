"""Monitoring stage, scenarios: a synthetic world with (or without) a planted drift, the whole
pipeline, N daily runs, then which alerts fired and how many days after the drift started.

Reads nothing but what it generates in ``workdir``; writes the world, the project and
``summary.json`` (its ``alerts`` and ``monitor_scenario`` records).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from leadscore.config import Settings, load_settings
from leadscore.io import write_json
from leadscore.monitor import store
from leadscore.warehouse import open_warehouse

#: The alert each planted drift must raise (rule, subject prefix or "" for any subject).
EXPECTED: dict[str, tuple[str, ...]] = {
    "aum_shift": ("feature_drift", "performance_drop", "positive_rate"),
    "columns_dropped": ("feature_drift",),
    "conversion_drop": ("positive_rate", "performance_drop"),
}


def alert_records(cfg: Settings) -> list[dict[str, Any]]:
    """One record per alert ever opened (``date``, ``rule``, ``subject``, ``level``, ``value``,
    ``threshold``), oldest first."""
    wh = open_warehouse(cfg.warehouse)
    try:
        store.ensure_tables(wh)
        rows = store.all_alerts(wh)
    finally:
        wh.close()
    return [
        {"date": r["opened_at"].date().isoformat(), "rule": r["rule"], "subject": r["subject"],
         "level": r["level"], "value": r["value"], "threshold": r["threshold"]}
        for r in rows.to_dict("records")
    ]  # fmt: skip


def record_alerts(cfg: Settings) -> dict[str, Any]:
    """Add ``alerts`` (every alert raised) to the project's ``summary.json`` and write the
    monitoring page; return them."""
    alerts = {"alerts": alert_records(cfg)}
    path = cfg.project.data_dir.parent / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    write_json(path, {**summary, **alerts})
    if any((cfg.project.reports_dir / "monitor").glob("monitor_*.json")):
        from leadscore.monitor.page import write_page

        write_page(cfg, alerts["alerts"])
        _render_main_report(cfg)
    return alerts


def _render_main_report(cfg: Settings) -> None:
    """Render ``report.html`` again so its monitoring section shows the page just written (a
    report that cannot render is left as it was: monitoring never fails on it)."""
    from leadscore.report.html import render_report

    try:
        render_report(cfg)
    except Exception as exc:  # the report is a view; the alerts are already recorded
        Console(stderr=True).print(f"[yellow]report not rendered again: {exc}[/yellow]")


def detection(alerts: list[dict[str, Any]], drift: str | None, start: datetime) -> dict[str, Any]:
    """First alert of each expected rule, in days after the drift's first day."""
    if drift is None:
        return {"passed": not alerts, "n_alerts": len(alerts)}
    out: dict[str, Any] = {}
    for rule in EXPECTED[drift]:
        hits = [a for a in alerts if a["rule"] == rule and a["level"] == "alert"]
        first = min((a["date"] for a in hits), default=None)
        out[rule] = None if first is None else {
            "first": first, "subject": hits[0]["subject"],
            "delay_days": (datetime.fromisoformat(first).date() - start.date()).days,
        }  # fmt: skip
    out["passed"] = any(v is not None for k, v in out.items() if k != "passed")
    return out


def estimate_coverage(reports_dir: Path) -> dict[str, Any]:
    """On how many monitoring days the realized top-decile precision of the matured window lay
    inside the label-free estimate's interval (the days with a matured window)."""
    days = inside = 0
    for path in sorted((reports_dir / "monitor").glob("monitor_*.json")):
        figures = json.loads(path.read_text()).get("figures", {})
        est = (figures.get("estimate_matured") or {}).get("top_decile_precision")
        real = (figures.get("realized") or {}).get("top_decile_precision")
        if est is None or real is None:
            continue
        days += 1
        inside += int(est["low"] <= real <= est["high"])
    return {"days": days, "inside": inside, "share": inside / days if days else None}


def truth_coverage(cfg: Settings, truth_dir: Path) -> dict[str, Any]:
    """:func:`estimate_coverage` with the generating truth's probabilities in place of the
    model's (a synthetic world knows them): the same interval, made the same way from the same
    leads, ranked by the model. How often the realized figure falls inside it says how much of
    a miss is the luck of the labels rather than the model."""
    import pandas as pd

    from leadscore.monitor.run import load_reference, open_probabilities
    from leadscore.monitor.stats import label_free_estimate
    from leadscore.pipeline import latest_bundle_path

    truth = (
        pd.concat(
            pd.read_csv(truth_dir / name, usecols=["Id", "true_probability"], dtype={"Id": str})
            for name in ("lead_truth.csv", "future_truth.csv")
        )
        .drop_duplicates("Id", keep="last")
        .set_index("Id")["true_probability"]
    )
    bundle = latest_bundle_path(cfg)
    reference = load_reference(bundle) or {}
    m, window = cfg.monitor, timedelta(days=cfg.dataset.label_window_days)
    days = inside = 0
    wh = open_warehouse(cfg.warehouse)
    try:
        for path in sorted((cfg.project.reports_dir / "monitor").glob("monitor_*.json")):
            record = json.loads(path.read_text())
            real = ((record.get("figures") or {}).get("realized") or {}).get(
                "top_decile_precision"
            )
            if real is None:
                continue
            matured = datetime.fromisoformat(record["as_of"]) - window
            rows = store.matured_scores(wh, cfg, bundle.name, matured - timedelta(
                days=m.rate_window_days), matured)  # fmt: skip
            rows = rows[rows["lead_id"].isin(truth.index)]
            rows = rows.assign(probability=rows["lead_id"].map(truth).to_numpy(dtype=float),
                               model=rows["probability"])  # fmt: skip
            est = label_free_estimate(
                open_probabilities(reference, rows), cfg.project.global_seed,
                m.estimate_draws, scores=rows["model"].to_numpy(dtype=float),
            )["top_decile_precision"]  # fmt: skip
            days += 1
            inside += int(est.low <= real <= est.high)
    finally:
        wh.close()
    return {"days": days, "inside": inside, "share": inside / days if days else None}


def run_scenario(
    workdir: Path, scale: float, days: int, drift: str | None = None, drift_day: int = 0,
    seed: int = 42, console: Console | None = None, override_reason: str | None = "scenario",
) -> dict[str, Any]:  # fmt: skip
    """Generate, run the pipeline, simulate ``days`` days; return the detection record."""
    from leadscore.daily.simulate import stage_simulate
    from leadscore.pipeline import run_pipeline, stage_synth, write_demo_config

    con = console or Console(quiet=True)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = stage_synth(workdir / "raw", scale, seed, "default", con,
                           future_days=days + 1, drift=drift, drift_day=drift_day)  # fmt: skip
    path = write_demo_config(workdir, manifest, seed)
    with path.open("a") as fh:  # the monitor is under test, not the model: a small search
        fh.write("\n[train]\ncv_folds = 3\nn_trials = 2\nbootstrap_samples = 50\n")
    cfg = load_settings(path)
    run_pipeline(cfg, raw_dir=workdir / "raw", console=con, override_reason=override_reason)
    stage_simulate(cfg, days, workdir / "raw", con)
    alerts = record_alerts(cfg)["alerts"]
    as_of = cfg.dataset.as_of
    assert as_of is not None
    start = as_of + timedelta(days=drift_day)
    result = {"drift": drift, "drift_day": drift_day, "drift_start": start.isoformat(),
              "scale": scale, "days": days, "seed": seed, **detection(alerts, drift, start),
              "estimate_coverage": estimate_coverage(cfg.project.reports_dir)}  # fmt: skip
    if drift is None:  # a drifting world's truth is not the model's target after the drift
        result["truth_coverage"] = truth_coverage(cfg, workdir / "raw" / "truth")
    path = workdir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    write_json(path, {**summary, "monitor_scenario": result})
    return result
