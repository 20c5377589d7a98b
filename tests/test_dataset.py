"""Point-in-time build: oracle against a brute-force loop, label rules, exclusions, parity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from leadscore.catalog import load_catalog
from leadscore.config import Settings
from leadscore.dataset import (
    PitContext,
    build_scoring_set,
    build_training_set,
    pit_sql,
)
from leadscore.ingest.schema import FIRMS_COLUMNS, LEAD_COLUMNS, REPS_COLUMNS
from leadscore.warehouse import tables, transpile
from leadscore.warehouse.duckdb import DuckDBWarehouse

ARROW = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "str": pa.string(),
}
VINTAGE_EXTRA = {"snapshot_quarter": "date", "available_at": "timestamp"}
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
CATALOG = load_catalog()


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def arrow_rows(columns: dict[str, str], rows: list[dict[str, Any]]) -> pa.Table:
    """Arrow table with every column of ``columns``; missing values are NULL."""
    schema = pa.schema([(name, ARROW[kind]) for name, kind in columns.items()])
    return pa.table({n: [r.get(n) for r in rows] for n in columns}, schema=schema)


def load_world(
    wh: DuckDBWarehouse, reps: list[dict], firms: list[dict], leads: list[dict]
) -> None:
    wh.load_arrow(tables.REPS_ALL_VINTAGES, arrow_rows({**REPS_COLUMNS, **VINTAGE_EXTRA}, reps))
    wh.load_arrow(tables.FIRMS_ALL_VINTAGES, arrow_rows({**FIRMS_COLUMNS, **VINTAGE_EXTRA}, firms))
    lead_cols = {**LEAD_COLUMNS, "RepCRD": "int", "crd_status": "str"}
    wh.load_arrow(tables.LEADS, arrow_rows(lead_cols, leads))


def rep(crd: int, quarter: str, available: str | None, firm: int | None, **kw: Any) -> dict:
    q = date.fromisoformat(quarter)
    return {
        "RepCRD": crd,
        "RIAFirmCRD": firm,
        "snapshot_quarter": q,
        "snapshot_as_of": q,
        "available_at": ts(available) if available else None,
        "DateBecameRep": date(2010, 1, 1),
        "DateOfHireAtCurrentFirm": date(2020, 1, 1),
        "NumberFirmAssociations": crd * 10 + int(quarter[5:7]),  # tells vintages apart
        **kw,
    }


def firm(crd: int, quarter: str, available: str, aum: float, **kw: Any) -> dict:
    q = date.fromisoformat(quarter)
    return {
        "RIAFirmCRD": crd,
        "snapshot_quarter": q,
        "snapshot_as_of": q,
        "available_at": ts(available),
        "TotalAssetsInMillions": aum,
        "Number_Employees": 10,
        **kw,
    }


def lead(lead_id: str, crd: int | None, contact: str | None, convert: str | None = None,
         status: str | None = None) -> dict:  # fmt: skip
    return {
        "Id": lead_id,
        "RepCRD": crd,
        "crd_status": status or ("ok" if crd is not None else "missing"),
        "OwnerId": "sga1",
        "Stage_Entered_Contacting__c": ts(contact) if contact else None,
        "Stage_Entered_Call_Scheduled__c": ts(convert) if convert else None,
    }


# Hand-built world. Q1 vintage is available 2024-02-10; Q2 was delivered late (processed_at
# NULL, so available = as_of + 45 days lag = 2024-05-16); Q3 arrives 2024-08-20 and ties with a
# re-delivered Q2 of CRD 3 (same available_at: the later quarter wins).
REPS = [
    rep(1, "2024-01-01", "2024-02-10", 100),
    rep(1, "2024-04-01", "2024-05-16", 200),  # moved firm in Q2
    rep(1, "2024-07-01", "2024-08-20", 200),
    rep(2, "2024-01-01", "2024-02-10", 300),  # firm 300 has no vintage before 2024-06
    rep(3, "2024-04-01", "2024-08-20", 100),
    rep(3, "2024-07-01", "2024-08-20", 100),
    rep(4, "2024-07-01", "2024-08-20", 100),  # first seen in Q3
    rep(
        5, "2024-01-01", "2024-02-10", 100, Home_MetropolitanArea="Dallas-Fort Worth-Arlington TX"
    ),
]
FIRMS = [
    firm(100, "2024-01-01", "2024-02-10", 50.0),
    firm(100, "2024-04-01", "2024-05-16", 150.0),
    firm(100, "2024-07-01", "2024-08-20", 900.0),
    firm(200, "2024-04-01", "2024-05-16", 300.0),
    firm(200, "2024-07-01", "2024-08-20", 310.0),
    firm(300, "2024-07-01", "2024-08-20", 40.0),
]
LEADS = [
    lead("L01", 1, "2024-03-01T10:00:00", "2024-03-05T10:00:00"),  # Q1 vintage, positive
    lead("L02", 1, "2024-05-01T10:00:00", "2024-06-15T10:00:00"),  # Q1 still (Q2 late); late conv
    lead("L03", 1, "2024-05-16T00:00:00"),  # exactly at Q2 availability: Q2
    lead("L04", 1, "2024-04-15T09:00:00", "2024-04-10T09:00:00"),  # negative days
    lead("L05", 2, "2024-03-02T12:00:00", "2024-04-01T12:00:00"),  # firm 300 unmatched; day 30
    lead("L06", 2, "2024-09-01T12:00:00"),  # firm 300 Q3 now available
    lead("L07", 3, "2024-09-03T08:00:00"),  # tie on available_at: Q3 wins
    lead("L08", 3, "2024-06-01T08:00:00"),  # CRD seen, nothing available yet
    lead("L09", 4, "2024-10-05T08:00:00", "2024-10-20T08:00:00"),
    lead("L10", None, "2024-03-03T08:00:00"),  # crd missing
    lead("L11", None, "2024-03-03T08:00:00", status="malformed"),
    lead("L12", 99, "2024-03-03T08:00:00"),  # crd not found anywhere
    lead("L13", 5, "2024-12-20T08:00:00"),  # right-censored (as_of 2025-01-01)
    lead("L14", 5, None),  # never contacted: not in scope
    lead("L15", 5, "2024-03-09T08:00:00", "2024-04-08T08:00:01"),  # 1 s past 30 days: late
    lead("L16", 1, "2024-02-10T00:00:00"),  # exactly at Q1 availability
]


@pytest.fixture()
def wh():
    warehouse = DuckDBWarehouse(":memory:")
    yield warehouse
    warehouse.close()


@pytest.fixture()
def cfg() -> Settings:
    return Settings.model_validate({"dataset": {"as_of": "2025-01-01T00:00:00Z"}})


@pytest.fixture()
def world(wh):
    load_world(wh, REPS, FIRMS, LEADS)
    return wh


def fetch(wh, table: str) -> dict[str, dict]:
    return {r["lead_id"]: r for r in wh.query(f"SELECT * FROM {table}").to_pylist()}


def test_hand_built_world(world, cfg):
    result = build_training_set(world, cfg, CATALOG)
    rows = fetch(world, tables.TRAINING_SET)
    quarter = {
        k: (v["reps_snapshot_quarter"], v["firms_snapshot_quarter"]) for k, v in rows.items()
    }
    assert quarter == {
        "L01": (date(2024, 1, 1), date(2024, 1, 1)),
        "L02": (date(2024, 1, 1), date(2024, 1, 1)),
        "L03": (date(2024, 4, 1), date(2024, 4, 1)),
        "L05": (date(2024, 1, 1), None),
        "L06": (date(2024, 1, 1), date(2024, 7, 1)),
        "L07": (date(2024, 7, 1), date(2024, 7, 1)),
        "L09": (date(2024, 7, 1), date(2024, 7, 1)),
        "L15": (date(2024, 1, 1), date(2024, 1, 1)),
        "L16": (date(2024, 1, 1), date(2024, 1, 1)),
    }
    assert {k for k, v in rows.items() if v["target"] == 1} == {"L01", "L05", "L09"}
    assert rows["L02"]["days_to_conversion"] == 45
    assert rows["L03"]["TotalAssetsInMillions"] == 300.0  # firm 200, Q2
    assert rows["L03"]["aum_tier"] == "$100-500M"
    assert rows["L05"]["aum_tier"] == "Unknown"
    assert rows["L15"]["metro_area"] == "Dallas" and rows["L15"]["Metro_Dallas"] is True
    assert rows["L01"]["metro_area"] == "Unknown" and rows["L01"]["Metro_NYC"] is None
    exclusions = {
        r["lead_id"]: r["reason"]
        for r in world.query("SELECT * FROM build_exclusions").to_pylist()
    }
    assert exclusions == {
        "L04": "negative_days",
        "L08": "no_snapshot_yet",
        "L10": "crd_missing",
        "L11": "crd_malformed",
        "L12": "crd_not_found",
        "L13": "right_censored",
    }
    assert result.n_leads == 16 and result.n_contacted == 15
    assert result.excluded == {
        "crd_missing": 1, "crd_malformed": 1, "crd_not_found": 1, "no_snapshot_yet": 1,
    }  # fmt: skip
    assert (result.n_negative_days, result.n_censored, result.n_rows) == (1, 1, 9)
    assert (result.n_positives, result.n_late_conversions, result.n_firm_unmatched) == (3, 2, 1)
    assert result.n_crd_matched == 11  # 9 rows + negative-days + censored leads matched
    total = result.n_rows + sum(result.excluded.values()) + result.n_negative_days
    assert total + result.n_censored == result.n_contacted
    assert result.as_of_source == "config"


def test_tenure_and_day_features_are_computed_at_contact_time(world, cfg):
    build_training_set(world, cfg, CATALOG)
    row = fetch(world, tables.TRAINING_SET)["L01"]  # contacted Friday 2024-03-01
    assert row["DateOfHireAtCurrentFirm_NumberOfYears"] == pytest.approx(
        (date(2024, 3, 1) - date(2020, 1, 1)).days / 365.25
    )
    assert row["Day_of_Contact"] == 5 and row["Is_Weekend_Contact"] is False
    assert fetch(world, tables.TRAINING_SET)["L03"]["Day_of_Contact"] == 4  # 2024-05-16 Thu


def test_quarter_join_reproduces_the_plan_and_leaks(world, cfg):
    result = build_training_set(world, cfg, CATALOG, join="quarter")
    assert result.table == "training_set_quarter"
    rows = fetch(world, "training_set_quarter")
    # L02 (contacted 2024-05-01) joins the Q2 vintage that only became available on 2024-05-16.
    assert rows["L02"]["reps_snapshot_quarter"] == date(2024, 4, 1)
    leaks = [k for k, v in rows.items() if v["reps_available_at"] > v["contact_ts"]]
    assert "L02" in leaks
    asof = fetch(world, tables.TRAINING_SET) if world.table_exists(tables.TRAINING_SET) else {}
    assert asof == {}  # the comparison run does not overwrite the real training set


# ------------------------------------------------------------------------------ oracle
def random_world(seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Tiny random world with many availability ties, late deliveries and missing keys."""
    rng = np.random.default_rng(seed)
    quarters = ["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"]
    avail_days = ["2024-02-01", "2024-03-01", "2024-05-15", "2024-08-01", "2024-11-01"]
    reps, firms, leads = [], [], []
    for crd in range(1, 9):
        for qi, q in enumerate(quarters):
            if rng.random() < 0.75:
                day = avail_days[min(len(avail_days) - 1, qi + int(rng.integers(0, 2)))]
                firm_crd = None if rng.random() < 0.1 else int(rng.integers(1, 4)) * 100
                reps.append(rep(crd, q, day, firm_crd))
    for firm_crd in (100, 200, 300, 400):
        for qi, q in enumerate(quarters):
            if rng.random() < 0.7:
                day = avail_days[min(len(avail_days) - 1, qi + int(rng.integers(0, 2)))]
                firms.append(firm(firm_crd, q, day, float(rng.integers(10, 900))))
    base = datetime(2024, 1, 15, tzinfo=UTC)
    for i in range(40):
        contact = base + timedelta(hours=int(rng.integers(0, 24 * 360)))
        if rng.random() < 0.15:  # contact exactly at an availability instant
            contact = ts(avail_days[int(rng.integers(0, len(avail_days)))])
        convert = None
        if rng.random() < 0.5:
            convert = contact + timedelta(hours=int(rng.integers(-48, 24 * 50)))
        crd = int(rng.integers(1, 11)) if rng.random() < 0.9 else None
        leads.append(
            {**lead(f"R{i:02d}", crd, None), "Stage_Entered_Contacting__c": contact,
             "Stage_Entered_Call_Scheduled__c": convert}
        )  # fmt: skip
    return reps, firms, leads


def oracle(reps: list[dict], firms: list[dict], leads: list[dict], window: int, as_of: datetime):
    """Brute force: for each contacted lead, scan every vintage row."""
    out = {}
    for ld in leads:
        t, crd = ld["Stage_Entered_Contacting__c"], ld["RepCRD"]
        conv = ld["Stage_Entered_Call_Scheduled__c"]
        seen = [r for r in reps if r["RepCRD"] == crd]
        avail = [r for r in seen if r["available_at"] <= t]
        rep_row = max(
            avail, key=lambda r: (r["available_at"], r["snapshot_quarter"]), default=None
        )
        if t > as_of:  # contacted after the data's extraction time: a data error
            reason = "future_contact"
        elif crd is None:
            reason = "crd_missing"
        elif rep_row is None:
            reason = "no_snapshot_yet" if seen else "crd_not_found"
        elif conv is not None and conv < t:
            reason = "negative_days"
        elif t > as_of - timedelta(days=window):
            reason = "right_censored"
        else:
            reason = None
        firm_row = None
        if rep_row is not None and rep_row["RIAFirmCRD"] is not None:
            cands = [
                f
                for f in firms
                if f["RIAFirmCRD"] == rep_row["RIAFirmCRD"] and f["available_at"] <= t
            ]
            firm_row = max(
                cands, key=lambda f: (f["available_at"], f["snapshot_quarter"]), default=None
            )
        target = int(conv is not None and t <= conv <= t + timedelta(days=window))
        out[ld["Id"]] = {
            "reason": reason,
            "reps_snapshot_quarter": rep_row and rep_row["snapshot_quarter"],
            "firms_snapshot_quarter": firm_row and firm_row["snapshot_quarter"],
            "TotalAssetsInMillions": firm_row and firm_row["TotalAssetsInMillions"],
            "NumberFirmAssociations": rep_row and rep_row["NumberFirmAssociations"],
            "target": target,
        }
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_pit_join_matches_brute_force_oracle(wh, cfg, seed):
    reps, firms, leads = random_world(seed)
    load_world(wh, reps, firms, leads)
    as_of = datetime(2024, 12, 1, tzinfo=UTC)
    build_training_set(wh, cfg, CATALOG, as_of=as_of)
    expected = oracle(reps, firms, leads, 30, as_of)
    got = fetch(wh, tables.TRAINING_SET)
    excluded = {
        r["lead_id"]: r["reason"] for r in wh.query("SELECT * FROM build_exclusions").to_pylist()
    }
    assert {k: v["reason"] for k, v in expected.items() if v["reason"]} == excluded
    assert set(got) == {k for k, v in expected.items() if v["reason"] is None}
    for lead_id, row in got.items():
        want = expected[lead_id]
        for col in ("reps_snapshot_quarter", "firms_snapshot_quarter", "target",
                    "TotalAssetsInMillions", "NumberFirmAssociations"):  # fmt: skip
            assert row[col] == want[col], (lead_id, col)


# ------------------------------------------------------------------------------ parity
def test_scoring_as_of_contact_time_gives_bit_identical_features(world, cfg):
    build_training_set(world, cfg, CATALOG)
    train = world.query(f"SELECT * FROM {tables.TRAINING_SET} ORDER BY lead_id")
    feature_cols = ["reps_snapshot_quarter", "firms_snapshot_quarter", "aum_tier", "metro_area"]
    feature_cols += CATALOG.model_features()
    for row in train.to_pylist():
        result = build_scoring_set(world, cfg, CATALOG, [row["lead_id"]], as_of=row["contact_ts"])
        assert result.by_status == {"ok": 1}
        scored = world.query(f"SELECT * FROM {tables.SCORING_SET}")
        for col in feature_cols:
            a = train.column(col).filter(pa.compute.equal(train.column("lead_id"), row["lead_id"]))
            assert scored.column(col).equals(a), (row["lead_id"], col)


def test_scoring_set_keeps_every_requested_lead_with_its_status(world, cfg):
    ids = ["L01", "L10", "L12", "L14", "L13"]
    result = build_scoring_set(world, cfg, CATALOG, ids, as_of=ts("2024-12-31T00:00:00"))
    rows = fetch(world, tables.SCORING_SET)
    assert set(rows) == set(ids) and result.n_rows == 5
    assert rows["L10"]["pit_status"] == "crd_missing"
    assert rows["L12"]["pit_status"] == "crd_not_found"
    assert rows["L14"]["pit_ts"] == ts("2024-12-31T00:00:00")  # never contacted: as_of
    assert rows["L14"]["reps_snapshot_quarter"] == date(2024, 1, 1)
    assert rows["L13"]["pit_status"] == "ok"  # censoring is off when scoring
    assert "target" not in rows["L01"]


def test_default_scoring_set_is_leads_contacted_by_as_of(world, cfg):
    result = build_scoring_set(world, cfg, CATALOG, as_of=ts("2024-03-02T00:00:00"))
    assert set(fetch(world, tables.SCORING_SET)) == {"L01", "L16"}
    assert result.by_status == {"ok": 2}


# ------------------------------------------------------------------------------ SQL text
@pytest.mark.parametrize("join", ["asof", "quarter"])
@pytest.mark.parametrize("training", [True, False])
def test_generated_sql_transpiles_to_bigquery(cfg, join, training):
    ctx = PitContext.from_settings(cfg, join=join, training=training, as_of=AS_OF,
                                   lead_ids=None if training else ("a", "b'c"))  # fmt: skip
    sql = pit_sql(ctx, CATALOG)
    for step in ("-- 1.", "-- 2.", "-- 3.", "-- 4.", "-- 5."):
        assert step in sql
    out = transpile(sql, "bigquery", dataset="LeadScoring")
    assert len(out) == 1
    bq = out[0]
    assert "LeadScoring.crm_leads" in bq and "LeadScoring.v_discovery_reps_all_vintages" in bq
    assert "QUALIFY" in bq
    assert "CURRENT_DATE" not in bq.upper() and "NOW()" not in bq.upper()


def test_ratios_are_null_on_zero_or_null_denominators(wh, cfg):
    reps = [rep(1, "2024-01-01", "2024-01-02", 100), rep(2, "2024-01-01", "2024-01-02", 200)]
    firms = [
        firm(100, "2024-01-01", "2024-01-02", 50.0, Number_Employees=0),
        firm(200, "2024-01-01", "2024-01-02", 50.0, Number_Employees=None),
    ]
    leads = [lead("A", 1, "2024-02-01T00:00:00"), lead("B", 2, "2024-02-01T00:00:00")]
    load_world(wh, reps, firms, leads)
    build_training_set(wh, cfg, CATALOG)
    rows = fetch(wh, tables.TRAINING_SET)
    for lead_id in ("A", "B"):
        assert rows[lead_id]["AUM_per_Employee"] is None
        assert rows[lead_id]["Clients_per_Employee"] is None


def test_as_of_falls_back_to_the_data_not_the_clock(world):
    result = build_training_set(world, Settings(), CATALOG)
    assert result.as_of == ts("2024-12-20T08:00:00") and result.as_of_source == "data"


def test_leakage_is_zero_as_of_and_positive_for_the_quarter_join(world, cfg):
    from leadscore.validate.checks import check_leakage

    asof = build_training_set(world, cfg, CATALOG)
    quarter = build_training_set(world, cfg, CATALOG, join="quarter")
    asof_df = world.query(f"SELECT * FROM {asof.table}").to_pandas()
    quarter_df = world.query(f"SELECT * FROM {quarter.table}").to_pandas()
    asof_check = check_leakage(asof_df, "asof", asof.n_crd_matched)
    quarter_check = check_leakage(quarter_df, "quarter", quarter.n_crd_matched)
    assert asof_check.figures["leakage_records_matched"] == 0 and asof_check.passed
    assert quarter_check.figures["leakage_records_matched"] > 0 and not quarter_check.passed
    assert "leaks" in quarter_check.markdown
