"""Score stage: batch scoring through the real point-in-time builder, exactly-once writes,
rejects, the Salesforce upsert file, and single-lead parity.

The world is tiny and hand-built: two vendor vintages, a few dozen reps and leads, plus leads
with a missing CRD, an unknown CRD, a contact before any snapshot and an out-of-range value.
The model is a real XGBoost booster inside a real ``Bundle``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost as xgb

from leadscore.bundle import Bundle
from leadscore.calibrate import SegmentCalibrator, bucket_cutpoints, score_edges
from leadscore.catalog import Catalog, load_catalog
from leadscore.config import ScoreConfig, Settings
from leadscore.dataset import build_scoring_set
from leadscore.ingest.schema import FIRMS_COLUMNS, REPS_COLUMNS
from leadscore.score import batch as score_mod
from leadscore.score import tables as score_tables
from leadscore.score.batch import ScoreRejected, score_leads, score_one
from leadscore.score.checks import check_rows
from leadscore.score.salesforce import (
    LEAD_SCORE_FIELDS,
    check_cell,
    load_field_mapping,
    render_upsert_csv,
    validate_upsert_csv,
)
from leadscore.train.preprocess import Preprocessor
from leadscore.warehouse import tables
from leadscore.warehouse.duckdb import DuckDBWarehouse

AS_OF = datetime(2024, 10, 1, tzinfo=UTC)
VINTAGES = [  # (snapshot_as_of, processed_at)
    (date(2024, 3, 31), datetime(2024, 4, 20, tzinfo=UTC)),
    (date(2024, 6, 30), datetime(2024, 7, 20, tzinfo=UTC)),
]
N_REPS, N_FIRMS, N_LEADS = 40, 8, 90
BAD_RANGE_LEAD = "00Q000000000BAD"
METROS = ["New York-Newark-Jersey City NY-NJ", "Dallas-Fort Worth-Arlington TX", "Elsewhere"]


# --------------------------------------------------------------------------- the tiny world
def _lead_id(i: int) -> str:
    return f"00Q{i:012d}"


def _reps(rng: np.random.Generator, vintage: int) -> pd.DataFrame:
    n = N_REPS
    out: dict[str, Any] = {
        "RepCRD": np.arange(1000, 1000 + n),
        "RIAFirmCRD": 500 + np.arange(n) % N_FIRMS,
        "Home_State": rng.choice(["CA", "NY", "TX", "FL"], n),
        "Home_MetropolitanArea": rng.choice(METROS, n),
        "DateBecameRep": [date(1990 + int(k), 1, 1) for k in rng.integers(0, 30, n)],
        "DateOfHireAtCurrentFirm": [date(2010 + int(k), 6, 1) for k in rng.integers(0, 13, n)],
        "MilesToWork": rng.uniform(0, 80, n).round(1),
        "Number_BranchAdvisors": rng.integers(1, 50, n),
        "NumberFirmAssociations": rng.integers(1, 5, n),
        "NumberRIAFirmAssociations": rng.integers(1, 3, n),
    }
    for col in ("IsPrimaryRIAFirm", "KnownNonAdvisor", "IsDuallyRegistered", "IsIndependent"):
        out[col] = rng.random(n) < 0.5
    for col in ("Has_CFP", "Has_Series_7", "Has_Series_65", "Has_Series_66"):
        out[col] = rng.random(n) < 0.4
    for k in range(1, 5):
        years = rng.uniform(0.5, 10, n).round(1)
        out[f"Number_YearsPriorFirm{k}"] = np.where(rng.random(n) < 0.3 * k, np.nan, years)
    frame = pd.DataFrame(out)
    if vintage == 1:  # one rep's vendor row is out of range in the later vintage
        frame.loc[frame["RepCRD"] == 1039, "MilesToWork"] = -5.0
    return frame


def _firms(rng: np.random.Generator) -> pd.DataFrame:
    n = N_FIRMS
    aum = rng.choice([40.0, 80.0, 300.0, 900.0], n)
    pct = {c: rng.uniform(0, 100, n).round(1) for c in FIRMS_COLUMNS if c.startswith("Percent")}
    return pd.DataFrame(
        {
            "RIAFirmCRD": 500 + np.arange(n),
            "TotalAssetsInMillions": aum,
            "Number_Employees": rng.integers(3, 200, n),
            "Number_IAReps": rng.integers(1, 50, n),
            "Number_Investment_Advisory_Clients": rng.integers(10, 2000, n),
            "NumberClients_Individuals": rng.integers(10, 1000, n),
            "NumberClients_HNWIndividuals": rng.integers(0, 100, n),
            "AssetsInMillions_Individuals": aum * 0.5,
            "AssetsInMillions_HNWIndividuals": aum * 0.3,
            "AssetsInMillions_MutualFunds": aum * 0.2,
            "AssetsInMillions_PrivateFunds": aum * 0.05,
            "AssetsInMillions_Equity_ExchangeTraded": aum * 0.1,
            "AverageAccountSize": rng.uniform(2e5, 4e6, n).round(0),
            "AUMGrowthRate_1Year": rng.uniform(-20, 30, n).round(1),
            "AUMGrowthRate_5Year": rng.uniform(-10, 80, n).round(1),
            **pct,
        }
    )


def _vintage_table(frames: list[pd.DataFrame], columns: Mapping[str, str]) -> pa.Table:
    stacked = []
    for (as_of, processed), frame in zip(VINTAGES, frames, strict=True):
        frame = frame.copy()
        frame["snapshot_as_of"] = as_of
        frame["snapshot_quarter"] = date(as_of.year, as_of.month - 2, 1)
        frame["processed_at"] = processed
        frame["available_at"] = processed
        stacked.append(frame)
    df = pd.concat(stacked, ignore_index=True)
    for col, ltype in columns.items():  # every raw column exists, typed like ingest's output
        if col not in df.columns:
            df[col] = None
        if ltype == "str":
            df[col] = df[col].astype(object)
    return pa.Table.from_pandas(df, preserve_index=False)


def _leads(rng: np.random.Generator) -> pd.DataFrame:
    start = datetime(2024, 5, 1, 9, tzinfo=UTC)
    contact = [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 140, N_LEADS)]
    crd = (1000 + np.arange(N_LEADS) % (N_REPS - 1)).astype(object)
    status = ["ok"] * N_LEADS
    rows = pd.DataFrame(
        {"Id": [_lead_id(i) for i in range(N_LEADS)], "RepCRD": crd, "crd_status": status,
         "Stage_Entered_Contacting__c": contact}
    )  # fmt: skip
    extra = pd.DataFrame(
        {
            "Id": ["00Q00000000MISS", "00Q0000000NOCRD", "00Q00000000EARL", BAD_RANGE_LEAD,
                   "00Q00000000LATE"],
            "RepCRD": [None, 99999, 1001, 1039, 1002],
            "crd_status": ["missing", "ok", "ok", "ok", "ok"],
            "Stage_Entered_Contacting__c": [
                start, start, datetime(2024, 4, 2, tzinfo=UTC), datetime(2024, 9, 1, tzinfo=UTC),
                AS_OF + timedelta(days=3),  # contacted after as_of: not considered
            ],
        }
    )  # fmt: skip
    leads = pd.concat([rows, extra], ignore_index=True)
    leads["OwnerId"] = "005000000000SGA"
    leads["Stage_Entered_Call_Scheduled__c"] = pd.NaT
    leads["RepCRD"] = leads["RepCRD"].astype("Int64")
    return leads


def make_world(wh: DuckDBWarehouse, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    reps = [_reps(rng, v) for v in range(len(VINTAGES))]
    firms = [_firms(rng) for _ in VINTAGES]
    wh.load_arrow(tables.REPS_ALL_VINTAGES, _vintage_table(reps, REPS_COLUMNS))
    wh.load_arrow(tables.FIRMS_ALL_VINTAGES, _vintage_table(firms, FIRMS_COLUMNS))
    wh.load_arrow(tables.LEADS, pa.Table.from_pandas(_leads(rng), preserve_index=False))


# --------------------------------------------------------------------------- a real bundle
def make_bundle(
    df: pd.DataFrame, features: list[str], types: Mapping[str, str], y: np.ndarray, path: Path
) -> Bundle:
    """A real Bundle: training's Preprocessor, an XGBoost booster, Platt calibration."""
    prep = Preprocessor({f: types[f] for f in features}).fit(df)
    matrix = xgb.DMatrix(prep.transform(df, features), label=y, enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 0,
              "nthread": 1, "max_cat_to_onehot": 1}  # fmt: skip
    booster = xgb.train(params, matrix, num_boost_round=15)
    margin = booster.predict(matrix, output_margin=True)
    segments = df["aum_tier"].astype(object).fillna("Unknown").astype(str).to_numpy()
    calibrator = SegmentCalibrator(min_rows=10**9).fit(margin, y, segments)
    proba = calibrator.predict(margin, segments)
    cutpoints, edges = bucket_cutpoints(proba), score_edges(proba)
    return Bundle(
        path=path, version="test-v1", booster=booster, preprocessor=prep, features=features,
        feature_types={f: types[f] for f in features}, calibrator=calibrator,
        cutpoints=cutpoints, score_edges=edges, metrics={}, gates={}, folds=None,  # type: ignore[arg-type]
        config={}, manifest={},
    )  # fmt: skip


def _truth(df: pd.DataFrame) -> np.ndarray:
    cfp = df["Has_CFP"].astype(float).fillna(0).to_numpy()
    small = (pd.to_numeric(df["TotalAssetsInMillions"]) < 100).astype(float).to_numpy()
    weekend = df["Is_Weekend_Contact"].astype(float).fillna(0).to_numpy()
    return -1.0 + 1.5 * cfp + 1.0 * small + 0.8 * weekend


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def base_world(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> tuple[Path, Bundle]:
    """The world's warehouse file and a bundle trained on it, built once per module."""
    root = tmp_path_factory.mktemp("world")
    wh = DuckDBWarehouse(root / "wh.duckdb")
    make_world(wh)
    built = build_scoring_set(wh, Settings().resolve(root), catalog, as_of=AS_OF)
    df = wh.query(f"SELECT * FROM {built.table} WHERE pit_status = 'ok'").to_pandas()
    wh.execute(f"DROP TABLE {built.table}")
    wh.close()
    y = (_truth(df) + np.random.default_rng(1).logistic(size=len(df)) > 0).astype(int)
    bundle = make_bundle(df, catalog.model_features(), catalog.feature_types(), y, root)
    return root / "wh.duckdb", bundle


@pytest.fixture
def world(
    tmp_path: Path, base_world: tuple[Path, Bundle]
) -> tuple[DuckDBWarehouse, Settings, Bundle]:
    """A fresh copy of the world's warehouse for each test."""
    source, bundle = base_world
    shutil.copyfile(source, tmp_path / "wh.duckdb")
    return DuckDBWarehouse(tmp_path / "wh.duckdb"), Settings().resolve(tmp_path), bundle


def _scores(wh: DuckDBWarehouse) -> pd.DataFrame:
    return wh.query(f"SELECT * FROM {tables.LEAD_SCORES} ORDER BY lead_id").to_pandas()


def _rejects(wh: DuckDBWarehouse) -> dict[str, str]:
    rows = wh.query(f"SELECT lead_id, reason FROM {tables.SCORE_REJECTS}").to_pylist()
    return {r["lead_id"]: r["reason"] for r in rows}


# --------------------------------------------------------------------------- batch scoring
def test_batch_scores_good_leads_and_rejects_bad_ones_with_reasons(
    world: tuple[DuckDBWarehouse, Settings, Bundle], catalog: Catalog, tmp_path: Path
) -> None:
    wh, cfg, bundle = world
    run = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=tmp_path / "out", batch_size=25)
    scores = _scores(wh)
    rejects = _rejects(wh)
    assert rejects == {
        "00Q00000000MISS": "crd_missing",
        "00Q0000000NOCRD": "crd_not_found",
        "00Q00000000EARL": "no_snapshot_yet",
        BAD_RANGE_LEAD: "contract_violation",
    }
    assert "00Q00000000LATE" not in set(scores["lead_id"]) | set(rejects)
    assert len(scores) == N_LEADS and scores["lead_id"].is_unique
    assert run.n_considered == N_LEADS + 4 and run.n_scored == N_LEADS
    assert run.rejected_by_reason == {
        "contract_violation": 1, "crd_missing": 1, "crd_not_found": 1, "no_snapshot_yet": 1,
    }  # fmt: skip
    assert run.success_rate == pytest.approx(N_LEADS / (N_LEADS + 4))
    assert run.n_batches == 4
    assert set(scores["bucket"]) <= {"Very Hot", "Hot", "Warm", "Cool", "Cold"}
    assert set(scores["tier"]) <= {"A", "B", "C"}
    assert scores["score"].between(1, 99).all()
    assert (scores["scored_at"] == pd.Timestamp(AS_OF)).all()
    assert scores["reps_snapshot_quarter"].notna().all()
    assert scores["drivers_text"].str.len().max() <= 255
    detail = wh.query(
        f"SELECT detail FROM {tables.SCORE_REJECTS} WHERE lead_id = '{BAD_RANGE_LEAD}'"
    ).to_pylist()[0]["detail"]
    assert "MilesToWork: outside valid range" in detail
    # the run record: JSON on disk and a row in scoring_runs
    record = json.loads(run.record_path.read_text())
    assert record["n_scored"] == N_LEADS and record["provenance"]["config_hash"]
    assert record["feature_availability"]["Has_CFP"] == pytest.approx(1.0)
    assert 0 < record["feature_availability"]["Number_YearsPriorFirm2"] < 1
    runs = wh.query(f"SELECT * FROM {tables.SCORING_RUNS}").to_pylist()
    assert [r["run_id"] for r in runs] == [run.run_id]
    assert json.loads(runs[0]["rejected_by_reason"])["crd_missing"] == 1


def test_rerun_adds_nothing_and_exports_nothing_new(
    world: tuple[DuckDBWarehouse, Settings, Bundle], catalog: Catalog, tmp_path: Path
) -> None:
    wh, cfg, bundle = world
    out = tmp_path / "out"
    first = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=out)
    before = _scores(wh)
    second = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=out)
    after = _scores(wh)
    pd.testing.assert_frame_equal(before.drop(columns="sf_export_run_id"),
                                  after.drop(columns="sf_export_run_id"))  # fmt: skip
    assert second.n_scored == 0 and second.n_considered == 4  # only the rejects are retried
    assert second.run_id != first.run_id  # a second file, never an overwrite
    assert first.n_exported == N_LEADS and second.n_exported == 0
    assert first.salesforce_csv.exists() and second.salesforce_csv.exists()


@pytest.mark.parametrize("crash_batch", [0, 2])
def test_crash_mid_batch_then_rerun_scores_every_lead_exactly_once(
    world: tuple[DuckDBWarehouse, Settings, Bundle],
    catalog: Catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash_batch: int,
) -> None:
    wh, cfg, bundle = world
    real = score_tables.write_rejects
    calls = {"n": 0}

    def crashing(w: Any) -> None:  # scores of the batch are already written when this runs
        if calls["n"] == crash_batch:
            raise RuntimeError("simulated crash")
        calls["n"] += 1
        real(w)

    monkeypatch.setattr(score_mod, "write_rejects", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=tmp_path / "o", batch_size=20)
    partial = _scores(wh)
    assert len(partial) == len(set(partial["lead_id"]))
    assert len(partial) <= 20 * crash_batch  # the crashed batch left nothing behind
    monkeypatch.setattr(score_mod, "write_rejects", real)
    rerun = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=tmp_path / "o", batch_size=20)
    final = _scores(wh)
    assert len(final) == N_LEADS and final["lead_id"].is_unique
    assert rerun.n_scored == N_LEADS - len(partial)
    # leads scored before the crash reach Salesforce through the re-run's file
    exported = pd.read_csv(rerun.salesforce_csv)
    assert sorted(exported["Id"]) == sorted(final["lead_id"])


def test_garbage_input_is_rejected_while_the_others_are_scored(
    world: tuple[DuckDBWarehouse, Settings, Bundle], catalog: Catalog, tmp_path: Path
) -> None:
    wh, cfg, bundle = world
    garbage = _lead_id(3)

    def dirty_build(w: Any, c: Settings, cat: Any, ids: list[str], *, as_of: datetime) -> Any:
        built = build_scoring_set(w, c, cat, ids, as_of=as_of)
        df = w.query(f"SELECT * FROM {built.table}").to_pandas()
        df["TotalAssetsInMillions"] = df["TotalAssetsInMillions"].astype(object)
        df.loc[df["lead_id"] == garbage, "TotalAssetsInMillions"] = "Osseo"
        return df

    run = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=tmp_path, build=dirty_build)
    assert _rejects(wh)[garbage] == "invalid_value"
    assert run.n_scored == N_LEADS - 1
    assert garbage not in set(_scores(wh)["lead_id"])


def test_leads_the_builder_drops_are_rejected_not_lost(
    world: tuple[DuckDBWarehouse, Settings, Bundle], catalog: Catalog, tmp_path: Path
) -> None:
    wh, cfg, bundle = world
    lost = _lead_id(5)

    def lossy(w: Any, c: Settings, cat: Any, ids: list[str], *, as_of: datetime) -> Any:
        built = build_scoring_set(w, c, cat, ids, as_of=as_of)
        return w.query(f"SELECT * FROM {built.table} WHERE lead_id <> '{lost}'").to_pandas()

    score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=tmp_path, build=lossy)
    assert _rejects(wh)[lost] == "not_built"


def test_batch_and_single_lead_scoring_agree(
    world: tuple[DuckDBWarehouse, Settings, Bundle], catalog: Catalog, tmp_path: Path
) -> None:
    wh, cfg, bundle = world
    score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=tmp_path, batch_size=30)
    batch = _scores(wh).set_index("lead_id")
    built = build_scoring_set(wh, cfg, catalog, as_of=AS_OF)
    rows = wh.query(f"SELECT * FROM {built.table} WHERE pit_status = 'ok'").to_pylist()
    checked = 0
    for row in rows[::15]:  # a sample keeps the test fast; each lead is compared exactly
        if row["lead_id"] not in batch.index:
            continue
        one = score_one(bundle, row, catalog)
        expected = batch.loc[row["lead_id"]]
        assert one["probability"] == expected["probability"]
        assert one["margin"] == expected["margin"]
        assert (one["score"], one["bucket"], one["tier"]) == (
            expected["score"], expected["bucket"], expected["tier"],
        )  # fmt: skip
        assert one["drivers_text"] == expected["drivers_text"]
        checked += 1
    assert checked >= 5


def test_score_one_rejects_garbage_with_a_reason(
    world: tuple[DuckDBWarehouse, Settings, Bundle], catalog: Catalog
) -> None:
    wh, cfg, bundle = world
    built = build_scoring_set(wh, cfg, catalog, as_of=AS_OF)
    row = wh.query(f"SELECT * FROM {built.table} WHERE pit_status = 'ok' LIMIT 1").to_pylist()[0]
    with pytest.raises(ScoreRejected) as bad_type:
        score_one(bundle, {**row, "Has_CFP": "maybe"}, catalog)
    assert bad_type.value.reason == "invalid_value" and "Has_CFP" in bad_type.value.detail
    with pytest.raises(ScoreRejected) as out_of_range:
        score_one(bundle, {**row, "Quality_Score": 7.0}, catalog)
    assert out_of_range.value.reason == "contract_violation"
    with pytest.raises(ScoreRejected) as missing:
        score_one(bundle, {k: v for k, v in row.items() if k != "Has_CFP"}, catalog)
    assert missing.value.reason == "missing_feature"


# --------------------------------------------------------------------------- row checks
@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("numeric", 3.5, True),
        ("numeric", None, True),
        ("numeric", "12", True),
        ("numeric", "Osseo", False),
        ("numeric", float("inf"), False),
        ("bool", True, True),
        ("bool", 0, True),
        ("bool", None, True),
        ("bool", "false", False),
        ("bool", 2, False),
        ("category", "CA", True),
    ],
)
def test_check_rows_types(
    kind: str, value: Any, ok: bool, catalog: Catalog, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    values = {"numeric": rng.normal(size=40), "bool": rng.random(40) < 0.5,
              "category": rng.choice(["CA", "NY"], 40)}  # fmt: skip
    train = pd.DataFrame({"x": values[kind], "aum_tier": "<$100M"})
    bundle = make_bundle(train, ["x"], {"x": kind}, np.arange(40) % 2, tmp_path)
    df = pd.DataFrame({"x": pd.Series([value, None], dtype=object)})
    checked, reasons = check_rows(df, bundle, catalog)
    assert (reasons.iloc[0] is None) is ok
    assert reasons.iloc[1] is None
    if ok and kind != "category" and value is not None:
        assert float(checked["x"].iloc[0]) == float(value)


# --------------------------------------------------------------------------- Salesforce file
def test_upsert_csv_passes_its_own_validator(
    world: tuple[DuckDBWarehouse, Settings, Bundle], catalog: Catalog, tmp_path: Path
) -> None:
    wh, cfg, bundle = world
    run = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=tmp_path)
    assert validate_upsert_csv(run.salesforce_csv) == []
    mapping = load_field_mapping(run.field_mapping)
    assert mapping == LEAD_SCORE_FIELDS
    assert validate_upsert_csv(run.salesforce_csv, mapping) == []
    text = run.salesforce_csv.read_text()
    header = text.splitlines()[0].split(",")
    assert header[0] == "Id" and "Lead_Score_Drivers__c" in header
    assert text.count("\n") == N_LEADS + 1 and "\r" not in text
    first = pd.read_csv(run.salesforce_csv, dtype=str).iloc[0]
    assert first["Lead_Score_Scored_At__c"] == "2024-10-01T00:00:00Z"


def test_validator_catches_bad_cells(tmp_path: Path) -> None:
    good = {
        "lead_id": "00Q000000000001", "score": 42, "probability": 0.4213, "bucket": "Hot",
        "tier": "A", "drivers_text": "Up: x (+0.10)", "model_version": "v1",
        "scored_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }  # fmt: skip
    bad = {**good, "lead_id": "nope", "score": 140, "bucket": "Tepid", "drivers_text": "x" * 256}
    path = tmp_path / "up.csv"
    path.write_text(render_upsert_csv(pd.DataFrame([good, bad, good])))
    problems = validate_upsert_csv(path)
    assert len(problems) == 5, problems
    assert any("duplicate Id" in p for p in problems)
    assert any("256 characters > 255" in p for p in problems)
    by_name = {f.salesforce_field: f for f in LEAD_SCORE_FIELDS}
    assert check_cell("2024-01-02 03:04:05", by_name["Lead_Score_Scored_At__c"])
    assert check_cell("0.12345", by_name["Lead_Score_Probability__c"])
    assert check_cell("", by_name["Lead_Score_Drivers__c"]) is None


# --------------------------------------------------------------------------- buckets
def test_buckets_are_ordered_by_observed_conversion(tmp_path: Path, catalog: Catalog) -> None:
    rng = np.random.default_rng(3)
    n = 6000
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "flag": rng.random(n) < 0.3,
            "aum_tier": rng.choice(["<$100M", "$100-500M", ">$500M"], n),
        }
    )
    logit = -3.0 + 1.2 * df["x1"] - 0.8 * df["x2"] + 1.0 * df["flag"]
    y = np.asarray(rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy())), dtype=int)
    types = {"x1": "numeric", "x2": "numeric", "flag": "bool"}
    train, test = df.iloc[: n // 2], df.iloc[n // 2 :]
    bundle = make_bundle(train, list(types), types, y[: n // 2], tmp_path)
    checked, reasons = check_rows(test, bundle, catalog)
    assert reasons.isna().all()
    scored = score_mod.score_frame(bundle, checked, catalog, ScoreConfig())
    conversion = pd.Series(y[n // 2 :], index=test.index).groupby(scored["bucket"]).mean()
    order = ["Very Hot", "Hot", "Warm", "Cool", "Cold"]
    rates = conversion.reindex(order).to_numpy()
    assert np.all(np.diff(rates) < 0), dict(zip(order, rates, strict=True))
    tier_rates = pd.Series(y[n // 2 :], index=test.index).groupby(scored["tier"]).mean()
    assert tier_rates["A"] > tier_rates["B"] > tier_rates["C"]


def test_score_is_the_percentile_among_out_of_fold_leads() -> None:
    from leadscore.calibrate import assign_scores

    oof = np.linspace(0.0, 0.99, 100)  # percentiles of 0.00..0.99 are the values themselves
    edges = score_edges(oof)
    assert len(edges) == 98
    scores = assign_scores([0.0, 0.005, 0.0101, 0.50, 0.98, 1.0], edges)
    assert scores.tolist() == [1, 1, 2, 51, 99, 99]
    assert np.all(
        np.diff(assign_scores(np.sort(np.random.default_rng(0).random(500)), edges)) >= 0
    )
