"""The synthetic future: daily delivery folders, new vintages, CRD fixes, drift in the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.io import sha256_file
from leadscore.synthetic import generate_world
from leadscore.synthetic.future import AUM_SHIFT_FACTOR, CONVERSION_FACTOR, parse_drift

SCALE = 0.05
DAYS = 40


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("future")
    out = {"none": root / "none", "plain": root / "plain"}
    generate_world(out["none"], scale=SCALE, seed=42)
    generate_world(out["plain"], scale=SCALE, seed=42, future_days=DAYS)
    for name in ("aum_shift", "columns_dropped", "conversion_drop"):
        out[name] = root / name
        drift = parse_drift(name, 5)
        generate_world(out[name], scale=SCALE, seed=42, future_days=DAYS, drift=drift)
    return out


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_the_history_does_not_depend_on_the_future(worlds: dict[str, Path]) -> None:
    history = sorted(
        p.relative_to(worlds["none"]) for p in worlds["none"].rglob("*.*") if p.is_file()
    )
    for name in ("plain", "aum_shift", "columns_dropped", "conversion_drop"):
        for rel in history:
            if rel.name != "manifest.json":
                assert sha256_file(worlds["none"] / rel) == sha256_file(worlds[name] / rel), rel


def test_one_folder_per_day_with_the_days_events(worlds: dict[str, Path]) -> None:
    raw = worlds["plain"]
    manifest = json.loads((raw / "manifest.json").read_text())
    days = sorted(p.name for p in (raw / "future").iterdir())
    assert len(days) == DAYS and days[0] == "2025-11-01" and manifest["future_days"] == DAYS
    events = _csv(raw / "truth" / "future_events.csv")
    truth = _csv(raw / "truth" / "future_truth.csv")
    history_ids = set(_csv(raw / "crm" / "Lead.csv")["Id"])
    assert not history_ids & set(truth["Id"])  # future Ids never collide with history Ids
    delivered = []
    for k, day in enumerate(days):
        path = raw / "future" / day / "crm" / "Lead.csv"
        if path.exists():
            rows = _csv(path)
            assert (rows["LastModifiedDate"].str[:10] == day).all()
            delivered.append(rows.assign(day=k))
    leads = pd.concat(delivered, ignore_index=True)
    assert len(leads) == len(events)  # one Lead.csv row per event
    new = leads[leads["Stage_Entered_Contacting__c"].str[:10] >= "2025-11-01"]
    assert set(new["Id"]) == set(truth["Id"])  # every future lead is delivered
    converted = leads[leads["Stage_Entered_Call_Scheduled__c"] != ""]
    assert (converted["Status"] == "Call Scheduled").all()
    # history leads whose drawn conversion falls after as_of convert in the future
    planted = json.loads((raw / "truth" / "planted.json").read_text())
    assert len(set(converted["Id"]) & history_ids) <= planted["n_conversions_after_as_of"]
    assert (events["event"] == "crd_fix").sum() > 0
    assert manifest["future_vintages"][0]["snapshot_as_of"] == "2025-10-01"
    assert (raw / manifest["future_vintages"][0]["reps_file"]).is_file()


def test_a_crd_fix_delivers_the_leads_real_crd(worlds: dict[str, Path]) -> None:
    raw = worlds["plain"]
    events = _csv(raw / "truth" / "future_events.csv")
    fixes = events[events["event"] == "crd_fix"]
    rows = pd.concat(
        [_csv(p) for p in sorted((raw / "future").glob("*/crm/Lead.csv"))], ignore_index=True
    )
    for lead_id in fixes["Id"]:
        crds = rows.loc[rows["Id"] == lead_id, "FA_CRD__c"].tolist()
        assert not crds[0].isdigit() and crds[-1].isdigit()


def test_drift_is_recorded_and_planted(worlds: dict[str, Path]) -> None:
    label = json.loads((worlds["plain"] / "manifest.json").read_text())["future_vintages"][0]
    drift = json.loads((worlds["aum_shift"] / "truth" / "drift.json").read_text())["drift"]
    assert drift["name"] == "aum_shift" and drift["start"] == "2025-11-06"
    assert drift["vintages_affected"] == ["2025_q4"]
    plain = _csv(worlds["plain"] / label["firms_file"])
    shifted = _csv(worlds["aum_shift"] / label["firms_file"])

    def assets(frame: pd.DataFrame) -> pd.Series:
        text = frame["TotalAssetsInMillions"].str.replace(",", "")
        return pd.to_numeric(text, errors="coerce")

    ratio = (assets(shifted) / assets(plain)).dropna()
    assert np.median(ratio) == pytest.approx(AUM_SHIFT_FACTOR, rel=0.01)
    dropped = _csv(worlds["columns_dropped"] / label["reps_file"])
    assert (dropped["DateOfHireAtCurrentFirm"] == "").all()
    assert (
        _csv(worlds["columns_dropped"] / label["firms_file"])["TotalAssetsInMillions"] == ""
    ).all()
    base = _csv(worlds["plain"] / "truth" / "future_truth.csv").set_index("Id")
    drop = _csv(worlds["conversion_drop"] / "truth" / "future_truth.csv").set_index("Id")
    after = drop["drift_active"] == "true"
    assert after.any() and (~after).any()
    p0, p1 = base["true_probability"].astype(float), drop["true_probability"].astype(float)
    assert np.allclose(p1[after], p0[after] * CONVERSION_FACTOR, rtol=1e-6)
    assert np.allclose(p1[~after], p0[~after])


def test_unknown_drift_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown drift"):
        parse_drift("volcano", 0)
