"""The generic source: mapping, init, point-in-time join, leakage detector, whole run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.config import Settings
from leadscore.gates import GateFailed
from leadscore.generic.build import GenericContext, build_spine, level_counts, load_source
from leadscore.generic.catalog import catalog_from_mapping
from leadscore.generic.inspect import init_mapping
from leadscore.generic.leakage import detect_leakage
from leadscore.generic.mapping import FieldSpec, LeakageSettings, MappingError, load_mapping
from leadscore.generic.run import RANDOM_SPLIT_WARNING, run_generic, score_with_bundle
from leadscore.generic.synth import (
    AS_OF,
    CALENDAR_FIELDS,
    GENUINE_FIELDS,
    POST_OUTCOME_FIELDS,
    generate_crm_tables,
)
from leadscore.warehouse.duckdb import DuckDBWarehouse


def _settings(root: Path) -> Settings:
    cfg = Settings().resolve(root)
    train = cfg.train.model_copy(update={"n_trials": 2, "bootstrap_samples": 20, "cv_folds": 3})
    return cfg.model_copy(update={"train": train})


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory):
    return generate_crm_tables(tmp_path_factory.mktemp("crm"), n_leads=3000, seed=7)


@pytest.fixture(scope="module")
def spine(tables, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    mapping = load_mapping(tables.mapping)
    wh = DuckDBWarehouse(tmp_path_factory.mktemp("wh") / "w.duckdb")
    try:
        load_source(wh, mapping)
        catalog = catalog_from_mapping(mapping, level_counts(wh, mapping, None))
        return build_spine(wh, GenericContext(mapping, AS_OF, True), catalog)
    finally:
        wh.close()


def test_generator_is_seeded_and_drifts(tables, tmp_path: Path) -> None:
    again = generate_crm_tables(tmp_path, n_leads=3000, seed=7)
    assert again.leads_csv.read_bytes() == tables.leads_csv.read_bytes()
    assert tables.base_rate_last > 3 * tables.base_rate_first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[source]\ntable = "x.csv"\nid_col = "id"\nevent_ts_col = "t"\n', "outcome"),
        ('[source]\ntable = "x.csv"\nid_col = "id"\noutcome_flag_col = "y"\nbogus = 1\n', "bogus"),
        ('[source]\ntable = "x.csv"\nid_col = "id"\noutcome_flag_col = "y"\n[extra]\n', "extra"),
    ],
)
def test_mapping_is_strict(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=message):
        load_mapping(path)


def test_init_guesses_roles_and_kinds(tables, tmp_path: Path) -> None:
    path, guesses = init_mapping(tables.leads_csv, tmp_path / "m.toml")
    by_col = {g.column: g for g in guesses}
    assert by_col["Lead ID"].role == "id"
    assert by_col["created_at"].role == "event"
    assert by_col["mql_at"].role == "outcome_ts"
    kinds = {c: by_col[c].kind for c in ("Company Size", "Has LinkedIn", "First Touch Date")}
    assert kinds == {"Company Size": "numeric", "Has LinkedIn": "bool", "First Touch Date": "date"}
    assert by_col["Industry"].kind == "category"  # "Select" placeholders do not hide it
    text = path.read_text()
    assert "REVIEW" in text and text.count("review = true") == 13
    mapping = load_mapping(path)  # the starter mapping loads as it is
    assert (mapping.id_col, mapping.event_ts_col) == ("Lead ID", "created_at")
    with pytest.raises(ValueError, match="exists"):
        init_mapping(tables.leads_csv, path)


def test_junk_and_duplicates_are_counted(tables, tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        load = load_source(wh, load_mapping(tables.mapping))
    finally:
        wh.close()
    raw = pd.read_csv(tables.leads_csv, dtype=str, keep_default_na=False)
    junk = raw["Company Size"].isin(["approx 50", "Osseo"]).sum()
    assert junk > 0 and load.n_unparsed["Company_Size"] == junk
    assert load.n_placeholders["Lead_Source"] == (raw["Lead Source"] == "N/A").sum()
    assert load.n_duplicate_ids == raw["Lead ID"].duplicated().sum() > 0
    assert any("Company_Size" in w for w in load.warnings)


def test_placeholders_read_as_missing(spine: pd.DataFrame) -> None:
    assert not spine["Industry"].isin(["Select", "--Select--", ""]).any()
    assert not spine["Lead_Source"].isin(["N/A"]).any()
    assert spine["Industry"].isna().mean() > 0.15
    assert spine["Annual_Revenue"].isna().mean() > 0.7  # heavy missingness stays missing


def test_enrichment_join_matches_brute_force(tables, spine: pd.DataFrame) -> None:
    leads = pd.read_csv(tables.leads_csv, dtype=str).drop_duplicates("Lead ID")
    firmo = pd.read_csv(tables.enrichment_csv, dtype=str)
    firmo["available_at"] = pd.to_datetime(firmo["available_at"], utc=True)
    by_company = {k: g.sort_values("available_at") for k, g in firmo.groupby("company_id")}
    got = spine.set_index("lead_id")["firmo__growth_score"]
    for _, lead in leads.sample(300, random_state=1).iterrows():
        event = pd.Timestamp(lead["created_at"])
        rows = by_company[lead["company_id"]]
        seen = rows[rows["available_at"] <= event]
        want = float(seen["growth_score"].iloc[-1]) if len(seen) else np.nan
        assert got[lead["Lead ID"]] == pytest.approx(want, nan_ok=True)


def test_label_window_and_exclusions(spine: pd.DataFrame) -> None:
    train = spine[spine["exclusion_reason"].isna()]
    days = (train["outcome_ts"] - train["contact_ts"]).dt.total_seconds() / 86400
    assert (train["target"] == ((days >= 0) & (days <= 30)).astype(int)).all()
    recent = spine["contact_ts"] > pd.Timestamp(AS_OF) - pd.Timedelta(days=30)
    reasons = spine.loc[recent, "exclusion_reason"]
    assert reasons.notna().all() and (reasons == "right_censored").mean() > 0.95
    assert (spine["exclusion_reason"] == "negative_days").sum() > 0
    assert spine["lead_id"].is_unique


def test_leakage_flags_post_outcome_fields_not_calendar_proxies(tables, spine) -> None:
    mapping = load_mapping(tables.mapping)
    train = spine[spine["exclusion_reason"].isna()].reset_index(drop=True)
    report = detect_leakage(train, mapping.all_fields(), mapping.leakage, True, 42)
    assert set(report.flagged()) == set(POST_OUTCOME_FIELDS)
    assert set(report.calendar_proxies()) == set(CALENDAR_FIELDS)
    evidence = {f.field: f for f in report.fields}
    for name in ("Call_Duration_min", "Lead_Quality"):  # moderate strength, not 0.99
        assert 0.7 <= (evidence[name].auc_pooled or 0) <= 0.85
    for name in CALENDAR_FIELDS:
        assert (evidence[name].auc_pooled or 0) > 0.58
        assert abs((evidence[name].auc_within or 0) - 0.5) < 0.05
        assert (evidence[name].time_auc or 0) > 0.95
    assert not set(report.flagged()) & set(GENUINE_FIELDS)


def _steep_drift_frame(seed: int = 3) -> pd.DataFrame:
    """24 months, base rate 2% -> 60%: a monthly code predicts very well pooled."""
    rng = np.random.default_rng(seed)
    n = 6000
    month = np.sort(rng.integers(0, 24, n))
    rate = 0.02 + 0.58 * month / 23
    y = (rng.random(n) < rate).astype(int)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(month * 30 + rng.random(n), "D")
    return pd.DataFrame(
        {
            "contact_ts": ts,
            "target": y,
            "outcome_ts": pd.NaT,
            "campaign": [f"CMP-{m:02d}" for m in month],
            "macro": 100 + month * 0.5,
            "duration": np.exp(rng.normal(1.5 + 1.2 * y, 1.0)),
        }
    )


def test_calendar_proxy_strong_when_pooled_is_not_flagged() -> None:
    df = _steep_drift_frame()
    specs = [
        FieldSpec(column="campaign", kind="category"),
        FieldSpec(column="macro", kind="numeric"),
        FieldSpec(column="duration", kind="numeric"),
    ]
    report = detect_leakage(df, specs, LeakageSettings(), True, 0)
    evidence = {f.field: f for f in report.fields}
    assert (evidence["campaign"].auc_pooled or 0) > 0.70  # a pooled-AUC rule would flag it
    assert evidence["campaign"].pooled_rule_would_flag
    assert report.flagged() == ["duration"]
    assert set(report.calendar_proxies()) == {"campaign", "macro"}


def test_leakage_gate_stops_by_default(tables, tmp_path: Path) -> None:
    text = tables.mapping.read_text().replace('action = "drop"', 'action = "stop"')
    path = tables.mapping.parent / "stop.toml"
    path.write_text(text)
    with pytest.raises(GateFailed, match="leakage_fields"):
        run_generic(load_mapping(path), _settings(tmp_path))
    report = (tmp_path / "reports" / "generic" / "report.md").read_text()
    assert "FLAGGED" in report and "Call_Duration_min" in report
    assert "- Call_Duration_min: AUC per time block" in report


def test_whole_run_on_a_crm_export(tables, tmp_path: Path) -> None:
    run = run_generic(load_mapping(tables.mapping), _settings(tmp_path), override_reason="test")
    assert set(run.dropped) == set(POST_OUTCOME_FIELDS)
    assert run.has_time and run.n_scored > 0
    gates = {g.name: g for g in run.gates}
    assert gates["pit_violations"].passed and gates["pit_violations"].figure == 0
    assert gates["leakage_fields"].passed and gates["min_positives"].passed
    assert set(run.metrics["holdout"]) >= {"aucpr", "aucroc"}
    assert run.metrics["baseline_holdout"]["n"] == run.metrics["holdout"]["n"]  # same split
    assert (
        run.metrics["holdout"]["aucroc"] > 0.5 and run.metrics["baseline_holdout"]["aucroc"] > 0.5
    )
    reports = tmp_path / "reports" / "generic"
    scores = pd.read_csv(reports / "scores.csv")
    assert scores["probability"].between(0, 1).all() and scores["drivers_text"].notna().all()
    importance = pd.read_csv(reports / "importance.csv")
    assert not set(importance["feature"]) & set(POST_OUTCOME_FIELDS)
    assert (tmp_path / "models" / str(run.version) / "manifest.json").exists()
    # the bundle (with its stored catalog) scores a training row as the training run did
    assert run.bundle_path is not None
    holdout = json.loads((run.bundle_path / "folds.json").read_text())["holdout_ids"][:50]
    wh = DuckDBWarehouse(tmp_path / "data" / "leadscore.duckdb")
    try:
        spine = wh.query("SELECT * FROM generic_spine").to_pandas()
    finally:
        wh.close()
    rows = spine[spine["lead_id"].isin(holdout)].reset_index(drop=True)
    rows["aum_tier"] = rows["aum_tier"].astype(str)
    again = score_with_bundle(run.bundle_path, rows, _settings(tmp_path))
    preds = pd.read_csv(tmp_path / "reports" / "generic" / "holdout_predictions.csv")
    want = preds.set_index("lead_id").loc[rows["lead_id"], "xgb_proba"].to_numpy()
    np.testing.assert_allclose(again["probability"].to_numpy(dtype=float), want, rtol=1e-6)


def test_no_time_column_falls_back_to_a_labelled_random_split(tmp_path: Path) -> None:
    tables = generate_crm_tables(tmp_path / "crm", n_leads=2000, seed=5, with_time=False)
    run = run_generic(load_mapping(tables.mapping), _settings(tmp_path), override_reason="test")
    assert not run.has_time
    assert any(RANDOM_SPLIT_WARNING in w for w in run.warnings)
    report = (tmp_path / "reports" / "generic" / "report.md").read_text()
    assert report.count("WARNING - RANDOM SPLIT") >= 3  # top, leakage table, metrics, figures
    assert "Call_Duration_min" in run.leakage.flagged()
    assert run.report_dir is not None and list(run.report_dir.glob("*.png"))
    assert str(run.version).startswith("v20251231")  # dated by as_of, not by stand-in times


def test_cli_init_writes_a_mapping(tables, tmp_path: Path) -> None:
    out = tmp_path / "mapping.toml"
    result = CliRunner().invoke(app, ["init", "--from", str(tables.leads_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_mapping(out).outcome_ts_col == "mql_at"
    again = CliRunner().invoke(app, ["init", "--from", str(tables.leads_csv), "--out", str(out)])
    assert again.exit_code == 1


def test_segment_col_becomes_the_calibration_segment(tables, tmp_path: Path) -> None:
    mapping = load_mapping(tables.mapping).model_copy(update={"segment_col": "Lead Source"})
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        load_source(wh, mapping)
        catalog = catalog_from_mapping(mapping, level_counts(wh, mapping, None))
        spine = build_spine(wh, GenericContext(mapping, AS_OF, True), catalog)
    finally:
        wh.close()
    values = catalog.segment("aum_tier").values
    assert {"Web", "Referral", "Unknown"} <= set(values)
    assert set(spine["aum_tier"]) <= set(values)
    assert (spine["aum_tier"] == "Unknown").sum() == spine["Lead_Source"].isna().sum()


def _verdicts(folder: Path, seed: int, n_leads: int) -> tuple[set[str], set[str]]:
    tables = generate_crm_tables(folder, n_leads=n_leads, seed=seed)
    mapping = load_mapping(tables.mapping)
    wh = DuckDBWarehouse(folder / "w.duckdb")
    try:
        load_source(wh, mapping)
        catalog = catalog_from_mapping(mapping, level_counts(wh, mapping, None))
        spine = build_spine(wh, GenericContext(mapping, AS_OF, True), catalog)
    finally:
        wh.close()
    train = spine[spine["exclusion_reason"].isna()].reset_index(drop=True)
    report = detect_leakage(train, mapping.all_fields(), mapping.leakage, True, 42)
    return set(report.flagged()), set(report.calendar_proxies())


@pytest.mark.seed
@pytest.mark.parametrize("seed", range(1, 11))
def test_leakage_verdicts_hold_across_seeds(tmp_path: Path, seed: int) -> None:
    flagged, _ = _verdicts(tmp_path, seed, 3000)
    assert flagged == set(POST_OUTCOME_FIELDS)  # no calendar proxy, no genuine field
