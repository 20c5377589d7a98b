"""Monitoring stage, alerts: reconcile findings with ``monitor_alerts`` (one open alert per
rule and subject until it clears) and send new ones to a webhook (JSON POST, Slack-compatible:
a ``text`` field, plus the structured ``alert``).

Reads and writes ``monitor_alerts``; POSTs to ``monitor.webhook_url`` when configured.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from leadscore.monitor.rules import Finding
from leadscore.monitor.store import ALERTS, ensure_tables, lit, open_alerts, ts
from leadscore.warehouse import Warehouse


def _num(value: float | None) -> str:
    return "NULL" if value is None else repr(float(value))


def reconcile(wh: Warehouse, findings: Sequence[Finding], as_of: datetime) -> list[Finding]:
    """Open an alert for each raised finding without an open one; refresh those still raised;
    close open alerts whose finding is no longer raised. Returns the newly opened ones."""
    ensure_tables(wh)
    current = {(r["rule"], r["subject"]) for r in open_alerts(wh).to_dict("records")}
    raised = {(f.rule, f.subject): f for f in findings if f.level is not None}
    measured = {(f.rule, f.subject) for f in findings}
    new = [f for key, f in raised.items() if key not in current]
    with wh.transaction():
        for f in new:
            wh.execute(
                f'INSERT INTO "{ALERTS}" VALUES ({lit(f.rule)}, {lit(f.subject)}, '
                f"{lit(str(f.level))}, {ts(as_of)}, {ts(as_of)}, NULL, {_num(f.value)}, "
                f"{_num(f.threshold)}, {lit(f.detail)})"
            )
        for rule, subject in current:
            cond = f"rule = {lit(rule)} AND subject = {lit(subject)} AND closed_at IS NULL"
            if (rule, subject) in raised:
                wh.execute(f'UPDATE "{ALERTS}" SET last_seen = {ts(as_of)} WHERE {cond}')
            elif (rule, subject) in measured:
                wh.execute(f'UPDATE "{ALERTS}" SET closed_at = {ts(as_of)} WHERE {cond}')
    return new


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
