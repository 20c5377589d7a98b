"""Monitoring stage, runner: after each daily run (hook) or on demand (``leadscore monitor``).

Reads the bundle's ``reference.json``, ``lead_scores``, ``daily_runs``, ``crm_leads`` and the
vintages; writes ``monitor_bins`` (the run's scored leads, binned), ``monitor_alerts`` and
``<reports_dir>/monitor/monitor_YYYYMMDD.json``; POSTs new alerts to the webhook if configured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from leadscore.config import Settings
from leadscore.monitor import rules, store
from leadscore.monitor.alerts import payload, post_webhook, reconcile
from leadscore.monitor.reference import REFERENCE_FILE
from leadscore.monitor.stats import label_free_estimate, open_probability, realized
from leadscore.warehouse import Warehouse


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring pass: the findings, the alerts it opened, the figures, its record."""

    as_of: datetime
    findings: list[rules.Finding]
    new_alerts: list[rules.Finding]
    figures: dict[str, Any]
    record_path: Path

    def alert_records(self) -> list[dict[str, Any]]:
        """``summary.json`` records of the alerts this pass opened."""
        return [
            {"date": self.as_of.date().isoformat(), "rule": f.rule, "subject": f.subject,
             "level": f.level, "value": f.value, "threshold": f.threshold}
            for f in self.new_alerts
        ]  # fmt: skip


def load_reference(bundle_path: Path) -> dict[str, Any] | None:
    """The bundle's frozen reference (verified with the bundle), or None for older bundles."""
    path = Path(bundle_path) / REFERENCE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def bin_run(wh: Warehouse, cfg: Settings, reference: dict[str, Any], catalog: Any,
            version: str, run_id: str, as_of: datetime) -> int:  # fmt: skip
    """Bin the features and score of the leads the main model scored in ``run_id``."""
    from leadscore.dataset import build_scoring_set
    from leadscore.warehouse import tables

    store.ensure_tables(wh)
    scores = wh.query(
        f'SELECT lead_id, scored_at, contact_ts, probability, flag FROM "{tables.LEAD_SCORES}" '
        f"WHERE run_id = {store.lit(run_id)} AND model_version = {store.lit(version)} "
        "AND coalesce(shadow, false) = false"
    ).to_pandas()
    if scores.empty:
        return 0
    ids = scores["lead_id"].astype(str).tolist()
    late = tuple(scores.loc[scores["flag"].fillna("").str.startswith("vendor_data_after"),
                            "lead_id"].astype(str))  # fmt: skip
    built = build_scoring_set(wh, cfg, catalog, ids, as_of=as_of, vendor_at_as_of=late,
                              table="_monitor_scoring_set")  # fmt: skip
    features = wh.query(f'SELECT * FROM "{built.table}"').to_pandas()
    wh.execute(f'DROP TABLE IF EXISTS "{built.table}"')
    features["lead_id"] = features["lead_id"].astype(str)
    store.append_bins(wh, store.bin_rows(reference, features, scores))
    return len(scores)


def last_run_health(wh: Warehouse, as_of: datetime) -> dict[str, Any] | None:
    """The record of the last daily run at or before ``as_of``."""
    if not wh.table_exists("daily_runs"):
        return None
    rows = wh.query(
        f'SELECT record FROM "daily_runs" WHERE as_of <= {store.ts(as_of)} '
        "ORDER BY as_of DESC, run_id DESC LIMIT 1"
    ).to_pylist()
    return json.loads(rows[0]["record"]) if rows else None


def open_probabilities(reference: dict[str, Any], rows: Any) -> np.ndarray:
    """Each scored lead's chance of converting given what its scoring knew: a daily run scores
    only leads not converted yet, so its leads' probabilities are conditioned on having stayed
    open from contact to scoring (:func:`~leadscore.monitor.stats.open_probability`); a batch
    scoring scores every contacted lead, converted or not, and its leads keep theirs.
    ``rows``: :func:`~leadscore.monitor.store.matured_scores`."""
    open_s = (rows["scored_at"] - rows["contact_ts"]).dt.total_seconds().to_numpy(dtype=float)
    hours = np.where(rows["scored_open"].to_numpy(dtype=bool), open_s / 3600.0, 0.0)
    p = rows["probability"].to_numpy(dtype=float)
    return open_probability(p, hours, reference.get("conversion_delay_hours"))


def performance(
    wh: Warehouse, cfg: Settings, version: str, as_of: datetime, seed: int,
    reference: dict[str, Any],
) -> tuple[list[rules.Finding], dict[str, Any]]:  # fmt: skip
    """Matured window's positive rate (the latest matured week's reported beside it) and its
    label-free estimate vs realized figures. Expectations use each lead's probability given
    that it was still open when scored (:func:`open_probabilities`)."""
    m = cfg.monitor
    matured = as_of - timedelta(days=cfg.dataset.label_window_days)
    week = store.matured_scores(wh, cfg, version, matured - timedelta(days=7), matured)
    start = matured - timedelta(days=m.rate_window_days)
    win = store.matured_scores(wh, cfg, version, start, matured)
    findings = []
    figures: dict[str, Any] = {"matured_until": matured.isoformat(), "n_week": len(week),
                               "n_window": len(win)}  # fmt: skip
    if len(week):
        expected = float(open_probabilities(reference, week).mean())
        figures["week"] = {"n": len(week), "positive_rate": float(week["y"].mean()),
                           "expected": expected}  # fmt: skip
    if len(win):
        p, y = win["probability"].to_numpy(dtype=float), win["y"].to_numpy(dtype=float)
        p_open = open_probabilities(reference, win)
        findings.append(rules.positive_rate(y, p_open, m, "matured_window"))
        est = label_free_estimate(p_open, seed, m.estimate_draws, scores=p)
        figures["estimate_matured"] = {k: v.to_dict() for k, v in est.items()}
        figures["realized"] = realized(y, p)
        top = est["top_decile_precision"].value
        findings.append(rules.performance_drop(y, p, top, m))
    return findings, figures


def unlabelled_estimate(
    wh: Warehouse, cfg: Settings, version: str, as_of: datetime, seed: int,
    reference: dict[str, Any],
) -> dict[str, Any] | None:  # fmt: skip
    """Label-free estimate for leads whose labels are not in yet (contacted in the last
    label window), each given that it was still open when scored."""
    days = cfg.dataset.label_window_days
    rows = store.matured_scores(wh, cfg, version, as_of - timedelta(days=days), as_of)
    if rows.empty:
        return None
    est = label_free_estimate(
        open_probabilities(reference, rows), seed, cfg.monitor.estimate_draws,
        scores=rows["probability"].to_numpy(dtype=float),
    )  # fmt: skip
    return {"n": len(rows), **{k: v.to_dict() for k, v in est.items()}}


def run_monitor(
    wh: Warehouse,
    cfg: Settings,
    reference: dict[str, Any],
    version: str,
    as_of: datetime,
    health: dict[str, Any] | None = None,
) -> MonitorResult:
    """Evaluate every rule as of ``as_of``, reconcile the alerts table, notify, write JSON."""
    from leadscore.daily.store import newest_vintage_age_days
    from leadscore.io import write_json

    m, seed = cfg.monitor, cfg.project.global_seed
    store.ensure_tables(wh)
    health = health if health is not None else last_run_health(wh, as_of)
    findings: list[rules.Finding] = []
    if health is not None and health.get("n_considered"):
        findings.append(rules.scoring_failures(int(health.get("n_rejected", 0)),
                                               int(health["n_considered"]), m))  # fmt: skip
    weeks = store.window_weeks(m.window_days, store.span_days(wh, as_of), m.min_span_days)
    counts = store.window_counts(wh, as_of, 7 * max(1, weeks))
    findings += rules.feature_drift(reference, counts, m, seed, weeks)
    perf, figures = performance(wh, cfg, version, as_of, seed, reference)
    findings += perf
    age = newest_vintage_age_days(wh, as_of)
    findings.append(rules.data_freshness(age, m))
    figures["estimate_unlabelled"] = unlabelled_estimate(wh, cfg, version, as_of, seed, reference)
    figures["psi_window_days"] = 7 * weeks
    figures["expected_holdout"] = reference.get("expected")
    figures["health"] = None if health is None else {
        k: health.get(k) for k in ("run_id", "n_considered", "n_rejected", "success_rate",
                                   "wall_seconds", "per_lead_ms", "feature_availability")
    }  # fmt: skip
    new = reconcile(wh, findings, as_of, m.clear_runs)
    figures["webhook_errors"] = notify(m.webhook_url, new, as_of, version)
    path = cfg.project.reports_dir / "monitor" / f"monitor_{as_of:%Y%m%d}.json"
    result = MonitorResult(as_of, findings, new, figures, path)
    write_json(path, {"as_of": as_of.isoformat(), "model_version": version,
                      "findings": [f.to_dict() for f in findings],
                      "new_alerts": result.alert_records(), "figures": figures})  # fmt: skip
    return result


def notify(url: str | None, new: list[rules.Finding], as_of: datetime, version: str) -> list[str]:
    """POST each new alert; a failing webhook is recorded, never fails the daily run."""
    errors = []
    for f in new if url else []:
        try:
            post_webhook(str(url), payload(f, as_of, version))
        except OSError as exc:
            errors.append(f"{f.rule}/{f.subject}: {exc}")
    return errors


def daily_hook(ctx: Any, run: Any) -> MonitorResult | None:
    """The daily run's monitoring step: bin the scores not binned yet (this run's, and on the
    first run the initial scoring's, so drift is visible from day one), then run the monitor.
    Does nothing when monitoring is off or the bundle has no reference (older bundles)."""
    cfg: Settings = ctx.cfg
    reference = load_reference(ctx.models.bundle.path)
    if not cfg.monitor.enabled or reference is None or ctx.shadow:
        return None
    bin_pending(ctx.wh, cfg, reference, ctx.models.catalog, ctx.models.version)
    return run_monitor(ctx.wh, cfg, reference, ctx.models.version, ctx.as_of, run.to_dict())


def bin_pending(
    wh: Warehouse, cfg: Settings, reference: dict[str, Any], catalog: Any, version: str
) -> int:
    """Bin every run of ``version`` whose scores are not binned yet, each as of its own
    scoring time; returns the leads binned."""
    store.ensure_tables(wh)
    return sum(
        bin_run(wh, cfg, reference, catalog, version, run_id, scored_at)
        for run_id, scored_at in store.unbinned_runs(wh, version)
    )
