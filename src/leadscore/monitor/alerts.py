"""Monitoring stage, alerts: reconcile findings with ``monitor_alerts`` (one open alert per
rule and subject until it clears, with hysteresis; a warning escalates to an alert) and send
new ones to a webhook (JSON POST, Slack-compatible: a ``text`` field, plus the structured
``alert``).

Reads and writes ``monitor_alerts``; POSTs to ``monitor.webhook_url`` when configured.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadscore.monitor.rules import Finding
from leadscore.monitor.store import ALERTS, ensure_tables, lit, open_alerts, ts
from leadscore.warehouse import Warehouse


def _num(value: float | None) -> str:
    return "NULL" if value is None else repr(float(value))


def reconcile(
    wh: Warehouse, findings: Sequence[Finding], as_of: datetime, clear_runs: int = 1
) -> list[Finding]:
    """Open an alert for each raised finding without an open one (a warning that becomes an
    alert is closed and the alert opened); refresh those still raised; close an open alert
    only after ``clear_runs`` consecutive runs that measured its subject and did not raise it
    (hysteresis). Returns the newly opened ones."""
    ensure_tables(wh)
    current = {(r["rule"], r["subject"]): r for r in open_alerts(wh).to_dict("records")}
    raised = {(f.rule, f.subject): f for f in findings if f.level is not None}
    measured = {(f.rule, f.subject) for f in findings}
    escalated = {k for k, f in raised.items() if k in current and _escalates(current[k], f)}
    new = [f for key, f in raised.items() if key not in current or key in escalated]
    with wh.transaction():
        for (rule, subject), row in current.items():
            cond = f"rule = {lit(rule)} AND subject = {lit(subject)} AND closed_at IS NULL"
            if (rule, subject) in escalated:
                wh.execute(f'UPDATE "{ALERTS}" SET closed_at = {ts(as_of)} WHERE {cond}')
            elif (rule, subject) in raised:
                wh.execute(
                    f'UPDATE "{ALERTS}" SET last_seen = {ts(as_of)}, clear_runs = 0 WHERE {cond}'
                )
            elif (rule, subject) in measured:
                previous = row.get("clear_runs")
                n_clear = (0 if previous is None or previous != previous else int(previous)) + 1
                closed = ts(as_of) if n_clear >= clear_runs else "NULL"
                wh.execute(
                    f'UPDATE "{ALERTS}" SET clear_runs = {n_clear}, closed_at = {closed} '
                    f"WHERE {cond}"
                )
        for f in new:
            wh.execute(
                f'INSERT INTO "{ALERTS}" VALUES ({lit(f.rule)}, {lit(f.subject)}, '
                f"{lit(str(f.level))}, {ts(as_of)}, {ts(as_of)}, NULL, {_num(f.value)}, "
                f"{_num(f.threshold)}, {lit(f.detail)}, 0)"
            )
    return new


def _escalates(row: Mapping[Any, Any], finding: Finding) -> bool:
    """An open warning whose finding is now an alert."""
    return row["level"] == "warning" and finding.level == "alert"


def payload(f: Finding, as_of: datetime, model_version: str) -> dict[str, Any]:
    """The webhook body: Slack's ``text`` and the structured alert."""
    value = "-" if f.value is None else f"{f.value:.4g}"
    text = (
        f":rotating_light: leadscore {f.level}: {f.rule} on {f.subject} = {value} "
        f"(threshold {f.threshold:.4g}) as of {as_of:%Y-%m-%d} [{model_version}] - {f.detail}"
    )
    return {
        "text": text,
        "alert": {**f.to_dict(), "date": as_of.date().isoformat(), "model": model_version},
    }


def post_webhook(url: str, body: dict[str, Any], timeout: float = 10.0) -> int:
    """POST ``body`` as JSON; return the HTTP status. Raises ``OSError`` on failure."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return int(resp.status)
