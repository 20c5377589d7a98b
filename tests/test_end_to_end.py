"""End to end on a small synthetic world: exact planted counts, leakage, and the CLI pipeline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browser import chromium as _chromium
from conftest import SmallWorld
from leadscore.catalog import load_catalog
from leadscore.cli import app
from leadscore.config import load_settings
from leadscore.dataset import build_training_set
from leadscore.warehouse import open_warehouse

#: build's exclusion reasons and the generator's planted labels name the same cases
REASON_TO_PLANTED = {
    "crd_missing": "crd_missing",
    "crd_malformed": "crd_malformed",
    "crd_not_found": "crd_unknown",
    "no_snapshot_yet": "no_snapshot",
}


def _build(world: SmallWorld, join: str) -> object:
    cfg = load_settings(world.project / "leadscore.toml")
    wh = open_warehouse(cfg.warehouse)
    try:
        return build_training_set(wh, cfg, load_catalog(), join=join)  # type: ignore[arg-type]
    finally:
        wh.close()


def test_build_removes_exactly_what_the_generator_planted(small_world: SmallWorld) -> None:
    build = _build(small_world, "asof")
    planted = small_world.planted
    labels = planted["planted_label_counts"]
    for reason, label in REASON_TO_PLANTED.items():
        assert build.excluded.get(reason, 0) == labels.get(label, 0), reason  # type: ignore[attr-defined]
    assert build.n_negative_days == labels.get("negative_days", 0)  # type: ignore[attr-defined]
    assert build.n_censored == planted["n_right_censored"]  # type: ignore[attr-defined]
    assert build.n_rows == planted["n_eligible"]  # type: ignore[attr-defined]
    assert build.n_positives == planted["n_converted_30d_eligible"]  # type: ignore[attr-defined]
    assert build.n_contacted == planted["n_leads"]  # type: ignore[attr-defined]


def test_asof_join_has_no_leakage_and_quarter_join_does(small_world: SmallWorld) -> None:
    from leadscore.validate.checks import check_leakage

    cfg = load_settings(small_world.project / "leadscore.toml")
    wh = open_warehouse(cfg.warehouse)
    try:
        for join, table in (("asof", "training_set"), ("quarter", "training_set_quarter")):
            build_training_set(wh, cfg, load_catalog(), join=join)  # type: ignore[arg-type]
            df = wh.query(f"SELECT * FROM {table}").to_pandas()
            leak = check_leakage(df, join).figures["leakage_records_matched"]
            assert (leak == 0) if join == "asof" else (leak > 0), join
    finally:
        wh.close()


# ``finished_run`` (the whole pipeline through the CLI, once per session) is in conftest.py


def test_run_writes_summary_with_the_promised_figures(finished_run: Path) -> None:
    summary = json.loads((finished_run / "summary.json").read_text())
    for key in (
        "n_training_rows", "n_positives", "leakage_records_matched", "holdout_aucpr",
        "holdout_auc_roc", "oracle_aucpr", "ece_overall", "ece_by_tier", "gates", "n_scored",
        "n_rejected", "as_of", "report_path", "stage_seconds",
    ):  # fmt: skip
        assert key in summary, key
    assert summary["leakage_records_matched"] == 0
    assert summary["quarter_join_leakage_records_matched"] > 0
    assert summary["n_scored"] > 0 and summary["n_rejected"] > 0
    assert set(summary["stage_seconds"]) >= {"build+validate", "train", "explain", "score"}
    assert Path(summary["report_path"]).exists()


def test_report_is_self_contained(finished_run: Path) -> None:
    html = (finished_run / "reports" / "report.html").read_text()
    for section in ("verdict", "data", "classes", "model", "drivers", "scores", "provenance"):
        assert f'id="{section}"' in html
    assert "data:image/png;base64," in html
    assert 'src="http' not in html and "<link" not in html


def test_a_failed_model_gate_stops_run_with_exit_2(
    small_world: SmallWorld, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(small_world.project, project)
    config = project / "leadscore.toml"
    config.write_text(config.read_text().replace("[gates]", "") + "[gates]\nmin_aucpr = 0.99\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "GATE FAILED" in result.output and "min_aucpr" in result.output
    assert "0.99" in result.output
    html = (project / "reports" / "report.html").read_text()
    assert "Stop." in html and "min_aucpr" in html


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="run scripts/ensure-chromium.sh")
def test_report_renders_in_headless_chromium(finished_run: Path, tmp_path: Path) -> None:
    url = (finished_run / "reports" / "report.html").as_uri()
    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,2400", url)
    assert shot.stat().st_size > 10_000
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", url).stdout
    for section in ("verdict", "data", "classes", "model", "drivers", "scores", "provenance"):
        assert f'id="{section}"' in dom
    images = re.search(r'data-images="(\d+)"', dom)
    broken = re.search(r'data-broken-images="(\d+)"', dom)
    assert images and broken, "the page's load handler did not run"
    assert int(images.group(1)) >= 5
    assert broken.group(1) == "0"


def test_dials_count_only_inside_the_kpi_window(
    small_world: SmallWorld, finished_run: Path
) -> None:
    """MQLs per 100 dials counts dials in [contact, contact + window], none after the MQL."""
    import numpy as np
    import pandas as pd

    from leadscore.pipeline import read_dials, read_training_frame

    cfg = load_settings(finished_run / "leadscore.toml")
    wh = open_warehouse(cfg.warehouse)
    try:
        counted = read_dials(wh, cfg)
        leads = read_training_frame(wh)[["lead_id", "contact_ts", "converted_ts"]]
    finally:
        wh.close()
    tasks = pd.read_csv(small_world.raw / "crm" / "Task.csv", dtype=str)
    tasks["ts"] = pd.to_datetime(tasks["CreatedDate"], utc=True)
    joined = tasks.merge(leads, left_on="WhoId", right_on="lead_id")
    window = pd.Timedelta(days=cfg.dataset.label_window_days)
    after_mql = joined["converted_ts"].notna() & (joined["converted_ts"] >= joined["contact_ts"])
    after_mql &= joined["ts"] > joined["converted_ts"]
    inside = (joined["ts"] >= joined["contact_ts"]) & (
        joined["ts"] <= joined["contact_ts"] + window
    )
    expected = joined[inside & ~after_mql].groupby("lead_id").size()
    expected = expected.reindex(leads["lead_id"], fill_value=0)
    assert counted.reindex(leads["lead_id"]).to_numpy().tolist() == expected.to_numpy().tolist()
    # the world has dials the KPI must leave out, so counting every Task row would differ
    assert len(joined) > int(np.sum(expected)) > 0
    assert (~inside).sum() > 0 and after_mql.sum() > 0
