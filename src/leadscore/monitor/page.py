"""Monitoring stage, report page: time series of the daily monitor records with the alerts
marked (volume, success rate, latency, top PSI features, positive rate, estimated vs realized
top-decile precision).

Reads ``<reports_dir>/monitor/monitor_*.json`` and ``monitor_alerts``; writes
``<reports_dir>/monitor/monitoring.html``, its PNG and ``monitoring_section.json`` (the main
report's monitoring section).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from leadscore.config import Settings
from leadscore.io import write_json, write_text
from leadscore.report.plots import _save

#: The main report's monitoring section reads this (beside ``monitoring.png``).
SECTION_FILE = "monitoring_section.json"


def series(folder: Path) -> pd.DataFrame:
    """One row per monitor record: the figures the page plots."""
    rows = []
    for path in sorted(folder.glob("monitor_*.json")):
        d = json.loads(path.read_text())
        fig, h = d["figures"], d["figures"].get("health") or {}
        psi = {f["subject"]: f["value"] for f in d["findings"] if f["rule"] == "feature_drift"}
        week = [f for f in d["findings"] if f["rule"] == "positive_rate"]  # matured window
        est = (fig.get("estimate_matured") or {}).get("top_decile_precision") or {}
        rows.append({
            "date": pd.Timestamp(d["as_of"]), "considered": h.get("n_considered"),
            "success_rate": h.get("success_rate"), "per_lead_ms": h.get("per_lead_ms"),
            "positive_rate": week[0]["value"] if week else None,
            "expected_rate": week[0]["threshold"] if week else None,
            "est_top": est.get("value"), "est_low": est.get("low"), "est_high": est.get("high"),
            "real_top": (fig.get("realized") or {}).get("top_decile_precision"),
            **{f"psi:{k}": v for k, v in psi.items()},
        })  # fmt: skip
    return pd.DataFrame(rows)


def _panel(ax: Axes, df: pd.DataFrame, cols: list[str], title: str, alerts: list[str]) -> None:
    for col in cols:
        if col in df and df[col].notna().any():
            ax.plot(df["date"], pd.to_numeric(df[col]), label=col.removeprefix("psi:"))
    for day in alerts:
        ax.axvline(pd.Timestamp(day, tz="UTC"), color="red", alpha=0.4, lw=1)  # type: ignore[arg-type]
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.tick_params(axis="x", labelrotation=30)
    if len(cols) > 1:
        ax.legend(fontsize=6)


def write_page(cfg: Settings, alerts: list[dict[str, Any]]) -> Path:
    """Write the monitoring page (alerts as red lines and a table)."""
    folder = cfg.project.reports_dir / "monitor"
    df = series(folder)
    days = sorted({a["date"] for a in alerts})
    fig = Figure(figsize=(10, 9))
    axes = fig.subplots(3, 2).ravel()
    psi_cols = [c for c in df.columns if c.startswith("psi:")]
    # the five features drifting most now (early days' tiny windows would dominate a max)
    last = df[psi_cols].iloc[-1] if psi_cols else pd.Series(dtype=float)
    top = last.sort_values(ascending=False).index[:5].tolist()
    _panel(axes[0], df, ["considered"], "leads considered per run", days)
    _panel(axes[1], df, ["success_rate"], "scoring success rate", days)
    _panel(axes[2], df, ["per_lead_ms"], "latency (ms per lead)", days)
    _panel(axes[3], df, top, "PSI, 5 features highest on the last day", days)
    _panel(
        axes[4], df, ["positive_rate", "expected_rate"], "matured positive rate vs expected", days
    )
    _panel(axes[5], df, ["est_top", "est_low", "est_high", "real_top"],
           "top-decile precision: estimated (interval) vs realized", days)  # fmt: skip
    png = _save(fig, folder / "monitoring.png")
    rows = "".join(
        f"<tr><td>{a['date']}</td><td>{html.escape(a['rule'])}</td>"
        f"<td>{html.escape(str(a['subject']))}</td><td>{a['level']}</td>"
        f"<td>{a['value']}</td><td>{a['threshold']}</td></tr>"
        for a in alerts
    )
    body = (
        "<html><head><meta charset='utf-8'><title>leadscore monitoring</title></head><body>"
        f"<h1>Monitoring</h1><p>{len(df)} daily records; alerts in red.</p>"
        f"<img src='{png.name}' style='max-width:100%'>"
        "<h2>Alerts</h2><table border='1'><tr><th>date</th><th>rule</th><th>subject</th>"
        f"<th>level</th><th>value</th><th>threshold</th></tr>{rows}</table></body></html>"
    )
    write_json(folder / SECTION_FILE, section(df, alerts, top))
    return write_text(folder / "monitoring.html", body)


def section(df: pd.DataFrame, alerts: list[dict[str, Any]], top: list[str]) -> dict[str, Any]:
    """What the main report's monitoring section shows beside the plot: the span, the last
    record's figures, the PSI leaders and every alert raised."""
    last = df.iloc[-1] if len(df) else pd.Series(dtype=object)

    def num(key: str) -> float | None:
        value = last.get(key)
        return None if value is None or pd.isna(value) else float(value)

    inside = df.dropna(subset=["real_top", "est_low", "est_high"]) if len(df) else df
    hit = (inside["real_top"] >= inside["est_low"]) & (inside["real_top"] <= inside["est_high"])
    keys = ["considered", "success_rate", "per_lead_ms", "positive_rate", "expected_rate"]
    keys += ["est_top", "est_low", "est_high", "real_top"]
    return {
        "n_records": len(df),
        "first": None if df.empty else df["date"].iloc[0].date().isoformat(),
        "last": None if df.empty else df["date"].iloc[-1].date().isoformat(),
        "last_figures": {k: num(k) for k in keys},
        "top_psi": [{"feature": c.removeprefix("psi:"), "psi": num(c)} for c in top],
        "estimate_days": len(inside),
        "estimate_days_inside": int(hit.sum()) if len(inside) else 0,
        "alerts": alerts,
    }
