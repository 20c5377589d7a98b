"""Daily operation on a small world with a future: fallback, once-per-version scoring, the call
list, re-runs, backfill refusal, shadow mode, and the simulation's targets."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_project_config
from leadscore.cli import app
from leadscore.config import Settings, load_settings
from leadscore.daily.commands import stage_daily, stage_fallback
from leadscore.daily.fallback import FallbackError, load_fallback
from leadscore.daily.run import DailyError
from leadscore.daily.simulate import stage_simulate
from leadscore.daily.store import DAILY_EVENTS, call_list
from leadscore.ingest.schema import LEAD_COLUMNS
from leadscore.pipeline import (
    latest_bundle_path,
    stage_build,
    stage_ingest,
    stage_score,
    stage_train,
)
from leadscore.warehouse import open_warehouse

SCALE = 0.02
DAYS = 8


@dataclass(frozen=True)
class Project:
    root: Path
    raw: Path
    as_of: datetime


def _cfg(project: Path) -> Settings:
    return load_settings(project / "leadscore.toml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A world with a future, ingested, built, trained, with a fallback and scored at as_of."""
    from leadscore.synthetic import generate_world

    root = tmp_path_factory.mktemp("daily")
    raw = root / "raw"
    generate_world(raw, scale=SCALE, seed=42, future_days=DAYS + 2)
    manifest = json.loads((raw / "manifest.json").read_text())
    manifest["_raw"] = str(raw)
    project = root / "project"
    project.mkdir()
    cfg = load_settings(write_project_config(project, manifest))
    stage_ingest(cfg, raw)
    stage_build(cfg)
    stage_train(cfg, override_reason="small test world")
    stage_fallback(cfg)
    as_of = cfg.dataset.as_of
    assert as_of is not None
    stage_score(cfg, as_of)
    return Project(project, raw, as_of)


def _copy(project: Project, dest: Path) -> Project:
    shutil.copytree(project.root, dest)
    return Project(dest, project.raw, project.as_of)


def _query(cfg: Settings, sql: str) -> pd.DataFrame:
    wh = open_warehouse(cfg.warehouse)
    try:
        return wh.query(sql).to_pandas()
    finally:
        wh.close()


def test_the_fallback_is_trained_on_unmatched_leads_and_checksummed(trained: Project) -> None:
    cfg = _cfg(trained.root)
    path = latest_bundle_path(cfg)
    model = load_fallback(path)
    assert model.version == f"{path.name}-fallback"
    assert model.metrics["n_unmatched_rows"] > 0 and model.metrics["n_holdout"] > 0
    assert 0 <= model.metrics["holdout_aucpr"] <= 1 and 0 <= model.metrics["holdout_ece"] <= 1
    report = json.loads((cfg.project.reports_dir / "fallback" / "metrics.json").read_text())
    assert report["main"]["holdout_aucpr"] is not None  # reported beside the main model's
    saturday = pd.DataFrame({"Day_of_Contact": [6], "Is_Weekend_Contact": [True]})
    assert 0 < model.predict_proba(saturday)[0] < 1
    target = path.with_name(path.name + ".fallback") / "fallback.json"
    target.write_text(target.read_text().replace('"intercept": ', '"intercept": 1'))
    with pytest.raises(FallbackError, match="checksum"):
        load_fallback(path)
    stage_fallback(cfg)  # rewrite it for the other tests
    assert load_fallback(path).version == model.version


def test_simulated_days_meet_the_targets(trained: Project, tmp_path: Path) -> None:
    project = _copy(trained, tmp_path / "sim")
    cfg = _cfg(project.root)
    result = stage_simulate(cfg, DAYS, project.raw)
    checks = result["daily_checks"]
    assert checks["passed"], checks
    assert checks["n_lead_versions_scored_twice"] == 0
    assert checks["n_leads_rejected_twice_same_reason"] == 0
    days = result["daily"]
    assert [d["date"] for d in days][:2] == ["2025-11-02", "2025-11-03"] and len(days) == DAYS
    for day in days:
        assert {"date", "n_considered", "n_scored", "n_fallback", "n_rejected",
                "success_rate", "seconds"} <= set(day)  # fmt: skip
    summary = json.loads((project.root / "summary.json").read_text())
    assert summary["daily"] == days
    # every open lead has a score, and the upsert files carry new rows only (no repeats)
    exported = []
    for path in sorted((cfg.project.reports_dir / "daily").glob("salesforce_upsert_*.csv")):
        with open(path) as fh:
            exported += [(r["Id"], r["Lead_Score_Model_Version__c"]) for r in csv.DictReader(fh)]
    assert len(exported) == len(set(exported)) > 0
    # a re-run of the last day is safe: nothing is scored again
    last = datetime.fromisoformat(days[-1]["date"] + "T00:00:00+00:00")
    before = len(_query(cfg, f"SELECT * FROM {DAILY_EVENTS}"))
    again = stage_daily(
        cfg, last, raw=project.raw / "future" / (last - timedelta(days=1)).date().isoformat()
    )
    assert again.score.n_scored_main + again.score.n_scored_fallback == 0
    assert len(_query(cfg, f"SELECT * FROM {DAILY_EVENTS}")) == before
    with pytest.raises(DailyError, match="earlier than the last daily run"):
        stage_daily(cfg, last - timedelta(days=3))
    stage_daily(cfg, last - timedelta(days=3), backfill=True)


def _delta(folder: Path, rows: list[dict[str, str]]) -> Path:
    (folder / "crm").mkdir(parents=True)
    with open(folder / "crm" / "Lead.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(LEAD_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _sf(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def test_a_corrected_crd_moves_a_lead_from_fallback_to_the_main_model(
    trained: Project, tmp_path: Path
) -> None:
    project = _copy(trained, tmp_path / "fix")
    cfg = _cfg(project.root)
    day1 = project.as_of + timedelta(days=1)
    first = stage_daily(cfg, day1)  # no delivery: unmatched open leads get fallback scores
    assert first.score.n_scored_fallback > 0 and first.n_open_unscored == 0
    listed = call_list_frame(cfg, day1, first.model_version)
    fb = listed[listed["flag"].notna()].iloc[0]
    assert fb["flag"].startswith("no_vendor_data: ") and "No vendor data" in fb["drivers_text"]
    lead = _query(cfg, f"SELECT * FROM crm_leads WHERE Id = '{fb['lead_id']}'").iloc[0]
    crd = _query(
        cfg,
        "SELECT RepCRD FROM v_discovery_reps_all_vintages WHERE available_at <= "
        f"'{lead['Stage_Entered_Contacting__c'].isoformat()}' ORDER BY RepCRD LIMIT 1",
    ).iloc[0]["RepCRD"]
    converted = listed[listed["flag"].isna()].iloc[0]
    other = _query(cfg, f"SELECT * FROM crm_leads WHERE Id = '{converted['lead_id']}'").iloc[0]
    modified = day1 + timedelta(hours=10)
    rows = [_row(lead, FA_CRD__c=str(crd), LastModifiedDate=_sf(modified)),
            _row(other, Stage_Entered_Call_Scheduled__c=_sf(modified),
                 LastModifiedDate=_sf(modified), Status="Call Scheduled")]  # fmt: skip
    day2 = day1 + timedelta(days=1)
    run = stage_daily(cfg, day2, raw=_delta(tmp_path / "delta", rows))
    assert run.score.n_retried == 1 and run.score.n_scored_main >= 1
    events = _query(cfg, f"SELECT * FROM {DAILY_EVENTS} WHERE lead_id = '{fb['lead_id']}'")
    assert sorted(events["event"]) == ["fallback", "scored"]  # one lead with a history
    now = call_list_frame(cfg, day2, run.model_version).set_index("lead_id")
    assert now.loc[fb["lead_id"], "model_version"] == run.model_version
    assert pd.isna(now.loc[fb["lead_id"], "flag"])
    assert converted["lead_id"] not in now.index  # left the call list the day it converted


def _row(lead: pd.Series, **changes: str) -> dict[str, str]:
    out = {}
    for col in LEAD_COLUMNS:
        value = lead[col]
        out[col] = "" if value is None or pd.isna(value) else (
            _sf(value) if isinstance(value, datetime) else str(value))  # fmt: skip
    return out | changes


def call_list_frame(cfg: Settings, as_of: datetime, version: str) -> pd.DataFrame:
    wh = open_warehouse(cfg.warehouse)
    try:
        return call_list(wh, cfg, as_of, version)
    finally:
        wh.close()


def test_shadow_runs_store_flagged_scores_and_export_nothing(
    trained: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _copy(trained, tmp_path / "shadow")
    monkeypatch.chdir(project.root)
    day = (project.as_of + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    folder = project.raw / "future" / project.as_of.date().isoformat()
    runner = CliRunner()
    result = runner.invoke(app, ["daily", "--as-of", day, "--raw", str(folder), "--shadow"])
    assert result.exit_code == 0, result.output
    cfg = _cfg(project.root)
    rows = _query(cfg, "SELECT * FROM lead_scores WHERE shadow")
    assert len(rows) > 0 and rows["sf_export_run_id"].str.startswith("shadow:").all()
    assert not list((cfg.project.reports_dir / "daily").glob("salesforce_upsert_*"))
    assert runner.invoke(app, ["calls", "--as-of", day]).exit_code == 0
    calls = pd.read_csv(cfg.project.reports_dir / "daily" / "calls_20251102.csv", dtype=str)
    assert not set(rows.loc[rows["model_version"].str.endswith("fallback"), "lead_id"]) & set(
        calls["lead_id"]
    )  # shadow scores never reach the call list
    report = runner.invoke(app, ["shadow-report", "--days", "7"])
    assert report.exit_code == 0 and "shadow gate" in report.output
    data = json.loads((cfg.project.reports_dir / "daily" / "shadow_report.json").read_text())
    assert data["mode"] == "shadow" and data["days"] == 1
    refused = runner.invoke(app, ["daily", "--as-of", "2025-10-01T00:00:00Z"])
    assert refused.exit_code == 1 and "--backfill" in refused.output
    missing = runner.invoke(app, ["daily", "--as-of", day, "--raw", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "delivery folder not found" in missing.output


def test_a_rejected_lead_is_retried_only_when_its_record_changes(
    trained: Project, tmp_path: Path
) -> None:
    from leadscore.daily.store import ensure_daily_tables, select_candidates

    project = _copy(trained, tmp_path / "reject")
    cfg = _cfg(project.root)
    day1 = project.as_of + timedelta(days=1)
    version = latest_bundle_path(cfg).name
    wh = open_warehouse(cfg.warehouse)
    try:
        ensure_daily_tables(wh)
        wh.execute("DELETE FROM lead_scores WHERE lead_id IN (SELECT Id FROM crm_leads "
                   "ORDER BY Stage_Entered_Contacting__c DESC LIMIT 1)")  # fmt: skip
        lead = wh.query(
            "SELECT Id FROM crm_leads ORDER BY Stage_Entered_Contacting__c DESC LIMIT 1"
        ).to_pylist()[0]["Id"]
        wh.execute(
            "INSERT INTO score_rejects VALUES "
            f"('{lead}', '{version}', 'r0', 'contract_violation', 'x out of range', NULL, "
            f"'{day1.isoformat()}')"
        )
        ids = set(select_candidates(wh, cfg, day1, version, version + "-fallback")["lead_id"])
        assert lead not in ids  # rejected once: not tried again while nothing changed
        later = (day1 + timedelta(hours=1)).isoformat()
        wh.execute(f"UPDATE crm_leads SET LastModifiedDate = '{later}' WHERE Id = '{lead}'")
        day2 = day1 + timedelta(days=1)
        retry = select_candidates(wh, cfg, day2, version, version + "-fallback")
        assert retry.set_index("lead_id").loc[lead, "why"] == "retry"
    finally:
        wh.close()


def test_a_vintage_that_knows_an_unknown_crd_moves_the_lead_to_the_main_model(
    trained: Project, tmp_path: Path
) -> None:
    project = _copy(trained, tmp_path / "late")
    cfg = _cfg(project.root)
    day1 = project.as_of + timedelta(days=1)
    first = stage_daily(cfg, day1)
    listed = call_list_frame(cfg, day1, first.model_version)
    unknown = listed[listed["flag"].str.startswith("no_vendor_data", na=False)].iloc[0]["lead_id"]
    lead = _query(cfg, f"SELECT * FROM crm_leads WHERE Id = '{unknown}'").iloc[0]
    crd = "9999991"  # a CRD no vintage available at the lead's contact holds
    changed = day1 + timedelta(hours=3)
    rows = [_row(lead, FA_CRD__c=crd, LastModifiedDate=_sf(changed))]
    day2 = day1 + timedelta(days=1)
    kept = stage_daily(cfg, day2, raw=_delta(tmp_path / "fix", rows))
    assert kept.score.n_retried == 1 and kept.score.n_kept_fallback == 1
    flag = (
        call_list_frame(cfg, day2, first.model_version).set_index("lead_id").loc[unknown, "flag"]
    )
    assert flag == "no_vendor_data: crd_not_found"  # the reason is kept current
    quiet = stage_daily(cfg, day2 + timedelta(hours=12))  # nothing new: not retried again
    assert quiet.score.n_retried == 0
    # a new vintage (2025-10-01), delivered after the lead's contact, knows the advisor
    delivered = (day2 + timedelta(hours=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for kind in ("reps", "firms"):
        frame = pd.read_csv(project.raw / "vendor" / f"{kind}_2025_q3.csv", dtype=str,
                            keep_default_na=False)  # fmt: skip
        frame["snapshot_as_of"], frame["processed_at"] = "2025-10-01", delivered
        if kind == "reps":
            frame.loc[0, "RepCRD"] = crd
        (tmp_path / "vintage" / "vendor").mkdir(parents=True, exist_ok=True)
        frame.to_csv(tmp_path / "vintage" / "vendor" / f"{kind}_2025_q4.csv", index=False)
    day3 = day2 + timedelta(days=1)  # the vintage arrives after the quiet run
    run = stage_daily(cfg, day3, raw=tmp_path / "vintage")  # no lead changed: the vintage did
    assert run.score.n_retried >= 1
    events = _query(cfg, f"SELECT event FROM {DAILY_EVENTS} WHERE lead_id = '{unknown}'")
    assert sorted(events["event"]) == ["fallback", "kept", "scored"]  # one lead, a history
    row = call_list_frame(cfg, day3, run.model_version).set_index("lead_id").loc[unknown]
    assert row["model_version"] == run.model_version
    assert row["flag"] == "vendor_data_after_contact: vintage 2025-10-01"
    # features stay at the contact time: the weekday is the contact's
    score = _query(cfg, f"SELECT * FROM lead_scores WHERE lead_id = '{unknown}' AND "
                   f"model_version = '{run.model_version}'")  # fmt: skip
    assert score.iloc[0]["reps_snapshot_quarter"].isoformat() == "2025-10-01"


def _versions_of_run(cfg: Settings, run_id: str) -> set[str]:
    rows = _query(cfg, f"SELECT DISTINCT model_version FROM lead_scores WHERE run_id = '{run_id}'")
    return {v.removesuffix("-fallback") for v in rows["model_version"]}


def test_registry_lifecycle_through_daily_shadow_promote_rollback(
    trained: Project, tmp_path: Path
) -> None:
    """A challenger in the registry's shadow scores the same open leads (never exported);
    after promotion the daily run scores with it; after rollback with the old champion."""
    from leadscore.registry.lifecycle import promote, rollback
    from leadscore.registry.store import register, set_status

    project = _copy(trained, tmp_path / "lifecycle")
    cfg = _cfg(project.root)
    champion = latest_bundle_path(cfg)
    challenger = champion.with_name("v-challenger")
    shutil.copytree(champion, challenger)  # same weights under another name: a stand-in
    manifest = json.loads((challenger / "manifest.json").read_text())
    (challenger / "manifest.json").write_text(json.dumps({**manifest, "version": "v-challenger"}))
    day = [project.as_of + timedelta(days=k) for k in range(1, 5)]
    folder = [project.raw / "future" / (d - timedelta(days=1)).date().isoformat() for d in day]
    wh = open_warehouse(cfg.warehouse)
    try:
        register(wh, challenger, day[0])
        set_status(wh, "v-challenger", "shadow", "lifecycle test", day[0])
    finally:
        wh.close()
    # day 1: the champion scores and exports, the challenger shadows the same open leads
    run = stage_daily(cfg, day[0], raw=folder[0])
    assert run.model_version == champion.name
    assert _versions_of_run(cfg, run.run_id) <= {champion.name}
    shadow = _query(cfg, "SELECT * FROM lead_scores WHERE model_version = 'v-challenger'")
    open_now = call_list(open_warehouse(cfg.warehouse, read_only=True), cfg, day[0], champion.name)
    assert len(shadow) > 0 and shadow["shadow"].all()
    shadowed = _query(
        cfg, "SELECT lead_id FROM lead_scores WHERE model_version LIKE '%v-challenger'"
    )
    assert set(open_now["lead_id"]) <= set(shadowed["lead_id"])
    exported = {
        row["Lead_Score_Model_Version__c"]
        for path in (cfg.project.reports_dir / "daily").glob("salesforce_upsert_*.csv")
        for row in csv.DictReader(path.open())
    }
    assert exported and not any("challenger" in v for v in exported)
    # day 2: promoted, the challenger is the model that scores
    wh = open_warehouse(cfg.warehouse)
    try:
        promote(wh, cfg, "v-challenger", day[1], override_reason="lifecycle test")
    finally:
        wh.close()
    run = stage_daily(cfg, day[1], raw=folder[1])
    assert run.model_version == "v-challenger"
    assert _versions_of_run(cfg, run.run_id) <= {"v-challenger", f"{champion.name}"}
    # day 3: rolled back, the first champion scores again
    wh = open_warehouse(cfg.warehouse)
    try:
        rollback(wh, day[2], "lifecycle test")
    finally:
        wh.close()
    run = stage_daily(cfg, day[2], raw=folder[2])
    assert run.model_version == champion.name and latest_bundle_path(cfg) == champion
    assert _versions_of_run(cfg, run.run_id) <= {champion.name}


def test_a_changed_shadow_bundle_is_skipped_and_the_champion_run_stands(
    trained: Project, tmp_path: Path
) -> None:
    """A shadow model whose files changed after registration is refused for use, loudly, and
    the champion's day is still scored and exported."""
    from rich.console import Console

    from leadscore.registry.store import register, set_status

    project = _copy(trained, tmp_path / "tampered_shadow")
    cfg = _cfg(project.root)
    champion = latest_bundle_path(cfg)
    challenger = champion.with_name("v-broken")
    shutil.copytree(champion, challenger)
    manifest = json.loads((challenger / "manifest.json").read_text())
    (challenger / "manifest.json").write_text(json.dumps({**manifest, "version": "v-broken"}))
    day = project.as_of + timedelta(days=1)
    wh = open_warehouse(cfg.warehouse)
    try:
        register(wh, challenger, day)
        set_status(wh, "v-broken", "shadow", "tamper test", day)
    finally:
        wh.close()
    (challenger / "manifest.json").write_text(json.dumps({**manifest, "version": "v-broken2"}))
    console = Console(record=True, width=300)
    folder = project.raw / "future" / project.as_of.date().isoformat()
    run = stage_daily(cfg, day, raw=folder, console=console)
    assert run.model_version == champion.name and run.n_exported > 0
    assert "shadow skipped: model v-broken may not be used" in console.export_text()
    assert _query(cfg, "SELECT * FROM lead_scores WHERE model_version LIKE '%v-broken%'").empty
