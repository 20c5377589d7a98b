"""Validation gates: each catches its corruption with a message naming gate, figure, report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.catalog import load_catalog
from leadscore.config import Settings
from leadscore.gates import GateFailed, GateResult
from leadscore.validate.checks import check_multicollinearity
from leadscore.validate.run import (
    ContractViolation,
    SchemaContract,
    build_contract,
    contract_violations,
    enforce_contract,
    univariate_auc,
    validate_training_set,
)

CATALOG = load_catalog()
N, N_POS = 420, 20  # imbalance 20:1


def training_frame(seed: int = 7) -> pd.DataFrame:
    """A clean training table shaped like ``build``'s output, features independent of the label."""
    rng = np.random.default_rng(seed)
    contact = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=int(h))
               for h in rng.integers(0, 24 * 300, N)]  # fmt: skip
    target = np.zeros(N, dtype=np.int64)
    target[rng.choice(N, N_POS, replace=False)] = 1
    df = pd.DataFrame(
        {
            "lead_id": [f"L{i:04d}" for i in range(N)],
            "RepCRD": rng.integers(1, 10**6, N),
            "OwnerId": "sga",
            "contact_ts": pd.to_datetime(contact, utc=True),
            "converted_ts": pd.Series(pd.NaT, index=range(N), dtype="datetime64[us, UTC]"),
            "days_to_conversion": np.nan,
            "target": target,
            "reps_snapshot_quarter": pd.Timestamp("2023-10-01").date(),
            "reps_available_at": pd.to_datetime(contact, utc=True) - pd.Timedelta(days=20),
            "firms_snapshot_quarter": pd.Timestamp("2023-10-01").date(),
            "firms_available_at": pd.to_datetime(contact, utc=True) - pd.Timedelta(days=20),
            "aum_tier": rng.choice(["<$100M", "$100-500M", ">$500M"], N),
            "metro_area": rng.choice(["NYC", "Other"], N),
        }
    )
    df.loc[target == 1, "converted_ts"] = df.loc[target == 1, "contact_ts"] + pd.Timedelta(days=3)
    for feature in CATALOG.features:
        low, high = feature.range or (0.0, 100.0)
        low = 0.0 if low is None else low
        high = low + 100.0 if high is None else high
        if feature.dtype == "float":
            df[feature.name] = rng.uniform(low, high, N)
        elif feature.dtype == "int":
            df[feature.name] = rng.integers(int(low), int(high) + 1, N)
        elif feature.dtype == "bool":
            df[feature.name] = rng.random(N) < 0.3
        else:
            df[feature.name] = rng.choice(["CA", "NY", "TX"], N)
    return df


@pytest.fixture()
def cfg(tmp_path) -> Settings:
    return Settings.model_validate({"project": {"reports_dir": str(tmp_path / "reports")}})


def test_clean_table_passes_every_gate_and_writes_reports(cfg):
    result = validate_training_set(training_frame(), cfg, CATALOG)
    assert result.passed, result.failed()
    out = cfg.project.reports_dir / "validate"
    for name in ("leakage", "class_distribution", "schema_contract", "data_quality",
                 "suspicious_features", "multicollinearity"):  # fmt: skip
        assert (out / f"{name}.md").exists() and (out / f"{name}.json").exists()
    figures = json.loads((out / "class_distribution.json").read_text())["figures"]
    assert figures["imbalance_ratio"] == pytest.approx(20.0)
    assert {r["segment"] for r in figures["by_aum_tier"]} == {"<$100M", "$100-500M", ">$500M"}
    assert len(figures["by_day_of_week"]) == 7
    contract = SchemaContract.load(result.contract_path)
    assert [c.name for c in contract.columns] == CATALOG.model_features()
    assert "0 leaks" in (out / "leakage.md").read_text()


def _corrupt(kind: str) -> pd.DataFrame:
    df = training_frame()
    if kind == "dropped":
        df = df.drop(columns=["AUM_per_Client"])
    elif kind == "string":
        df["TotalAssetsInMillions"] = df["TotalAssetsInMillions"].astype(object)
        df.loc[3, "TotalAssetsInMillions"] = "Osseo"
    elif kind == "range":
        df.loc[[5, 9], "Day_of_Contact"] = 9
    elif kind == "label_copy":
        df["lead_quality_flag"] = df["target"].astype(float)
    elif kind == "leak":
        df.loc[0, "reps_available_at"] = df.loc[0, "contact_ts"] + pd.Timedelta(days=1)
    elif kind == "imbalance":
        df.loc[:100, "target"] = 1
    elif kind == "incomplete":
        df.loc[: N // 10, "TotalAssetsInMillions"] = np.nan
    elif kind == "duplicate":
        df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    return df


@pytest.mark.parametrize(
    ("kind", "gate", "words"),
    [
        ("dropped", "schema_contract", ["AUM_per_Client", "missing column"]),
        ("string", "schema_contract", ["TotalAssetsInMillions", "not float", "1 rows", "Osseo"]),
        (
            "range",
            "schema_contract",
            ["Day_of_Contact", "outside valid range [1.0, 7.0]", "2 rows"],
        ),
        ("label_copy", "suspicious_features", ["lead_quality_flag", "AUC 1.000"]),
        ("leak", "temporal_leakage", ["1 is not == 0"]),
        ("imbalance", "imbalance_ratio", ["is not >= 15"]),
        ("incomplete", "completeness_critical", ["TotalAssetsInMillions", "is not >= 0.95"]),
        ("duplicate", "duplicate_lead_ids", ["1 is not == 0"]),
    ],
)
def test_each_gate_catches_its_corruption(cfg, kind, gate, words):
    with pytest.raises(GateFailed) as info:
        validate_training_set(_corrupt(kind), cfg, CATALOG)
    message = str(info.value)
    assert info.value.gate == gate
    assert f"gate '{gate}' failed" in message
    assert str(cfg.project.reports_dir / "validate") in message
    for word in words:
        assert word in message


def test_allow_list_lets_a_known_strong_feature_pass(cfg):
    cfg = cfg.model_copy(
        update={"validate_": cfg.validate_.model_copy(
            update={"allow_list": {"lead_quality_flag": "audited: set before contact"}})}
    )  # fmt: skip
    result = validate_training_set(_corrupt("label_copy"), cfg, CATALOG)
    assert result.passed


def test_crd_match_rate_gate_uses_the_build_counts(cfg):
    from leadscore.dataset import BuildResult

    build = BuildResult(
        join="asof", table="training_set", exclusions_table="build_exclusions",
        as_of=datetime(2025, 1, 1, tzinfo=UTC), as_of_source="config", label_window_days=30,
        n_leads=600, n_contacted=600, n_duplicate_lead_ids=0,
        excluded={"crd_missing": 180}, n_crd_matched=420, n_negative_days=0, n_censored=0,
        n_rows=420, n_positives=20, n_late_conversions=0, n_firm_unmatched=0,
    )  # fmt: skip
    with pytest.raises(GateFailed, match=r"gate 'crd_match_rate' failed: 0.7 is not > 0.9"):
        validate_training_set(training_frame(), cfg, CATALOG, build)
    result = validate_training_set(training_frame(), cfg, CATALOG, build, raise_on_failure=False)
    assert [g.name for g in result.failed()] == ["crd_match_rate"]


def test_quarter_join_report_says_it_leaks(cfg):
    result = validate_training_set(_corrupt("leak"), cfg, CATALOG, join="quarter",
                                   raise_on_failure=False)  # fmt: skip
    assert [g.name for g in result.failed()] == ["temporal_leakage"]
    text = (cfg.project.reports_dir / "validate" / "leakage.md").read_text()
    assert "quarter join" in text and "leaks" in text and "docs/point-in-time.md" in text


# --------------------------------------------------------------------- contract on later loads
def test_enforce_contract_on_a_later_load():
    contract = build_contract(training_frame(), CATALOG)
    enforce_contract(training_frame(seed=8), contract)  # a fresh clean table passes
    bad = _corrupt("string")
    with pytest.raises(ContractViolation) as info:
        enforce_contract(bad, contract, report_path="contract.json")
    assert info.value.problems[0]["column"] == "TotalAssetsInMillions"
    assert info.value.problems[0]["examples"] == ["Osseo"]


def test_contract_expected_range_is_the_training_percentiles():
    df = training_frame()
    contract = build_contract(df, CATALOG)
    col = next(c for c in contract.columns if c.name == "MilesToWork")
    assert col.expected_range == pytest.approx(
        tuple(np.percentile(df["MilesToWork"], [0.1, 99.9]))
    )
    assert col.valid_range == (0, 5000) and col.is_mutable
    assert next(c for c in contract.columns if c.name == "Home_State").is_mutable is False


def test_contract_violations_gives_per_row_reasons():
    contract = build_contract(training_frame(), CATALOG)
    df = training_frame(seed=9).head(6).copy()
    df["TotalAssetsInMillions"] = df["TotalAssetsInMillions"].astype(object)
    df.loc[1, "TotalAssetsInMillions"] = "Osseo"
    df.loc[2, "Day_of_Contact"] = 0
    df.loc[4, "Quality_Score"] = np.nan
    reasons = contract_violations(df, contract)
    assert list(reasons.index) == list(df.index)
    assert reasons[0] == reasons[3] == reasons[5] == ""
    assert "TotalAssetsInMillions: not float ('Osseo')" in reasons[1]
    assert "Day_of_Contact: outside valid range" in reasons[2]
    assert "Quality_Score: NULL in a non-nullable column" in reasons[4]
    missing = contract_violations(df.drop(columns=["Has_CFP"]), contract)
    assert all("Has_CFP: missing column" in r for r in missing)


# --------------------------------------------------------------------- figures vs references
def test_univariate_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=300), 1)  # ties
    y = (rng.random(300) < 0.2).astype(int)
    x[::17] = np.nan
    keep = ~np.isnan(x)
    assert univariate_auc(x, y) == pytest.approx(roc_auc_score(y[keep], x[keep]))
    assert univariate_auc(x, np.zeros(300, dtype=int)) is None


def test_vif_from_inverse_correlation_equals_regression_vif(cfg):
    df = training_frame()
    rng = np.random.default_rng(1)
    df["AUM_per_Employee"] = df["AUM_per_Client"] * 2 + rng.normal(0, 5, N)
    report = check_multicollinearity(df, CATALOG, cfg.validate_)
    cols = list(report.figures["vif"])
    x = df[cols].astype(float).to_numpy()
    target_col = cols.index("AUM_per_Employee")
    others = np.delete(x, target_col, axis=1)
    design = np.column_stack([np.ones(N), others])
    fitted = design @ np.linalg.lstsq(design, x[:, target_col], rcond=None)[0]
    resid = x[:, target_col] - fitted
    r2 = 1 - resid.var() / x[:, target_col].var()
    assert report.figures["vif"]["AUM_per_Employee"] == pytest.approx(1 / (1 - r2), rel=1e-6)
    pairs = {(a, b) for a, b, _ in report.figures["high_correlation_pairs"]}
    assert ("AUM_per_Client", "AUM_per_Employee") in pairs
    assert report.gates == []  # informational


def test_gate_failed_message_and_record():
    result = GateResult.check("imbalance_ratio", 42.0, 30.0, "<=", "reports/validate/x.md")
    assert not result.passed
    with pytest.raises(GateFailed) as info:
        result.raise_if_failed()
    assert str(info.value) == (
        "gate 'imbalance_ratio' failed: 42 is not <= 30; see reports/validate/x.md"
    )
    direct = GateFailed("temporal_leakage", 3, 0, "r.md", comparison="==")
    assert (direct.gate, direct.figure, direct.threshold, direct.report_path) == (
        "temporal_leakage", 3.0, 0.0, "r.md",
    )  # fmt: skip
    assert GateResult.check("x", float("nan"), 1, "<=").passed is False


def test_crd_match_rate_leaves_out_leads_contacted_before_any_delivery():
    from leadscore.dataset import BuildResult

    build = BuildResult(
        join="asof", table="training_set", exclusions_table="build_exclusions",
        as_of=datetime(2025, 1, 1, tzinfo=UTC), as_of_source="config", label_window_days=30,
        n_leads=600, n_contacted=600, n_duplicate_lead_ids=0,
        excluded={"crd_missing": 20, "no_snapshot_yet": 200}, n_crd_matched=380,
        n_negative_days=0, n_censored=0, n_rows=380, n_positives=20, n_late_conversions=0,
        n_firm_unmatched=0,
    )  # fmt: skip
    assert build.crd_match_rate == pytest.approx(380 / 400)
