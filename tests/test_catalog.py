"""Feature catalog: required contents, helpers, and load-time checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leadscore.catalog import default_catalog_path, load_catalog
from leadscore.ingest.schema import PII_COLUMNS
from leadscore.synthetic.vocab import METROS
from leadscore.warehouse import transpile

M5_ENGINEERED = [
    "AUM_per_Client",
    "AUM_per_Employee",
    "AUM_per_IARep",
    "Growth_Momentum",
    "Growth_Acceleration",
    "Firm_Stability_Score",
    "Experience_Efficiency",
    "HNW_Client_Ratio",
    "HNW_Asset_Concentration",
    "Individual_Asset_Ratio",
    "Alternative_Investment_Focus",
    "Is_Large_Firm",
    "Is_Boutique_Firm",
    "Has_Scale",
    "Is_New_To_Firm",
    "Is_Veteran_Advisor",
    "High_Turnover_Flag",
    "Premium_Positioning",
    "Mass_Market_Focus",
    "Clients_per_Employee",
    "Branch_Advisor_Density",
    "Clients_per_IARep",
    "Remote_Work_Indicator",
    "Local_Advisor",
    "Multi_RIA_Relationships",
    "Complex_Registration",
    "Primarily_US_Clients",
    "International_Presence",
    "Quality_Score",
    "Positive_Growth_Trajectory",
    "Accelerating_Growth",
]
REQUIRED = [
    *(f"Metro_{m}" for m in METROS),
    "DateBecameRep_NumberOfYears", "DateOfHireAtCurrentFirm_NumberOfYears",
    "Day_of_Contact", "Is_Weekend_Contact", "Has_CFP", "Has_Series_7", "Has_Series_65",
    "Has_Series_66", "NumberFirmAssociations", "NumberRIAFirmAssociations", "IsPrimaryRIAFirm",
    "KnownNonAdvisor", "IsDuallyRegistered", "IsIndependent", "MilesToWork",
    "Number_BranchAdvisors", "Number_YearsPriorFirm1", "Number_YearsPriorFirm4",
    "AverageTenureAtPriorFirms", "NumberOfPriorFirms", "TotalAssetsInMillions", "Home_State",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_catalog_holds_the_plans_features(catalog):
    names = catalog.model_features()
    assert len(M5_ENGINEERED) == 31
    missing = [f for f in [*M5_ENGINEERED, *REQUIRED] if f not in names]
    assert missing == []
    assert len(names) == len(set(names))


def test_pii_is_never_a_feature(catalog):
    assert set(PII_COLUMNS) <= set(catalog.pii_columns())
    assert not set(catalog.model_features()) & set(PII_COLUMNS)
    for name in catalog.model_features():
        sql = catalog.compiled_sql(name)
        assert not any(f'"{p}"' in sql or f" {p} " in f" {sql} " for p in PII_COLUMNS), name


def test_helpers(catalog):
    types = catalog.feature_types()
    assert types["TotalAssetsInMillions"] == "numeric"
    assert types["Is_Weekend_Contact"] == "bool" and types["Home_State"] == "category"
    assert set(types) == set(catalog.model_features())
    assert catalog.display("TotalAssetsInMillions") == "Firm assets under management ($M)"
    assert catalog.display("Has_CFP") == "Holds the CFP designation"
    sf = catalog.salesforce_fields()
    assert sf["AUM_per_Client"] == "AUM_per_Client__c"
    assert sf["DateOfHireAtCurrentFirm_NumberOfYears"] == "Years_At_Current_Firm__c"
    assert all(len(v) <= 43 for v in sf.values())
    assert "TotalAssetsInMillions" in catalog.critical_features()
    assert catalog.post_contact_features() == []


def test_metro_dummies_and_segment_match_schema(catalog):
    for suffix, area in METROS.items():
        assert area in catalog.compiled_sql(f"Metro_{suffix}")
        assert f"'{area}' THEN '{suffix}'" in catalog.compiled_sql("metro_area")


def test_percentile_thresholds_are_fixed_constants(catalog):
    assert set(catalog.constants) >= {"avg_account_size_p75", "avg_account_size_median"}
    assert all("fixed constant" in c.note for c in catalog.constants.values())
    assert "2200000.0" in catalog.compiled_sql("Is_Boutique_Firm")
    assert "PERCENTILE" not in catalog.compiled_sql("Is_Boutique_Firm").upper()


def test_safe_divide_is_null_safe_in_both_dialects(catalog):
    duck = catalog.compiled_sql("AUM_per_Client")
    assert duck.startswith("CASE WHEN") and "<> 0" in duck and "ELSE NULL" in duck
    bq = transpile(f"SELECT {duck} FROM t", "bigquery")[0]
    assert "CASE" in bq and "<> 0" in bq


def test_derived_features_inline_their_dependencies(catalog):
    sql = catalog.compiled_sql("Is_Veteran_Advisor")
    assert "DateBecameRep" in sql and "pit_ts" in sql
    assert (
        catalog.select_sql("Day_of_Contact")
        == 'CAST(ISODOW(pit_ts) AS BIGINT) AS "Day_of_Contact"'
    )


def _raw() -> dict:
    return yaml.safe_load(default_catalog_path().read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "features.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _entry(**kw) -> dict:
    base = {"name": "New_Feature", "sql": "MilesToWork * 2", "source": "derived",
            "kind": "mutable", "dtype": "float", "display": "Twice the commute"}  # fmt: skip
    return {**base, **kw}


def test_adding_a_feature_is_one_entry(tmp_path):
    data = _raw()
    data["features"].append(_entry())
    catalog = load_catalog(_write(tmp_path, data))
    assert catalog.model_features()[-1] == "New_Feature"
    assert (
        catalog.select_sql("New_Feature") == 'CAST((MilesToWork) * 2 AS DOUBLE) AS "New_Feature"'
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(sql="NoSuchColumn + 1"), "unknown columns ['NoSuchColumn']"),
        (_entry(sql="LENGTH(FirstName)"), "reads PII columns ['FirstName']"),
        (_entry(sql="${no_such_constant} + 1"), "unknown constants ['no_such_constant']"),
        (_entry(name="Has_CFP"), "duplicate feature names: ['Has_CFP']"),
        (_entry(name="Notes", sql="Notes"), "Notes is a PII column"),
        (_entry(dtype="bool", range=[0, 1]), "has no range"),
        (_entry(range=[5, 1]), "range low 5.0 > high 1.0"),
        (_entry(kind="sometimes"), "kind"),
    ],
)
def test_bad_entries_fail_with_the_feature_named(tmp_path, entry, message):
    data = _raw()
    data["features"].append(entry)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("$", r"\$")):
        load_catalog(_write(tmp_path, data))


def test_cycles_are_rejected(tmp_path):
    data = _raw()
    data["features"] += [_entry(name="A_x", sql="B_x + 1"), _entry(name="B_x", sql="A_x + 1")]
    with pytest.raises(ValueError, match="feature cycle"):
        load_catalog(_write(tmp_path, data))


def test_pii_list_must_cover_the_plan(tmp_path):
    data = _raw()
    data["pii"] = data["pii"][1:]
    with pytest.raises(ValueError, match="FirstName"):
        load_catalog(_write(tmp_path, data))
