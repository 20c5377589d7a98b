"""The experiment on a real (small) warehouse: KPI SQL against a pandas oracle, the plan measured
from the data, assignment persisted and reproducible, monitoring, analysis and the CLI.

The session's small world is copied into a project of its own, so the ``ab_*`` tables written
here never reach the other tests' warehouse.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import SmallWorld
from leadscore.catalog import load_catalog
from leadscore.cli import app
from leadscore.config import Settings, load_settings
from leadscore.experiment.assign import ASSIGNMENTS, assign_new, assignments, lead_arms
from leadscore.experiment.kpi import lead_outcomes
from leadscore.experiment.monitor import monitor_experiment
from leadscore.experiment.power import plan_experiment
from leadscore.warehouse import open_warehouse, tables


@dataclass(frozen=True)
class Project:
    root: Path
    cfg: Settings
    as_of: datetime


def _project(small_world: SmallWorld, root: Path, unit: str) -> Project:
    shutil.copytree(small_world.project, root)
    cfg0 = load_settings(root / "leadscore.toml")
    assert cfg0.dataset.as_of is not None
    start = cfg0.dataset.as_of - timedelta(days=150)
    with open(root / "leadscore.toml", "a") as fh:
        fh.write(f'[experiment]\nunit = "{unit}"\nstart = "{start.isoformat()}"\n')
    cfg = load_settings(root / "leadscore.toml")
    return Project(root, cfg, cfg0.dataset.as_of)


@pytest.fixture(scope="module")
def project(small_world: SmallWorld, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return _project(small_world, tmp_path_factory.mktemp("exp") / "project", "lead")


def _crm(cfg: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    wh = open_warehouse(cfg.warehouse)
    try:
        leads = wh.query(f"SELECT * FROM {tables.LEADS}").to_pandas()
        tasks = wh.query(f"SELECT * FROM {tables.TASKS}").to_pandas()
    finally:
        wh.close()
    return leads, tasks


def test_kpi_sql_matches_a_pandas_oracle(project: Project) -> None:
    leads, tasks = _crm(project.cfg)
    as_of = pd.Timestamp(project.as_of)
    window = pd.Timedelta(days=30)
    leads = leads[leads["Stage_Entered_Contacting__c"] <= as_of]
    call = leads["Stage_Entered_Call_Scheduled__c"]
    contact = leads["Stage_Entered_Contacting__c"]
    leads = leads[call.isna() | (call >= contact)]
    expected = {}
    dials = tasks[tasks["Type"] == "Call"].groupby("WhoId")["CreatedDate"].apply(list)
    for row in leads.itertuples():
        c, m = row.Stage_Entered_Contacting__c, row.Stage_Entered_Call_Scheduled__c
        m = m if pd.notna(m) and m <= as_of else None
        times = dials.get(row.Id, [])
        n = sum(c <= t <= c + window and t <= as_of and (m is None or t <= m) for t in times)
        mql = int(m is not None and m <= c + window)
        expected[row.Id] = (mql, n, bool(c + window <= as_of))
    wh = open_warehouse(project.cfg.warehouse)
    try:
        got = lead_outcomes(wh, project.cfg.crm, project.as_of)
    finally:
        wh.close()
    assert len(got) == len(expected)
    actual = {r.lead_id: (r.mql, r.n_dials, bool(r.matured)) for r in got.itertuples()}
    assert actual == expected
    assert got["mql"].sum() > 20 and got["n_dials"].sum() > 1000


def test_plan_is_measured_from_the_warehouse(project: Project) -> None:
    wh = open_warehouse(project.cfg.warehouse)
    try:
        outcomes = lead_outcomes(wh, project.cfg.crm, project.as_of)
    finally:
        wh.close()
    plan = plan_experiment(outcomes, project.as_of, project.cfg.experiment)
    matured = outcomes[outcomes["matured"]]
    recent = matured[matured["contact_ts"] > matured["contact_ts"].max() - pd.Timedelta(weeks=26)]
    assert plan.baseline_rate == pytest.approx(recent["mql"].mean(), abs=1e-5)
    since = pd.Timestamp(project.as_of) - pd.Timedelta(weeks=13)
    assert plan.weekly_leads == pytest.approx(
        (outcomes["contact_ts"] > since).sum() / 13, abs=0.05
    )
    lead_full, lead_60 = plan.design("lead", 1.0), plan.design("lead", 0.6)
    assert lead_full.leads_per_arm and lead_60.leads_per_arm
    assert 2 < lead_60.leads_per_arm / lead_full.leads_per_arm < 3.2  # ~1 / 0.6^2
    sga_full = plan.design("sga", 1.0)
    assert sga_full.leads_per_arm is None or sga_full.leads_per_arm >= lead_full.leads_per_arm
    assert "NOT enough" in plan.verdict  # ~12 leads a week at this scale


def test_plan_json_from_the_cli(project: Project) -> None:
    result = CliRunner().invoke(
        app, ["experiment", "plan", "--json", "--config", str(project.root / "leadscore.toml")]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["baseline_rate"] > 0 and out["weekly_leads"] > 0
    combos = {(d["unit"], d["adoption"]) for d in out["designs"]}
    assert combos == {("lead", 1.0), ("lead", 0.6), ("sga", 1.0), ("sga", 0.6)}
    assert all({"unit", "adoption", "leads_per_arm", "weeks"} <= set(d) for d in out["designs"])


def test_assignment_is_persisted_blocked_and_reproducible(project: Project) -> None:
    cfg = project.cfg
    wh = open_warehouse(cfg.warehouse)
    try:
        first = assign_new(wh, cfg, project.as_of)
        again = assign_new(wh, cfg, project.as_of)
        rows = assignments(wh, cfg.experiment.experiment_id)
        wh.execute(f"DROP TABLE {ASSIGNMENTS}")
        assign_new(wh, cfg, project.as_of)
        redo = assignments(wh, cfg.experiment.experiment_id)
    finally:
        wh.close()
    assert first.n_new == first.n_total > 100 and again.n_new == 0
    tiers = set(load_catalog().segments[0].values)
    assert set(rows["stratum"]) <= tiers
    for counts in first.by_stratum_arm.values():
        assert abs(counts.get("treatment", 0) - counts.get("control", 0)) <= 1
    assert rows[["unit_id", "arm"]].equals(redo[["unit_id", "arm"]])


def test_monitor_reports_arms_srm_and_balance(project: Project) -> None:
    cfg = project.cfg
    wh = open_warehouse(cfg.warehouse)
    try:
        if not wh.table_exists(ASSIGNMENTS):
            assign_new(wh, cfg, project.as_of)
        result = monitor_experiment(wh, cfg, project.as_of)
        n_assigned = len(assignments(wh, cfg.experiment.experiment_id))
    finally:
        wh.close()
    arms = {a.arm: a for a in result.arms}
    assert 0 < n_assigned - sum(a.leads for a in arms.values()) <= 10  # data-error leads out
    assert all(
        a.matured_leads <= a.leads and a.ci_low <= a.mqls_per_100_dials for a in arms.values()
    )
    assert not result.srm.flagged
    names = {b["covariate"] for b in result.balance}
    assert {"feature_availability", "crd_match"} <= names
    assert any(str(n).startswith("aum_tier=") for n in names)
    assert result.adoption["sga_days"] == 0  # no scores in this world yet


def test_analyze_writes_the_report_page(project: Project) -> None:
    config = str(project.root / "leadscore.toml")
    runner = CliRunner()
    assert runner.invoke(app, ["experiment", "assign", "--config", config]).exit_code == 0
    result = runner.invoke(app, ["experiment", "analyze", "--config", config])
    assert result.exit_code == 0, result.output
    out = project.cfg.project.reports_dir / "experiment"
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["status"] in {"running", "stopped_early", "final"}
    assert len(analysis["looks"]) == 4
    section = (out / "section.html").read_text()
    assert section.startswith('<section id="experiment">')
    assert "data:image/png;base64," in section
    assert (out / "looks.png").stat().st_size > 1000
    assert "Verdict" in (out / "report.md").read_text()


def test_sga_assignment_gives_every_lead_its_owners_arm(
    small_world: SmallWorld, tmp_path: Path
) -> None:
    proj = _project(small_world, tmp_path / "sga", "sga")
    wh = open_warehouse(proj.cfg.warehouse)
    try:
        result = assign_new(wh, proj.cfg, proj.as_of)
        arms = lead_arms(wh, proj.cfg)
        owners = wh.query(f"SELECT Id AS lead_id, OwnerId FROM {tables.LEADS}").to_pandas()
    finally:
        wh.close()
    assert result.n_total == 20 and result.by_arm == {"treatment": 10, "control": 10}
    merged = arms.merge(owners, on="lead_id")
    assert (merged.groupby("OwnerId")["arm"].nunique() == 1).all()
    assert np.isclose((merged["arm"] == "treatment").mean(), 0.5, atol=0.15)


def test_cli_errors_are_one_line(project: Project, tmp_path: Path) -> None:
    config = tmp_path / "leadscore.toml"
    config.write_text('[dataset]\nas_of = "2025-11-01T00:00:00Z"\n[experiment]\nlooks = [0.5]\n')
    result = CliRunner().invoke(app, ["experiment", "plan", "--config", str(config)])
    assert result.exit_code == 1
    assert "experiment.looks" in result.output and "Traceback" not in result.output
