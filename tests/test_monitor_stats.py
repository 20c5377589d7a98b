"""Monitoring statistics and alert plumbing: PSI and the label-free estimate against
independent computations, the guards against noise, the alerts table, the webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from leadscore.config import MonitorConfig
from leadscore.monitor import rules
from leadscore.monitor.alerts import payload, post_webhook, reconcile
from leadscore.monitor.reference import (
    assign_bins,
    category_bins,
    conversion_delay_hours,
    numeric_bins,
)
from leadscore.monitor.stats import label_free_estimate, open_probability, psi, psi_null_quantile
from leadscore.monitor.store import all_alerts, open_alerts, window_weeks
from leadscore.warehouse.duckdb import DuckDBWarehouse

T0 = datetime(2025, 11, 2, tzinfo=UTC)


def test_psi_matches_a_hand_computation() -> None:
    ref = np.array([0.1, 0.2, 0.3, 0.4])
    counts = np.array([30, 20, 30, 20])
    a = counts / counts.sum()
    by_hand = sum((ai - ei) * np.log(ai / ei) for ai, ei in zip(a, ref, strict=True))
    assert psi(ref, counts) == pytest.approx(by_hand, rel=1e-12)
    assert psi(ref, ref * 1000) == pytest.approx(0.0, abs=1e-12)


def test_reference_bins_keep_null_and_unseen_apart() -> None:
    x = pd.Series([1.0, 2.0, 3.0, 4.0, None, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    ref = numeric_bins(x, n_bins=5)
    bins = assign_bins(ref, pd.Series([None, -100.0, 100.0]))
    assert bins[0] == len(ref["edges"]) + 1  # NULL bin last
    assert bins[1] == 0 and bins[2] == len(ref["edges"])
    assert sum(ref["shares"]) == pytest.approx(1.0)
    cat = category_bins(pd.Series(["a", "b", None, "a"]))
    assert cat["levels"] == ["a", "b"]
    assert assign_bins(cat, pd.Series(["b", "zzz", None])).tolist() == [1, 2, 3]
    assert cat["shares"] == pytest.approx([0.5, 0.25, 0.0, 0.25])


def test_psi_null_quantile_bounds_the_psi_of_samples_from_the_reference() -> None:
    ref = np.array([0.05, 0.15, 0.3, 0.3, 0.15, 0.05])
    rng = np.random.default_rng(7)
    q99 = psi_null_quantile(ref, 500, 0.99, seed=1)
    samples = [psi(ref, rng.multinomial(500, ref)) for _ in range(1000)]
    exceed = np.mean(np.array(samples) > q99)
    assert 0.0 <= exceed < 0.03  # ~1 % by construction
    shifted = np.roll(ref, 1)
    assert psi(ref, rng.multinomial(500, shifted)) > q99


def test_label_free_estimate_matches_independent_figures_and_covers_the_truth() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 25, size=2000)
    est = label_free_estimate(p, seed=11, n_draws=400)
    top = np.sort(p)[::-1][:200]
    assert est["top_decile_precision"].value == pytest.approx(top.mean(), rel=0.03)
    assert est["mql_rate"].value == pytest.approx(p.mean(), rel=0.02)
    draws = np.random.default_rng(5).random((100, len(p))) < p
    ap = np.mean([average_precision_score(y, p) for y in draws])
    assert est["aucpr"].value == pytest.approx(ap, rel=0.05)
    # labels truly drawn from p: the realized top-decile precision falls in the 90 % interval
    order = np.argsort(-p, kind="mergesort")[:200]
    inside = [
        est["top_decile_precision"].low <= y[order].mean() <= est["top_decile_precision"].high
        for y in draws
    ]
    assert 0.8 <= np.mean(inside) <= 0.98


def test_open_probability_matches_a_simulated_world_that_scores_only_open_leads() -> None:
    # leads convert within 30 days with chance p, early more often than late (as people do);
    # each is scored 0-48 hours after contact, and only if it has not converted by then
    rng = np.random.default_rng(7)
    n = 400_000
    p = rng.beta(1.2, 12, size=n)
    converts = rng.random(n) < p
    delay_h = 720 * rng.random(n) ** 2
    open_h = 48 * rng.random(n)
    still_open = ~(converts & (delay_h <= open_h))
    frame = pd.DataFrame({
        "contact_ts": pd.Timestamp("2025-01-01", tz="UTC"),
        "converted_ts": pd.Timestamp("2025-01-01", tz="UTC")
        + pd.to_timedelta(np.where(converts, delay_h, np.nan)[:50_000], unit="h"),
        "target": converts[:50_000].astype(int),
    })  # fmt: skip
    quantiles = conversion_delay_hours(frame)
    assert quantiles is not None and len(quantiles) == 101
    adjusted = open_probability(p[still_open], open_h[still_open], quantiles)
    realized = converts[still_open]
    # the open leads convert less often than p says, and as often as the adjustment says
    assert realized.mean() < 0.95 * p[still_open].mean()
    assert adjusted.mean() == pytest.approx(realized.mean(), rel=0.02)
    top = np.argsort(-p[still_open], kind="mergesort")[: len(adjusted) // 10]
    assert adjusted[top].mean() == pytest.approx(realized[top].mean(), rel=0.03)
    # leads scored at contact (or a reference without delays) keep their probability
    assert np.array_equal(open_probability(p[:9], np.zeros(9), quantiles), p[:9])
    assert np.array_equal(open_probability(p[:9], open_h[:9], None), p[:9])


def test_the_estimate_ranks_by_the_model_scores_when_given() -> None:
    p = np.array([0.9, 0.1] + [0.0] * 8)  # the top decile of ten leads is one lead
    scores = np.array([0.1, 0.9] + [0.0] * 8)  # the model ranks lead 1 first
    est = label_free_estimate(p, seed=1, n_draws=400, scores=scores)
    assert est["top_decile_precision"].value == pytest.approx(0.1, abs=0.05)
    assert label_free_estimate(p, seed=1, n_draws=400)["top_decile_precision"].value > 0.8


def test_a_five_percent_change_in_a_four_percent_rate_is_noise_a_halving_is_not() -> None:
    cfg = MonitorConfig()
    rng = np.random.default_rng(0)
    p = np.full(1500, 0.04)
    y_noise = (rng.random(1500) < 0.042).astype(int)
    assert rules.positive_rate(y_noise, p, cfg, "week").level is None
    y_drop = (rng.random(1500) < 0.015).astype(int)
    assert rules.positive_rate(y_drop, p, cfg, "week").level == "alert"
    assert rules.scoring_failures(6, 100, cfg).level is None  # 6 % of 100: noise
    assert rules.scoring_failures(40, 200, cfg).level == "alert"
    assert rules.data_freshness(30.0, cfg).level is None
    assert rules.data_freshness(400.0, cfg).level == "alert"


def test_drift_below_the_minimum_sample_is_reported_not_alerted() -> None:
    cfg = MonitorConfig(min_sample=300)
    ref = {"features": {"x": {"kind": "numeric", "edges": [0.0], "shares": [0.5, 0.5, 0.0]}}}
    small = pd.DataFrame({"feature": ["x", "x"], "bin": [0, 2], "n": [10, 90]})
    (f,) = rules.feature_drift(ref, small, cfg, seed=1)
    assert f.level is None and f.value is not None and f.value > 1 and "reported only" in f.detail
    big = pd.DataFrame({"feature": ["x", "x"], "bin": [0, 2], "n": [100, 900]})
    assert rules.feature_drift(ref, big, cfg, seed=1)[0].level == "alert"
    (early,) = rules.feature_drift(ref, big, cfg, seed=1, weeks=0)
    assert early.level is None and "whole week" in early.detail  # not a whole week yet
    assert rules.feature_drift(ref, big, cfg, seed=1, weeks=1)[0].level == "alert"
    stable = pd.DataFrame({"feature": ["x", "x"], "bin": [0, 1], "n": [510, 490]})
    assert rules.feature_drift(ref, stable, cfg, seed=1)[0].level is None


def _finding(level: str | None, subject: str = "x") -> rules.Finding:
    return rules.Finding("feature_drift", subject, level, 0.4, 0.25, "test")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("window_days", "span", "min_span", "weeks"),
    [
        (28, 40.0, 7, 4),  # a full window: four whole weeks
        (30, 40.0, 7, 4),  # 30 days rounds to four weeks
        (31, 40.0, 7, 4),
        (3, 40.0, 7, 1),  # at least one week
        (28, 10.0, 7, 1),  # ten days binned: one whole week
        (28, 6.9, 7, 0),  # less than a week: reported only
        (28, 20.0, 21, 0),  # under min_span_days
        (28, None, 7, 0),  # nothing binned
    ],
)
def test_the_psi_window_is_whole_weeks(
    window_days: int, span: float | None, min_span: int, weeks: int
) -> None:
    assert window_weeks(window_days, span, min_span) == weeks


def test_one_open_alert_per_rule_and_subject_until_it_clears(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        assert len(reconcile(wh, [_finding("alert")], T0)) == 1
        assert reconcile(wh, [_finding("alert")], T0 + timedelta(days=1)) == []
        assert reconcile(wh, [_finding(None)], T0 + timedelta(days=2)) == []
        assert len(reconcile(wh, [_finding("alert")], T0 + timedelta(days=3))) == 1
        rows = all_alerts(wh)
    finally:
        wh.close()
    assert len(rows) == 2
    first = rows.iloc[0]
    assert first["closed_at"] == T0 + timedelta(days=2)
    assert first["last_seen"] == T0 + timedelta(days=1)
    assert pd.isna(rows.iloc[1]["closed_at"])


def test_an_alert_clears_only_after_clear_runs_quiet_runs(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    day = [T0 + timedelta(days=k) for k in range(8)]
    try:
        assert len(reconcile(wh, [_finding("alert")], day[0], clear_runs=3)) == 1
        reconcile(wh, [_finding(None)], day[1], clear_runs=3)
        reconcile(wh, [_finding(None)], day[2], clear_runs=3)
        # raised again before the third quiet run: the same alert stays open, count resets
        assert reconcile(wh, [_finding("alert")], day[3], clear_runs=3) == []
        assert reconcile(wh, [], day[4], clear_runs=3) == []  # not measured: no change
        for d in day[4:7]:
            assert open_alerts(wh).shape[0] == 1
            reconcile(wh, [_finding(None)], d, clear_runs=3)
        rows = all_alerts(wh)
    finally:
        wh.close()
    assert len(rows) == 1 and rows.iloc[0]["closed_at"] == day[6]
    assert rows.iloc[0]["last_seen"] == day[3]


def test_a_warning_that_becomes_an_alert_opens_the_alert(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        assert [f.level for f in reconcile(wh, [_finding("warning")], T0)] == ["warning"]
        new = reconcile(wh, [_finding("alert")], T0 + timedelta(days=1))
        assert [f.level for f in new] == ["alert"]
        # an open alert that falls back to warning level stays the open alert
        assert reconcile(wh, [_finding("warning")], T0 + timedelta(days=2)) == []
        rows = all_alerts(wh)
    finally:
        wh.close()
    assert list(rows["level"]) == ["warning", "alert"]
    assert rows.iloc[0]["closed_at"] == T0 + timedelta(days=1)
    assert pd.isna(rows.iloc[1]["closed_at"])


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({"type": self.headers["Content-Type"], **json.loads(body)})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def test_the_webhook_posts_slack_compatible_json_to_a_local_server() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        status = post_webhook(url, payload(_finding("alert", "AUM"), T0, "m1"))
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    (got,) = _Hook.received
    assert got["type"] == "application/json"
    assert "feature_drift on AUM" in got["text"]  # Slack shows `text`
    assert got["alert"]["rule"] == "feature_drift" and got["alert"]["date"] == "2025-11-02"


def test_a_failing_webhook_is_recorded_not_raised() -> None:
    from leadscore.monitor.run import notify

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    port = server.server_address[1]
    server.server_close()  # nothing listens on this port any more
    errors = notify(f"http://127.0.0.1:{port}/hook", [_finding("alert")], T0, "m1")
    assert len(errors) == 1 and errors[0].startswith("feature_drift/x")
    assert notify(None, [_finding("alert")], T0, "m1") == []
