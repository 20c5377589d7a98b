"""Monitoring on a small world with a future: the reference in the bundle, the daily hook,
the ``monitor`` command and ``summary.json``'s alerts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_project_config
from leadscore.bundle import load_bundle
from leadscore.cli import app
from leadscore.config import load_settings
from leadscore.daily.commands import stage_fallback
from leadscore.daily.simulate import stage_simulate
from leadscore.monitor.reference import REFERENCE_FILE, SCORE_FEATURE
from leadscore.monitor.run import load_reference
from leadscore.monitor.scenarios import record_alerts
from leadscore.pipeline import latest_bundle_path, stage_build, stage_ingest, stage_train
from leadscore.warehouse import open_warehouse

SCALE = 0.02
DAYS = 5


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small world, trained, with its fallback, then DAYS daily runs."""
    from leadscore.synthetic import generate_world

    root = tmp_path_factory.mktemp("monitor")
    raw = root / "raw"
    generate_world(raw, scale=SCALE, seed=42, future_days=DAYS + 1)
    manifest = json.loads((raw / "manifest.json").read_text())
    manifest["_raw"] = str(raw)
    proj = root / "project"
    proj.mkdir()
    cfg = load_settings(write_project_config(proj, manifest, "[monitor]\nmin_sample = 50\n"))
    stage_ingest(cfg, raw)
    stage_build(cfg)
    stage_train(cfg, override_reason="small test world")
    stage_fallback(cfg)
    stage_simulate(cfg, DAYS, raw)
    return proj


def test_the_bundle_carries_a_checksummed_reference(project: Path) -> None:
    cfg = load_settings(project / "leadscore.toml")
    bundle = load_bundle(latest_bundle_path(cfg))
    assert REFERENCE_FILE in bundle.manifest["files"]
    ref = load_reference(bundle.path)
    assert ref is not None
    assert set(bundle.features) <= set(ref["features"]) and SCORE_FEATURE in ref["features"]
    for spec in ref["features"].values():
        assert sum(spec["shares"]) == pytest.approx(1.0)
    assert 0 < ref["positive_rate"] < 1 and ref["positive_rate_by_segment"]
    assert ref["expected"]["holdout_aucpr"] == bundle.metrics["holdout"]["aucpr"]


def test_each_daily_run_bins_its_scores_and_writes_a_monitor_record(project: Path) -> None:
    cfg = load_settings(project / "leadscore.toml")
    wh = open_warehouse(cfg.warehouse)
    try:
        bins = wh.query("SELECT * FROM monitor_bins").to_pandas()
        scored = wh.query(
            "SELECT count(*) AS n FROM lead_scores WHERE run_id LIKE 'daily-%' "
            f"AND model_version = '{latest_bundle_path(cfg).name}'"
        ).to_pylist()[0]["n"]
    finally:
        wh.close()
    per_lead = bins.groupby("lead_id")["feature"].nunique()
    assert len(per_lead) == scored > 0
    assert per_lead.nunique() == 1  # every lead binned on every reference feature
    records = sorted((cfg.project.reports_dir / "monitor").glob("monitor_*.json"))
    assert len(records) == DAYS
    last = json.loads(records[-1].read_text())
    rules = {f["rule"] for f in last["findings"]}
    assert {"scoring_failures", "feature_drift", "data_freshness"} <= rules
    est = last["figures"]["estimate_unlabelled"]
    assert est["n"] > 0
    low, high = est["top_decile_precision"]["low"], est["top_decile_precision"]["high"]
    assert 0 <= low <= est["top_decile_precision"]["value"] <= high <= 1


def test_the_monitor_command_and_summary_alerts(project: Path) -> None:
    cfg = load_settings(project / "leadscore.toml")
    as_of = cfg.dataset.as_of
    assert as_of is not None
    day = (as_of + timedelta(days=DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = CliRunner().invoke(
        app, ["monitor", "--as-of", day, "-c", str(project / "leadscore.toml")]
    )
    assert result.exit_code == 0, result.output
    assert "new alerts" in result.output
    alerts = record_alerts(cfg)["alerts"]
    summary = json.loads((project / "summary.json").read_text())
    assert summary["alerts"] == alerts
    for a in alerts:
        assert {"date", "rule", "subject", "value", "threshold"} <= set(a)
    assert isinstance(pd.DataFrame(alerts), pd.DataFrame)
