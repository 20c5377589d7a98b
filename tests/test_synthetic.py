"""Tests of the synthetic world generator (leadscore.synthetic) at a tiny scale."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from leadscore.ingest.schema import FIRMS_COLUMNS, LEAD_COLUMNS, REPS_COLUMNS, TASK_COLUMNS
from leadscore.io import sha256_file
from leadscore.synthetic import AS_OF, WorldManifest, generate_world

SCALE = 0.01
WINDOW = timedelta(days=30)
#: Reps columns a duplicate CRD row may differ in (everything else is identical).
DUP_FREE_COLS = {"Branch_State", "Branch_City", "Branch_County", "Branch_ZipCode", "Title",
                 "SocialMedia_LinkedIn", "PersonalWebpage", "Notes"}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldManifest]:
    out = tmp_path_factory.mktemp("world")
    seen: list[tuple[str, float]] = []
    manifest = generate_world(out, scale=SCALE, seed=42, progress=lambda s, f: seen.append((s, f)))
    (out / "progress.json").write_text(json.dumps(seen))
    return out, manifest


@pytest.fixture(scope="module")
def planted(world: tuple[Path, WorldManifest]) -> dict[str, Any]:
    return json.loads((world[0] / "truth" / "planted.json").read_text())


def _header(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [c.strip('"') for c in fh.readline().rstrip("\n").split(",")]


def _read_str(path: Path) -> pa.Table:
    """A CSV with every column as text (blank -> NULL)."""
    opts = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(_header(path), pa.string()),
        null_values=[""],  # pyarrow's defaults would also read the junk "N/A" as NULL
        strings_can_be_null=True,
    )
    return pa_csv.read_csv(path, convert_options=opts)


def _col(table: pa.Table, name: str) -> np.ndarray:
    return np.array(table[name].to_pylist(), dtype=object)


def _sf_ts(values: np.ndarray) -> np.ndarray:
    """Salesforce timestamp text -> datetime64[s] (NaT for NULL)."""
    text = [v[:19] if v else "NaT" for v in values]
    return np.array(text, dtype="datetime64[s]")


def _leads(out: Path) -> pa.Table:
    return _read_str(out / "crm" / "Lead.csv")


def _unique_leads(out: Path) -> dict[str, np.ndarray]:
    leads = _leads(out)
    ids = _col(leads, "Id")
    _, first = np.unique(ids, return_index=True)
    keep = np.sort(first)
    return {c: _col(leads, c)[keep] for c in leads.column_names}


def _vintage_crds(out: Path, manifest: WorldManifest) -> list[set[int]]:
    return [
        set(_read_str(out / v.reps_file)["RepCRD"].cast(pa.int64()).to_pylist())
        for v in manifest.vintages
    ]


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def test_same_seed_gives_identical_files(
    world: tuple[Path, WorldManifest], tmp_path: Path
) -> None:
    out, manifest = world
    again = generate_world(tmp_path / "again", scale=SCALE, seed=42)
    assert again.sha256 == manifest.sha256
    assert len(manifest.sha256) == 8 * 2 + 4
    for name, digest in manifest.sha256.items():
        assert sha256_file(out / name) == digest
    assert sha256_file(out / "manifest.json") == sha256_file(tmp_path / "again" / "manifest.json")


def test_different_seed_differs(world: tuple[Path, WorldManifest], tmp_path: Path) -> None:
    other = generate_world(tmp_path / "other", scale=SCALE, seed=7)
    for name, digest in world[1].sha256.items():
        assert other.sha256[name] != digest, name


def test_weak_signal_changes_only_crm_and_truth(
    world: tuple[Path, WorldManifest], tmp_path: Path
) -> None:
    weak = generate_world(tmp_path / "weak", scale=SCALE, seed=42, signal="weak")
    for name, digest in world[1].sha256.items():
        assert (weak.sha256[name] == digest) == name.startswith("vendor/"), name


def test_files_have_exactly_the_schema_columns(world: tuple[Path, WorldManifest]) -> None:
    out, manifest = world
    for i, v in enumerate(manifest.vintages):
        drop = {"processed_at"} if i == 0 else set()
        assert _header(out / v.reps_file) == [c for c in REPS_COLUMNS if c not in drop]
        assert _header(out / v.firms_file) == [c for c in FIRMS_COLUMNS if c not in drop]
    assert _header(out / "crm" / "Lead.csv") == list(LEAD_COLUMNS)
    assert _header(out / "crm" / "Task.csv") == list(TASK_COLUMNS)
    assert _header(out / "truth" / "lead_truth.csv") == [
        "Id", "true_probability", "asof_vintage", "planted", "converted_within_window"
    ]  # fmt: skip


def test_vintage_availability(world: tuple[Path, WorldManifest]) -> None:
    out, manifest = world
    first = manifest.vintages[0]
    assert first.processed_at is None
    assert manifest.delivery_lag_days == 45
    assert first.available_at == "2023-11-15T00:00:00Z"
    assert [v.snapshot_as_of[:7] for v in manifest.vintages][::3] == [
        "2023-10", "2024-07", "2025-04"
    ]  # fmt: skip
    for v in manifest.vintages[1:]:
        assert v.processed_at is not None and v.available_at == v.processed_at
        lag = datetime.fromisoformat(v.processed_at) - datetime.fromisoformat(
            v.snapshot_as_of + "T00:00:00+00:00"
        )
        assert timedelta(days=20) <= lag <= timedelta(days=51)
        reps = _read_str(out / v.reps_file)
        assert set(reps["processed_at"].to_pylist()) == {v.processed_at}
        assert set(reps["snapshot_as_of"].to_pylist()) == {v.snapshot_as_of}


def test_reps_reference_firms_of_the_same_vintage(world: tuple[Path, WorldManifest]) -> None:
    out, manifest = world
    for v in manifest.vintages:
        reps = _read_str(out / v.reps_file)
        firms = _read_str(out / v.firms_file)
        assert set(reps["RIAFirmCRD"].to_pylist()) <= set(firms["RIAFirmCRD"].to_pylist())


def test_vendor_counts_match_files(
    world: tuple[Path, WorldManifest], planted: dict[str, Any]
) -> None:
    out, manifest = world
    for v in manifest.vintages:
        label = Path(v.reps_file).stem.removeprefix("reps_")
        for kind, path in (("reps", v.reps_file), ("firms", v.firms_file)):
            expected = planted["vintages"][label][kind]
            table = _read_str(out / path)
            key = "RepCRD" if kind == "reps" else "RIAFirmCRD"
            keys = table[key].to_pylist()
            assert expected["rows"] == table.num_rows == manifest.row_counts[path]
            assert expected["unique_keys"] == len(set(keys))
            assert expected["duplicate_rows"] == len(keys) - len(set(keys))
            for col, n_junk in expected["junk_cells"].items():
                cells = [c for c in table[col].to_pylist() if c is not None]
                assert sum(not _is_number(c) for c in cells) == n_junk, (path, col)
                n_sep = expected["thousands_separator_cells"].get(col)
                if n_sep is not None:
                    assert sum("," in c and _is_number(c) for c in cells) == n_sep
            for col, n_null in expected["null_cells"].items():
                assert table[col].null_count == n_null, (path, col)


def test_duplicate_reps_keep_signal_columns(world: tuple[Path, WorldManifest]) -> None:
    out, manifest = world
    reps = _read_str(out / manifest.vintages[-1].reps_file).to_pandas()
    dups = reps[reps.duplicated("RepCRD", keep=False)].sort_values("RepCRD", kind="stable")
    assert len(dups) > 0
    signal_cols = [c for c in reps.columns if c not in DUP_FREE_COLS]
    groups = dups.fillna("<NULL>").groupby("RepCRD")[signal_cols].nunique()
    assert (groups == 1).all().all()
    assert (dups.groupby("RepCRD")["Branch_State"].nunique(dropna=False) > 1).any()


def test_lead_counts_match_files(
    world: tuple[Path, WorldManifest], planted: dict[str, Any]
) -> None:
    out, manifest = world
    leads = _leads(out)
    ids = _col(leads, "Id")
    uniq, counts = np.unique(ids, return_counts=True)
    assert planted["n_lead_rows"] == len(ids)
    assert planted["n_leads"] == len(uniq)
    assert planted["n_duplicate_lead_rows"] == len(ids) - len(uniq)
    assert sorted(uniq[counts > 1]) == planted["duplicate_lead_ids"]
    assert counts.max() <= 2
    lead = _unique_leads(out)
    crd = lead["FA_CRD__c"]
    blank = np.array([c is None for c in crd])
    digits = np.array([c is not None and c.isdigit() for c in crd])
    known = set().union(*_vintage_crds(out, manifest))
    unknown = np.array([d and int(c) not in known for c, d in zip(crd, digits, strict=True)])
    assert planted["n_crd_missing"] == blank.sum()
    assert planted["n_crd_malformed"] == (~blank & ~digits).sum()
    assert planted["n_crd_unknown"] == unknown.sum()
    assert planted["n_crd_valid"] == (digits & ~unknown).sum()
    contact = _sf_ts(lead["Stage_Entered_Contacting__c"])
    call = _sf_ts(lead["Stage_Entered_Call_Scheduled__c"])
    window = np.timedelta64(30, "D")
    assert planted["n_negative_days"] == (call < contact).sum()
    assert planted["n_converted_30d"] == ((call >= contact) & (call <= contact + window)).sum()
    assert planted["n_converted_late"] == (call > contact + window).sum()
    cut = np.datetime64(AS_OF.replace(tzinfo=None) - WINDOW, "s")
    assert planted["n_right_censored_total"] == (contact > cut).sum()
    first_available = np.datetime64(manifest.vintages[0].available_at[:19], "s")
    assert planted["n_no_snapshot"] == (contact < first_available).sum()
    assert planted["n_dials"] == _read_str(out / "crm" / "Task.csv").num_rows


def test_truth_agrees_with_leads(
    world: tuple[Path, WorldManifest], planted: dict[str, Any]
) -> None:
    out, manifest = world
    truth = _read_str(out / "truth" / "lead_truth.csv").to_pandas()
    lead = _unique_leads(out)
    assert list(truth["Id"]) == list(lead["Id"])
    p = truth["true_probability"].astype(float)
    assert ((p > 0) & (p < 1)).all()
    assert truth["planted"].value_counts().to_dict() == planted["planted_label_counts"]
    contact = _sf_ts(lead["Stage_Entered_Contacting__c"])
    call = _sf_ts(lead["Stage_Entered_Call_Scheduled__c"])
    in_window = (call >= contact) & (call <= contact + np.timedelta64(30, "D"))
    assert (truth["converted_within_window"].astype(int).to_numpy() == in_window).all()
    crds = _vintage_crds(out, manifest)
    snaps = [v.snapshot_as_of for v in manifest.vintages]
    ok = truth["planted"] == "ok"
    for crd, asof in zip(lead["FA_CRD__c"][ok], truth["asof_vintage"][ok], strict=True):
        assert int(crd) in crds[snaps.index(asof)]
    assert truth.loc[truth["planted"] == "no_snapshot", "asof_vintage"].isna().all()


def test_shares_are_roughly_right(planted: dict[str, Any]) -> None:
    rate = planted["n_converted_30d_eligible"] / planted["n_eligible"]
    assert 0.02 <= rate <= 0.06
    assert 0.90 <= planted["n_crd_valid"] / planted["n_leads"] <= 0.98
    assert 0.2 <= planted["n_no_snapshot"] / planted["n_leads"] <= 0.4
    assert 2.5 <= planted["n_dials"] / planted["n_leads"] <= 4.5
    late = planted["n_converted_late"]
    assert 0.03 <= late / (late + planted["n_converted_30d"]) <= 0.25


def test_no_crm_timestamp_after_as_of(world: tuple[Path, WorldManifest]) -> None:
    out, _ = world
    as_of = np.datetime64(AS_OF.replace(tzinfo=None), "s")
    leads = _leads(out)
    for col in ("CreatedDate", "LastModifiedDate", "Stage_Entered_Contacting__c",
                "Stage_Entered_Call_Scheduled__c"):  # fmt: skip
        ts = _sf_ts(_col(leads, col))
        assert not (ts[~np.isnat(ts)] > as_of).any(), col
    created = _sf_ts(_col(leads, "CreatedDate"))
    assert (created <= _sf_ts(_col(leads, "Stage_Entered_Contacting__c"))).all()
    tasks = _read_str(out / "crm" / "Task.csv")
    task_ts = _sf_ts(_col(tasks, "CreatedDate"))
    assert (task_ts <= as_of).all()
    lead = _unique_leads(out)
    contact = dict(zip(lead["Id"], _sf_ts(lead["Stage_Entered_Contacting__c"]), strict=True))
    start = np.array([contact[w] for w in _col(tasks, "WhoId")])
    # most dials fall in the KPI window; a real CRM also has some before contact, after the
    # window and after the MQL, which "MQLs per 100 dials within 30 days" must leave out
    before = task_ts < start
    after_window = task_ts > start + np.timedelta64(30, "D")
    call = dict(zip(lead["Id"], _sf_ts(lead["Stage_Entered_Call_Scheduled__c"]), strict=True))
    mql = np.array([call[w] for w in _col(tasks, "WhoId")])
    after_mql = ~np.isnat(mql) & (mql >= start) & (task_ts > mql)
    for stray in (before, after_window, after_mql):
        assert 0 < stray.sum() < 0.1 * len(task_ts)
    assert (task_ts[before] >= start[before] - np.timedelta64(10, "D")).all()
    assert set(tasks["Type"].to_pylist()) == {"Call"}
    assert [d[:10] for d in _col(tasks, "CreatedDate")] == tasks["ActivityDate"].to_pylist()


def test_contacts_spread_over_the_week(world: tuple[Path, WorldManifest]) -> None:
    lead = _unique_leads(world[0])
    days = _sf_ts(lead["Stage_Entered_Contacting__c"]).astype("datetime64[D]").astype(np.int64)
    weekday = (days + 3) % 7
    share = np.bincount(weekday, minlength=7) / len(weekday)
    assert (share[5:] > 0.03).all() and (share[5:] < 0.10).all()


def test_salesforce_ids(world: tuple[Path, WorldManifest]) -> None:
    lead = _unique_leads(world[0])
    assert all(len(i) == 18 and i.startswith("00Q") for i in lead["Id"])
    assert all(o.startswith("005") for o in lead["OwnerId"])
    assert len(set(lead["OwnerId"])) <= 20


def test_manifest_and_progress(world: tuple[Path, WorldManifest]) -> None:
    out, manifest = world
    saved = json.loads((out / "manifest.json").read_text())
    assert saved == json.loads(json.dumps(manifest.to_dict()))
    assert saved["as_of"] == "2025-11-01T00:00:00Z" and saved["label_window_days"] == 30
    assert "out_dir" not in saved
    seen = json.loads((out / "progress.json").read_text())
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert datetime.fromisoformat(saved["as_of"]) == AS_OF.astimezone(UTC)


def test_rejects_non_positive_scale(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_world(tmp_path, scale=0)
