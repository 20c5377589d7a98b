"""ingest: tiny hand-built delivery folders -> snapshot tables, views, CRM tables, report."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from leadscore.config import Settings, parse_settings
from leadscore.ingest import load as ingest
from leadscore.ingest import quality, schema
from leadscore.ingest.load import IngestError, ingest_directory
from leadscore.warehouse import tables, transpile
from leadscore.warehouse.duckdb import DuckDBWarehouse

AS_OF = {(2023, 4): "2023-10-01", (2024, 1): "2024-01-01", (2024, 2): "2024-04-01"}


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def rep(crd: str, **values: str) -> dict[str, str]:
    row = dict.fromkeys(schema.REPS_COLUMNS, "")
    row.update(RepCRD=crd, RIAFirmCRD="100", FirstName="Ann", Has_CFP="Y", MilesToWork="12.5")
    row.update(DateBecameRep="2010-05-01", NumberFirmAssociations="2")
    return row | values


def firm(crd: str, **values: str) -> dict[str, str]:
    row = dict.fromkeys(schema.FIRMS_COLUMNS, "")
    row.update(RIAFirmCRD=crd, RIAFirmName="Acme LLC", TotalAssetsInMillions="250.5")
    return row | values


def write_vintage(
    root: Path,
    year: int,
    quarter: int,
    reps: list[dict[str, str]] | None = None,
    processed_at: str | None = "2024-02-03T10:15:00Z",
) -> None:
    as_of = AS_OF[(year, quarter)]
    extra = {"snapshot_as_of": as_of, "processed_at": processed_at or ""}
    rep_cols = [c for c in schema.REPS_COLUMNS if processed_at or c != "processed_at"]
    firm_cols = [c for c in schema.FIRMS_COLUMNS if processed_at or c != "processed_at"]
    rows = reps if reps is not None else [rep("1"), rep("2")]
    reps_rows = [{k: v for k, v in (extra | {k: v for k, v in r.items() if v}).items()
                  if k in rep_cols} for r in rows]  # fmt: skip
    firms_rows = [{k: v for k, v in (firm(c) | extra).items() if k in firm_cols} for c in "12"]
    _write(root / "vendor" / f"reps_{year}_q{quarter}.csv", rep_cols, reps_rows)
    _write(root / "vendor" / f"firms_{year}_q{quarter}.csv", firm_cols, firms_rows)


def lead(lead_id: str, crd: str, modified: str = "2024-03-05T14:22:10.000+0000") -> dict[str, str]:
    return {
        "Id": lead_id,
        "FA_CRD__c": crd,
        "OwnerId": "005A",
        "LeadSource": "LinkedIn",
        "Status": "Contacting",
        "CreatedDate": "2024-03-01T09:00:00.000+0000",
        "LastModifiedDate": modified,
        "Stage_Entered_Contacting__c": "2024-03-02T10:00:00.000+0000",
        "Stage_Entered_Call_Scheduled__c": "",
    }


def write_crm(root: Path, leads: list[dict[str, str]] | None = None) -> None:
    rows = leads if leads is not None else [lead("L1", "1"), lead("L2", ""), lead("L3", "CRD-9")]
    _write(root / "crm" / "Lead.csv", list(schema.LEAD_COLUMNS), rows)
    task = {"Id": "T1", "WhoId": "L1", "OwnerId": "005A", "Type": "Call", "Subject": "Dial",
            "CallDisposition": "Connected", "CallDurationInSeconds": "1,200",
            "ActivityDate": "03/02/2024", "CreatedDate": "2024-03-02T10:00:00+0000"}  # fmt: skip
    _write(root / "crm" / "Task.csv", list(schema.TASK_COLUMNS), [task])


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings().resolve(tmp_path)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    yield warehouse
    warehouse.close()


def make_delivery(root: Path) -> Path:
    write_vintage(root, 2023, 4, processed_at=None)
    write_vintage(root, 2024, 1)
    write_crm(root)
    (root / "truth").mkdir()
    (root / "truth" / "lead_truth.csv").write_text("not,read\n")
    (root / "manifest.json").write_text("{}")
    return root


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    return make_delivery(tmp_path / "delivery")


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ingested delivery, built once; tests get a copy (ingest costs ~1 s of DuckDB work)."""
    root = tmp_path_factory.mktemp("template")
    with DuckDBWarehouse(root / "wh.duckdb") as warehouse:
        ingest_directory(warehouse, make_delivery(root / "delivery"), Settings().resolve(root))
    return root


@pytest.fixture
def ingested(template: Path, tmp_path: Path) -> Iterator[tuple[DuckDBWarehouse, Path]]:
    """A warehouse holding the ingested delivery, and that delivery folder."""
    shutil.copytree(template / "delivery", tmp_path / "delivery")
    shutil.copy(template / "wh.duckdb", tmp_path / "wh.duckdb")
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    yield warehouse, tmp_path / "delivery"
    warehouse.close()


def state(wh: DuckDBWarehouse) -> dict[str, Any]:
    """Every table and view with its rows, in a stable order."""
    out = {}
    for name in wh.list_tables():
        # ingested_at is the one wall-clock value ingest stores
        skip = " EXCLUDE (ingested_at)" if name == ingest.INGEST_LOG else ""
        data = wh.query(f'SELECT *{skip} FROM "{name}"')
        rows = data.to_pylist()
        out[name] = (data.schema, sorted(rows, key=lambda r: json.dumps(r, default=str)))
    return out


def rows(wh: DuckDBWarehouse, sql: str) -> list[dict[str, Any]]:
    return wh.query(sql).to_pylist()


# --- happy path ----------------------------------------------------------------------------------


def test_ingest_builds_snapshots_views_and_crm(
    wh: DuckDBWarehouse, delivery: Path, cfg: Settings
) -> None:
    result = ingest_directory(wh, delivery, cfg)
    assert len(result.added) == 6 and not result.skipped and not result.replaced
    assert set(result.ignored) == {"manifest.json", "truth"}
    assert {"snapshot_reps_2023_q4", "snapshot_firms_2024_q1", tables.LEADS, tables.TASKS} <= set(
        wh.list_tables()
    )
    view = rows(
        wh,
        f"SELECT snapshot_quarter, snapshot_as_of, processed_at, available_at, count(*) AS n "
        f"FROM {tables.REPS_ALL_VINTAGES} GROUP BY ALL ORDER BY 1",
    )
    lag = datetime(2023, 11, 15, tzinfo=UTC)  # 2023-10-01 + 45 days: processed_at was absent
    got = [(r["snapshot_quarter"], r["processed_at"], r["available_at"], r["n"]) for r in view]
    assert got == [
        (date(2023, 10, 1), None, lag, 2),
        (date(2024, 1, 1), datetime(2024, 2, 3, 10, 15, tzinfo=UTC),
         datetime(2024, 2, 3, 10, 15, tzinfo=UTC), 2),
    ]  # fmt: skip
    firms = rows(wh, f"SELECT DISTINCT snapshot_quarter FROM {tables.FIRMS_ALL_VINTAGES}")
    assert len(firms) == 2
    typed = wh.query("SELECT * FROM snapshot_reps_2024_q1 ORDER BY _source_row")
    assert typed.schema.field("RepCRD").type == pa.int64()
    assert typed.schema.field("Has_CFP").type == pa.bool_()
    assert typed.schema.field("DateBecameRep").type == pa.date32()
    assert typed.schema.field("available_at").type == pa.timestamp("us", tz="UTC")
    first = typed.to_pylist()[0]
    assert (first["Has_CFP"], first["MilesToWork"], first["_source_row"]) == (True, 12.5, 1)
    assert first["_source_file"] == "vendor/reps_2024_q1.csv"


def test_report_is_written(wh: DuckDBWarehouse, delivery: Path, cfg: Settings) -> None:
    result = ingest_directory(wh, delivery, cfg)
    report = json.loads(result.report_json.read_text())
    assert result.report_json == cfg.project.reports_dir / "ingest" / "quality.json"
    # leads with a contact timestamp: L1 (CRD 1, in the latest vintage), L2 (blank), L3 (bad)
    assert report["crd_match"] == {
        "n_contacted": 3, "n_matched": 1, "rate": pytest.approx(1 / 3), "vintage": "2024-01-01"
    }  # fmt: skip
    assert report["crd_status"] == {"malformed": 1, "missing": 1, "ok": 1}
    assert report["leads_per_month"] == {"2024-03": 3}
    assert report["completeness"]["snapshot_reps_2024_q1"]["RepCRD"] == 1.0
    assert report["completeness"]["snapshot_reps_2024_q1"]["Notes"] == 0.0
    assert report["dedup_rules"] == quality.DEDUP_RULES
    md = result.report_md.read_text()
    assert md.splitlines()[2].startswith("**CRD match rate 33.3%**")
    assert "vendor/firms_2023_q4.csv: columns absent (NULL): processed_at" in md


# --- casting -------------------------------------------------------------------------------------


def test_cast_failures_are_counted_exactly(tmp_path: Path, wh: DuckDBWarehouse) -> None:
    # the limit off: this file is mostly junk, which by default fails ingest (tested below)
    cfg = parse_settings({"ingest": {"max_cast_failure_rate": 1.0}}).resolve(tmp_path)
    root = tmp_path / "d"
    write_vintage(root, 2024, 1, reps=[
        rep("1", MilesToWork="1,234.5", NumberFirmAssociations="Osseo", Has_CFP="true"),
        rep("2", MilesToWork="N/A", NumberFirmAssociations="", Has_CFP="0"),
        rep("3", MilesToWork="see notes", NumberFirmAssociations="3.0", Has_CFP="maybe"),
        rep("4", MilesToWork="-", NumberFirmAssociations="2.5", DateBecameRep="03/15/2012"),
        rep("5", MilesToWork="NaN", DateBecameRep="2012-13-45", Has_CFP="n"),
    ])  # fmt: skip
    result = ingest_directory(wh, root, cfg)
    got = {r["RepCRD"]: r for r in rows(wh, "SELECT * FROM snapshot_reps_2024_q1")}
    assert [got[i]["MilesToWork"] for i in range(1, 6)] == [1234.5, None, None, None, None]
    assert [got[i]["NumberFirmAssociations"] for i in range(1, 6)] == [None, None, 3, None, 2]
    assert [got[i]["Has_CFP"] for i in range(1, 6)] == [True, False, None, True, False]
    assert got[4]["DateBecameRep"] == date(2012, 3, 15) and got[5]["DateBecameRep"] is None
    report = json.loads(result.report_json.read_text())
    failures = {f["file"]: f["cast_failures"] for f in report["files"]}
    assert failures["vendor/reps_2024_q1.csv"] == {
        "MilesToWork": 4, "NumberFirmAssociations": 2, "Has_CFP": 1, "DateBecameRep": 1
    }  # fmt: skip
    assert failures["vendor/firms_2024_q1.csv"] == {}
    load = next(f for f in result.files if f.file == "vendor/reps_2024_q1.csv")
    assert load.n_cast_failures == 8


def test_crm_tables_parse_crd_and_timestamps(
    wh: DuckDBWarehouse, delivery: Path, cfg: Settings
) -> None:
    ingest_directory(wh, delivery, cfg)
    leads = {r["Id"]: r for r in rows(wh, f"SELECT * FROM {tables.LEADS}")}
    assert {k: (v["RepCRD"], v["crd_status"]) for k, v in leads.items()} == {
        "L1": (1, "ok"), "L2": (None, "missing"), "L3": (None, "malformed")
    }  # fmt: skip
    assert leads["L1"]["LastModifiedDate"] == datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC)
    assert leads["L1"]["FA_CRD__c"] == "1"
    task = rows(wh, f"SELECT * FROM {tables.TASKS}")[0]
    assert task["CallDurationInSeconds"] == 1200 and task["ActivityDate"] == date(2024, 3, 2)


# --- duplicates ----------------------------------------------------------------------------------


def test_duplicate_rep_keeps_most_complete_then_earliest(
    tmp_path: Path, wh: DuckDBWarehouse, cfg: Settings
) -> None:
    root = tmp_path / "d"
    write_vintage(root, 2024, 1, reps=[
        rep("7", Branch_State="NY"),                       # row 1
        rep("7", Branch_State="NJ", Home_State="NJ"),      # row 2: most non-null -> kept
        rep("7", Branch_State="CT", Home_State="CT"),      # row 3: tie, later -> dropped
        rep("8", Branch_State="TX"),                       # row 4: tie with row 5, earlier
        rep("8", Branch_State="OK"),                       # row 5
        rep("Osseo"), rep(""),                             # rows 6, 7: no key -> both kept
    ])  # fmt: skip
    result = ingest_directory(wh, root, cfg)
    kept = rows(wh, "SELECT RepCRD, Branch_State, _source_row FROM snapshot_reps_2024_q1")
    assert [(r["RepCRD"], r["Branch_State"], r["_source_row"]) for r in kept] == [
        (7, "NJ", 2), (8, "TX", 4), (None, None, 6), (None, None, 7)
    ]  # fmt: skip
    load = next(f for f in result.files if f.file == "vendor/reps_2024_q1.csv")
    assert (load.n_rows, load.n_kept, load.n_duplicates) == (7, 4, 3)
    figures = next(f for f in json.loads(result.report_json.read_text())["files"]
                   if f["file"] == load.file)  # fmt: skip
    assert (figures["n_unique_keys"], figures["n_null_keys"]) == (2, 2)


def test_source_rows_follow_the_file_when_it_is_read_on_every_thread(
    tmp_path: Path, wh: DuckDBWarehouse, cfg: Settings
) -> None:
    """A file of some 35 MB, which DuckDB parses in pieces on several threads: each row's
    ``_source_row`` is still its place in the file, and the duplicate rule still keeps the
    earliest row. (Numbering the rows of a table cast in parallel by ``rowid`` fails this:
    the cast rows did not keep the file's order.)"""
    root = tmp_path / "d"
    write_vintage(root, 2024, 1)
    path = root / "vendor" / "reps_2024_q1.csv"
    columns = path.read_text().splitlines()[0].split(",")
    n = 600_000
    fields = {"RepCRD": "{crd}", "Branch_State": "{state}", "snapshot_as_of": "2024-01-01"}
    template = ",".join(fields.get(c, "") for c in columns)
    states = ["NY", "NJ", "CT", "TX"]
    lines = [template.format(crd=i, state=states[i % 4]) for i in range(1, n)]
    lines.append(template.format(crd=7, state=states[7 % 4]))  # row n: a tie with row 7
    path.write_text(",".join(columns) + "\n" + "\n".join(lines) + "\n")
    assert path.stat().st_size > 30 * 2**20
    result = ingest_directory(wh, root, cfg)
    load = next(f for f in result.files if f.file == "vendor/reps_2024_q1.csv")
    assert (load.n_rows, load.n_kept, load.n_duplicates) == (n, n - 1, 1)
    got = rows(wh, "SELECT count(*) AS n, count(*) FILTER (WHERE RepCRD <> _source_row) AS "
                   "moved, max(_source_row) AS last FROM snapshot_reps_2024_q1")[0]  # fmt: skip
    assert (got["n"], got["moved"], got["last"]) == (n - 1, 0, n - 1)


def test_duplicate_lead_keeps_latest_modified_then_earliest(
    tmp_path: Path, wh: DuckDBWarehouse, cfg: Settings
) -> None:
    root = tmp_path / "d"
    write_crm(root, leads=[
        lead("A", "11", modified="2024-03-01T00:00:00.000+0000"),
        lead("A", "12", modified="2024-03-09T00:00:00.000+0000"),  # latest -> kept
        lead("A", "13", modified=""),
        lead("B", "21", modified="2024-03-09T00:00:00.000+0000"),  # tie, earliest -> kept
        lead("B", "22", modified="2024-03-09T00:00:00.000+0000"),
    ])  # fmt: skip
    result = ingest_directory(wh, root, cfg)
    kept = rows(wh, f"SELECT Id, RepCRD FROM {tables.LEADS} ORDER BY Id")
    assert [(r["Id"], r["RepCRD"]) for r in kept] == [("A", 12), ("B", 21)]
    load = next(f for f in result.files if f.file == "crm/Lead.csv")
    assert load.n_duplicates == 3


# --- re-runs -------------------------------------------------------------------------------------


def test_rerun_changes_nothing(ingested: tuple[DuckDBWarehouse, Path], cfg: Settings) -> None:
    wh, delivery = ingested
    before = state(wh)
    again = ingest_directory(wh, delivery, cfg)
    assert len(again.skipped) == 6 and not again.added and not again.replaced
    assert state(wh) == before


def test_new_quarter_only_adds(ingested: tuple[DuckDBWarehouse, Path], cfg: Settings) -> None:
    wh, delivery = ingested
    before = state(wh)
    write_vintage(delivery, 2024, 2, reps=[rep("1"), rep("2"), rep("3")])
    result = ingest_directory(wh, delivery, cfg)
    assert set(result.added) == {"vendor/reps_2024_q2.csv", "vendor/firms_2024_q2.csv"}
    after = state(wh)
    views = {tables.REPS_ALL_VINTAGES, tables.FIRMS_ALL_VINTAGES, ingest.INGEST_LOG}
    assert {k: v for k, v in after.items() if k not in views} == {
        **{k: v for k, v in before.items() if k not in views},
        "snapshot_reps_2024_q2": after["snapshot_reps_2024_q2"],
        "snapshot_firms_2024_q2": after["snapshot_firms_2024_q2"],
    }
    counts = rows(wh, f"SELECT snapshot_quarter, count(*) AS n FROM {tables.REPS_ALL_VINTAGES} "
                      "GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert [r["n"] for r in counts] == [2, 2, 3]


def test_changed_file_for_a_loaded_quarter_is_refused(
    ingested: tuple[DuckDBWarehouse, Path], cfg: Settings
) -> None:
    wh, delivery = ingested
    before = state(wh)
    write_vintage(delivery, 2024, 2)  # a good new quarter: not loaded either
    write_vintage(delivery, 2024, 1, reps=[rep("5")])  # a cut-down re-delivery
    with pytest.raises(IngestError, match=r"vendor/reps_2024_q1.csv \(2 rows loaded\).*--replace"):
        ingest_directory(wh, delivery, cfg)
    assert state(wh) == before


def test_changed_file_replaces_its_vintage_with_replace_and_keeps_a_backup(
    ingested: tuple[DuckDBWarehouse, Path], cfg: Settings
) -> None:
    wh, delivery = ingested
    write_vintage(delivery, 2024, 1, reps=[rep("2", MilesToWork="99"), rep("5")])
    result = ingest_directory(wh, delivery, cfg, replace_quarters=True)
    assert result.replaced == ("vendor/reps_2024_q1.csv",)  # the firms file did not change
    assert "replaced" in result.summary()
    assert rows(wh, "SELECT RepCRD FROM snapshot_reps_2024_q1") == [{"RepCRD": 2}, {"RepCRD": 5}]
    assert len(rows(wh, f"SELECT * FROM {tables.REPS_ALL_VINTAGES}")) == 4
    (change,) = result.replacements
    backup = change["backup"]
    assert backup.startswith("snapshot_reps_2024_q1_backup_2") and wh.table_exists(backup)
    assert rows(wh, f"SELECT RepCRD FROM {backup} ORDER BY 1") == [{"RepCRD": 1}, {"RepCRD": 2}]
    assert (change["rows_before"], change["rows_after"]) == (2, 2)
    assert (change["keys_added"], change["keys_removed"], change["keys_changed"]) == (1, 1, 1)
    assert f"old table kept as {backup}" in result.report_md.read_text()


# --- failures leave the warehouse as it was ------------------------------------------------------


def _break_missing_column(root: Path) -> None:
    path = root / "vendor" / "reps_2024_q2.csv"
    cols = [c for c in schema.REPS_COLUMNS if c != "Has_CFP"]
    _write(path, cols, [{k: v for k, v in rep("1", snapshot_as_of="2024-04-01").items()
                         if k in cols}])  # fmt: skip


def _replace_lead_timestamps(root: Path, first: str, second: str) -> None:
    write_crm(root, leads=[lead("N1", "1", modified=first), lead("N2", "2", modified=second)])


BREAKERS = {
    "missing column": (_break_missing_column, "missing required column(s): Has_CFP"),
    "empty file": (lambda r: (r / "vendor" / "reps_2024_q2.csv").write_text(""), "empty file"),
    "header only": (
        lambda r: _write(r / "vendor" / "firms_2024_q2.csv", list(schema.FIRMS_COLUMNS), []),
        "no data rows",
    ),
    "parquet": (
        lambda r: (r / "vendor" / "reps_2024_q2.csv").write_bytes(b"PAR1\x15\x04\x00\x00"),
        "Parquet",
    ),
    "json": (lambda r: (r / "crm" / "Lead.csv").write_text('[{"Id": "x"}]'), "JSON"),
    "binary": (lambda r: (r / "crm" / "Task.csv").write_bytes(b"\x89PNG\r\n\x00\x00"), "binary"),
    "bad header": (lambda r: (r / "crm" / "Task.csv").write_text('"Id,WhoId\n1,2\n'), "header"),
    "semicolons": (
        lambda r: (r / "crm" / "Task.csv").write_text(";".join(schema.TASK_COLUMNS) + "\n1\n"),
        "not comma-separated",
    ),
    "ragged row": (
        lambda r: (r / "crm" / "Task.csv").write_text(",".join(schema.TASK_COLUMNS) + "\n1,2\n"),
        "not a readable CSV",
    ),
    "unknown vendor file": (
        lambda r: (r / "vendor" / "reps_2024.csv").write_text("x\n1\n"),
        "vendor/reps_2024.csv: unknown file",
    ),
    "naive timestamps": (
        lambda r: _replace_lead_timestamps(r, "2024-03-05T14:22:10", "2024-03-06T08:00:00"),
        "crm/Lead.csv: column LastModifiedDate has 2 timestamp(s) without a time zone",
    ),
    "mixed zones": (
        lambda r: _replace_lead_timestamps(
            r, "2024-03-05T14:22:10.000+0000", "2024-03-06T08:00:00.000-0500"
        ),
        "crm/Lead.csv: column LastModifiedDate mixes time zones (+00:00 and -05:00)",
    ),
    "some naive": (
        lambda r: _replace_lead_timestamps(r, "2024-03-05T14:22:10.000+0000", "2024-03-06"),
        "beside values in +00:00; set crm.timestamp_zone",
    ),
    "wrong quarter": (
        lambda r: write_vintage(r, 2024, 2, reps=[rep("1", snapshot_as_of="2024-01-01")]),
        "snapshot_as_of 2024-01-01 is not in 2024 Q2",
    ),
}


@pytest.mark.parametrize("breaker", list(BREAKERS), ids=list(BREAKERS))
def test_bad_file_fails_loudly_and_changes_nothing(
    breaker: str, ingested: tuple[DuckDBWarehouse, Path], cfg: Settings
) -> None:
    wh, delivery = ingested
    before = state(wh)
    write_vintage(delivery, 2024, 2)  # a good new quarter beside the broken file
    BREAKERS[breaker][0](delivery)
    with pytest.raises(IngestError, match=_escape(BREAKERS[breaker][1])):
        ingest_directory(wh, delivery, cfg)
    after = state(wh)
    if breaker in LATE:  # found while loading: the files before it went in, it did not
        table = LATE[breaker]
        assert after.get(table) == before.get(table)
        assert "snapshot_firms_2024_q2" in after
    else:  # found by the checks every file passes before any is loaded
        assert after == before


#: Problems found only when the file is read in full, and the table the broken file feeds.
LATE = {
    "ragged row": tables.TASKS,
    "naive timestamps": tables.LEADS,
    "mixed zones": tables.LEADS,
    "some naive": tables.LEADS,
    "wrong quarter": "snapshot_reps_2024_q2",
}


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_naive_timestamps_read_in_configured_zone(tmp_path: Path, wh: DuckDBWarehouse) -> None:
    cfg = parse_settings({"crm": {"timestamp_zone": "America/New_York"}}).resolve(tmp_path)
    root = tmp_path / "d"
    _replace_lead_timestamps(root, "2024-03-05T14:22:10", "2024-07-06 08:00:00.000+0000")
    ingest_directory(wh, root, cfg)
    got = {r["Id"]: r["LastModifiedDate"] for r in rows(wh, f"SELECT * FROM {tables.LEADS}")}
    assert got == {
        "N1": datetime(2024, 3, 5, 19, 22, 10, tzinfo=UTC),  # EST: +5 h
        "N2": datetime(2024, 7, 6, 8, 0, tzinfo=UTC),  # its own zone wins
    }


def test_unknown_zone_in_config_is_an_error(tmp_path: Path, wh: DuckDBWarehouse) -> None:
    cfg = parse_settings({"vendor": {"timestamp_zone": "Mars/Olympus"}}).resolve(tmp_path)
    write_vintage(tmp_path / "d", 2024, 1)
    with pytest.raises(IngestError, match=r"vendor\.timestamp_zone"):
        ingest_directory(wh, tmp_path / "d", cfg)


def test_extra_columns_are_reported_not_loaded(
    tmp_path: Path, wh: DuckDBWarehouse, cfg: Settings
) -> None:
    root = tmp_path / "d"
    write_vintage(root, 2024, 1)
    path = root / "vendor" / "firms_2024_q1.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",Surprise"] + [x + ",1" for x in lines[1:]]) + "\n")
    result = ingest_directory(wh, root, cfg)
    assert "Surprise" not in wh.query("SELECT * FROM snapshot_firms_2024_q1").column_names
    assert "firms_2024_q1.csv: extra columns, not loaded: Surprise" in result.report_md.read_text()


# --- backends ------------------------------------------------------------------------------------


def test_arrow_staging_gives_the_same_tables(
    tmp_path: Path, delivery: Path, cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BigQuery path stages through pyarrow + load_arrow; the tables must not differ."""
    with DuckDBWarehouse(tmp_path / "a.duckdb") as a, DuckDBWarehouse(tmp_path / "b.duckdb") as b:
        ingest_directory(a, delivery, cfg)
        monkeypatch.setattr(ingest, "_stage_with_duckdb", ingest._stage_with_arrow)
        ingest_directory(b, delivery, cfg)
        assert state(a) == state(b)


class RecordingWarehouse(DuckDBWarehouse):
    """DuckDB that remembers every statement ingest sends it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        super().execute(sql)

    def query(self, sql: str) -> pa.Table:
        self.statements.append(sql)
        return super().query(sql)

    def create_view(self, name: str, sql: str) -> None:
        self.statements.append(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')
        super().create_view(name, sql)


def test_generated_sql_transpiles_to_bigquery(
    tmp_path: Path, delivery: Path, cfg: Settings
) -> None:
    with RecordingWarehouse(tmp_path / "r.duckdb") as wh:
        ingest_directory(wh, delivery, cfg)
        statements = [s for s in wh.statements if "read_csv(" not in s]  # DuckDB-only staging
    kinds = {s.split(" AS")[0] for s in statements if s.startswith("CREATE OR REPLACE")}
    assert any("snapshot_reps_2023_q4" in k for k in kinds)
    assert any(tables.REPS_ALL_VINTAGES in k for k in kinds)
    for sql in statements:
        out = "\n".join(transpile(sql, "bigquery", dataset="LeadScoring"))
        assert "TRY_CAST" not in out and "TRY_STRPTIME" not in out
    # the one cast pass reads the stage; the snapshot table is built from its typed rows
    cast = next(
        s for s in statements if s.startswith('CREATE OR REPLACE TEMP TABLE "_ingest_typed')
    )
    bq = transpile(cast, "bigquery", dataset="LeadScoring")[0]
    assert "SAFE_CAST" in bq and "LeadScoring.`_ingest_stage`" in bq
    # (into the scratch table that replaces it: see leadscore.warehouse.swap)
    load = next(s for s in statements
                if s.startswith('CREATE OR REPLACE TABLE "_next_snapshot_reps'))  # fmt: skip
    assert "LeadScoring.`_ingest_typed`" in transpile(load, "bigquery", dataset="LeadScoring")[0]


def test_utc_survives_arrow_round_trip(
    ingested: tuple[DuckDBWarehouse, Path], cfg: Settings
) -> None:
    wh, _ = ingested
    data = wh.query(f"SELECT Id, LastModifiedDate FROM {tables.LEADS} ORDER BY Id")
    assert data.schema.field("LastModifiedDate").type == pa.timestamp("us", tz="UTC")
    wh.load_arrow("leads_copy", data)
    back = wh.query("SELECT * FROM leads_copy ORDER BY Id")
    assert back.equals(data)
