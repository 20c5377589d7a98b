"""Pandas baseline of the build stage: the point-in-time training set with ``pd.merge_asof``.

Reads the ingested warehouse tables (``crm_leads`` and the all-vintage reps/firms views) into
pandas; returns the same rows, label, exclusions and catalog features as
``dataset.build_training_set``. The benchmark times it against the warehouse build; the test
checks both give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.catalog import Catalog
from leadscore.config import Settings
from leadscore.dataset import KEY_COLUMNS, LABEL_COLUMNS, VINTAGE_COLUMNS
from leadscore.ingest.schema import FIRMS_COLUMNS, REPS_COLUMNS
from leadscore.warehouse import Warehouse, tables

_ARROW_TO_NULLABLE: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int64Dtype(),
    pa.int16(): pd.Int64Dtype(),
    pa.int32(): pd.Int64Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.float32(): pd.Float64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
METROS: dict[str, str] = {
    "NYC": "New York-Newark-Jersey City NY-NJ",
    "LosAngeles": "Los Angeles-Long Beach-Anaheim CA",
    "Chicago": "Chicago-Naperville-Elgin IL-IN",
    "Dallas": "Dallas-Fort Worth-Arlington TX",
    "Miami": "Miami-Fort Lauderdale-West Palm Beach FL",
}
#: Catalog features whose SQL is a raw vendor column under another name.
RENAMED: dict[str, str] = {
    "Number_InvestmentAdvisoryClients": "Number_Investment_Advisory_Clients"
}


@dataclass(frozen=True)
class PitTables:
    """The three warehouse inputs as pandas frames (nullable dtypes, as SQL sees NULLs)."""

    leads: pd.DataFrame
    reps: pd.DataFrame
    firms: pd.DataFrame


@dataclass(frozen=True)
class PandasBuild:
    """The baseline's training frame and its exclusion counts (reason -> leads)."""

    frame: pd.DataFrame
    excluded: dict[str, int]


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with nullable ints, floats and bools, and dates as datetime64."""
    return table.to_pandas(types_mapper=_ARROW_TO_NULLABLE.get, date_as_object=False)


def read_tables(wh: Warehouse, cfg: Settings, catalog: Catalog) -> PitTables:
    """Read the columns the build needs from the warehouse (no filtering, no joins)."""
    c = cfg.crm
    raw = catalog.raw_columns() | {"Home_MetropolitanArea", "TotalAssetsInMillions"}
    rep_cols = sorted(x for x in raw if x in REPS_COLUMNS and x not in ("RepCRD", "RIAFirmCRD"))
    firm_cols = sorted(x for x in raw if x in FIRMS_COLUMNS and x not in REPS_COLUMNS)
    leads = wh.query(
        f'SELECT CAST("{c.lead_id_col}" AS VARCHAR) AS lead_id, "RepCRD", crd_status, '
        f'"{c.owner_col}" AS "OwnerId", "{c.contacted_ts_col}" AS contact_ts, '
        f'"{c.converted_ts_col}" AS converted_ts FROM {tables.LEADS}'
    )
    vintage = ["snapshot_quarter", "available_at"]
    reps = wh.query(
        _select(["RepCRD", "RIAFirmCRD", *rep_cols, *vintage], tables.REPS_ALL_VINTAGES)
    )
    firms = wh.query(_select(["RIAFirmCRD", *firm_cols, *vintage], tables.FIRMS_ALL_VINTAGES))
    return PitTables(to_frame(leads), to_frame(reps), to_frame(firms))


def _select(columns: list[str], table: str) -> str:
    quoted = ", ".join('"' + c + '"' for c in columns)
    return f"SELECT {quoted} FROM {table}"


# ---------------------------------------------------------------------------- the join
def _spine(leads: pd.DataFrame) -> pd.DataFrame:
    """Contacted leads, one row per id: earliest contact, then lowest RepCRD."""
    contacted = leads[leads["contact_ts"].notna()]
    ordered = contacted.sort_values(
        ["lead_id", "contact_ts", "RepCRD"], na_position="last", kind="stable"
    )
    return ordered.drop_duplicates("lead_id", keep="first").reset_index(drop=True)


def _as_of(left: pd.DataFrame, right: pd.DataFrame, key: str, prefix: str) -> pd.DataFrame:
    """Latest ``right`` row per ``left`` row with the same ``key`` and available_at <= contact.

    Ties on available_at go to the latest snapshot_quarter: merge_asof takes the last of equal
    keys, so the right side is sorted by (available_at, snapshot_quarter).
    """
    avail, quarter = f"{prefix}_available_at", f"{prefix}_snapshot_quarter"
    left = left[left[key].notna()].astype({key: "int64"}).sort_values("contact_ts")
    right = right.rename(columns={"available_at": avail, "snapshot_quarter": quarter})
    right = right[right[avail].notna() & right[key].notna()].astype({key: "int64"})
    right = right.sort_values([avail, quarter], kind="stable")
    joined = pd.merge_asof(
        left,
        right,
        left_on="contact_ts",
        right_on=avail,
        by=key,
        direction="backward",
        allow_exact_matches=True,
    )
    return joined[joined[avail].notna()]


def join_vintages(spine: pd.DataFrame, reps: pd.DataFrame, firms: pd.DataFrame) -> pd.DataFrame:
    """The spine with its reps and firms vintages as of contact, and ``pit_status``.

    Invariant: one row per spine row (a left join), in spine order.
    """
    rep_rows = _as_of(spine[["lead_id", "RepCRD", "contact_ts"]], reps, "RepCRD", "reps")
    firm_rows = _as_of(
        rep_rows[["lead_id", "RIAFirmCRD", "contact_ts"]], firms, "RIAFirmCRD", "firms"
    )
    rep_rows = rep_rows.drop(columns=["RepCRD", "contact_ts"]).set_index("lead_id")
    firm_rows = firm_rows.drop(columns=["RIAFirmCRD", "contact_ts"]).set_index("lead_id")
    joined = spine.join(rep_rows, on="lead_id").join(firm_rows, on="lead_id")
    status = joined["crd_status"]
    seen = joined["RepCRD"].isin(reps["RepCRD"].dropna().unique())
    joined["pit_status"] = np.select(
        [
            when_true(status.eq("missing")),
            when_true(status.eq("malformed")) | joined["RepCRD"].isna().to_numpy(),
            joined["reps_available_at"].notna().to_numpy(),
            ~when_true(seen),
        ],
        ["crd_missing", "crd_malformed", "ok", "crd_not_found"],
        default="no_snapshot_yet",
    )
    return joined


def when_true(mask: pd.Series) -> np.ndarray:
    """A (nullable) boolean mask as numpy, NULL counting as False (SQL WHEN)."""
    return mask.astype("boolean").to_numpy(dtype=bool, na_value=False)


def add_label(joined: pd.DataFrame, as_of: datetime, label_window_days: int) -> pd.DataFrame:
    """``days_to_conversion``, ``target`` (converted within the window) and the exclusion."""
    window = pd.Timedelta(days=label_window_days)
    contact, converted = joined["contact_ts"], joined["converted_ts"]
    days = (converted.dt.floor("D") - contact.dt.floor("D")).dt.days
    in_window = (converted >= contact) & (converted <= contact + window)
    status = joined["pit_status"].to_numpy()
    reason = np.select(
        [
            status != "ok",
            (converted < contact).to_numpy(),
            (contact > pd.Timestamp(as_of) - window).to_numpy(),
        ],
        [status, "negative_days", "right_censored"],
        default=None,
    )
    return joined.assign(
        days_to_conversion=days.astype("Int64"),
        target=in_window.astype("int64"),
        exclusion_reason=reason,
    )


# ---------------------------------------------------------------------------- the features
def _div(a: pd.Series, b: pd.Series) -> pd.Series:
    """SAFE_DIVIDE: NULL when b is NULL or 0."""
    a, b = a.astype("Float64"), b.astype("Float64")
    return (a / b).mask(when_true(b.eq(0)) | b.isna().to_numpy())


def _eq(values: pd.Series, target: str) -> pd.Series:
    """SQL ``=``: NULL when the value is NULL."""
    return values.eq(target).astype("boolean").mask(values.isna())


def _case(mask: pd.Series) -> pd.Series:
    """``CASE WHEN mask THEN 1 ELSE 0 END``."""
    return pd.Series(when_true(mask).astype("float64"), index=mask.index)


def _years_since(day: pd.Series, pit_ts: pd.Series) -> pd.Series:
    """``DATE_DIFF('day', day, CAST(pit_ts AS DATE)) / 365.25``."""
    pit_day = pit_ts.dt.floor("D").dt.tz_localize(None)
    return (pit_day - day).dt.days.astype("Float64") / 365.25


def _base_features(df: pd.DataFrame) -> dict[str, pd.Series]:
    prior = [df[f"Number_YearsPriorFirm{i}"] for i in range(1, 5)]
    n_prior = sum((p.notna().astype("int64") for p in prior), start=pd.Series(0, df.index))
    out = {
        "NumberOfPriorFirms": n_prior,
        "AverageTenureAtPriorFirms": _div(sum(p.fillna(0) for p in prior), n_prior),
        "DateBecameRep_NumberOfYears": _years_since(df["DateBecameRep"], df["contact_ts"]),
        "DateOfHireAtCurrentFirm_NumberOfYears": _years_since(
            df["DateOfHireAtCurrentFirm"], df["contact_ts"]
        ),
        "Number_InvestmentAdvisoryClients": df[RENAMED["Number_InvestmentAdvisoryClients"]],
    }
    out.update({f"Metro_{k}": _eq(df["Home_MetropolitanArea"], v) for k, v in METROS.items()})
    return out


def _m5_ratios(df: pd.DataFrame, f: dict[str, pd.Series]) -> dict[str, pd.Series]:
    aum, emp, reps = df["TotalAssetsInMillions"], df["Number_Employees"], df["Number_IAReps"]
    clients = f["Number_InvestmentAdvisoryClients"]
    g1, g5 = df["AUMGrowthRate_1Year"], df["AUMGrowthRate_5Year"]
    funds = df["AssetsInMillions_MutualFunds"] + df["AssetsInMillions_PrivateFunds"]
    return {
        "AUM_per_Client": _div(aum, clients),
        "AUM_per_Employee": _div(aum, emp),
        "AUM_per_IARep": _div(aum, reps),
        "Growth_Momentum": g1 * g5,
        "Growth_Acceleration": g1 - g5 / 5,
        "Firm_Stability_Score": f["DateOfHireAtCurrentFirm_NumberOfYears"]
        / (f["NumberOfPriorFirms"] + 1),
        "Experience_Efficiency": _div(aum, f["DateBecameRep_NumberOfYears"] + 1),
        "HNW_Client_Ratio": _div(
            df["NumberClients_HNWIndividuals"], df["NumberClients_Individuals"]
        ),
        "HNW_Asset_Concentration": _div(df["AssetsInMillions_HNWIndividuals"], aum),
        "Individual_Asset_Ratio": _div(df["AssetsInMillions_Individuals"], aum),
        "Alternative_Investment_Focus": _div(funds, aum),
        "Clients_per_Employee": _div(clients, emp),
        "Branch_Advisor_Density": _div(df["Number_BranchAdvisors"], emp),
        "Clients_per_IARep": _div(clients, reps),
    }


def _m5_flags(df: pd.DataFrame, f: dict[str, pd.Series], k: dict[str, float]) -> dict[str, Any]:
    emp, size = df["Number_Employees"], df["AverageAccountSize"]
    pct_ind, pct_us = df["PercentClients_Individuals"], df["Percent_ClientsUS"]
    miles, g1, g5 = df["MilesToWork"], df["AUMGrowthRate_1Year"], df["AUMGrowthRate_5Year"]
    n_ria = df["NumberRIAFirmAssociations"]
    flags = {
        "Is_Large_Firm": emp > 100,
        "Is_Boutique_Firm": (emp <= 20) & (size > k["avg_account_size_p75"]),
        "Has_Scale": (df["TotalAssetsInMillions"] > 500)
        | (f["Number_InvestmentAdvisoryClients"] > 100),
        "Is_New_To_Firm": f["DateOfHireAtCurrentFirm_NumberOfYears"] < 2,
        "Is_Veteran_Advisor": f["DateBecameRep_NumberOfYears"] > 10,
        "High_Turnover_Flag": (f["NumberOfPriorFirms"] > 3) & (f["AverageTenureAtPriorFirms"] < 3),
        "Premium_Positioning": (size > k["avg_account_size_p75"]) & (pct_ind < 50),
        "Mass_Market_Focus": (pct_ind > 80) & (size < k["avg_account_size_median"]),
        "Remote_Work_Indicator": miles > 50,
        "Local_Advisor": miles <= 10,
        "Multi_RIA_Relationships": n_ria > 1,
        "Complex_Registration": (df["NumberFirmAssociations"] > 2) | (n_ria > 1),
        "Primarily_US_Clients": pct_us > 90,
        "International_Presence": pct_us < 80,
        "Positive_Growth_Trajectory": (g1 > 0) & (g5 > 0),
        "Accelerating_Growth": g1 > g5 / 5,
    }
    return {name: flag.astype("boolean") for name, flag in flags.items()}


def _quality_score(df: pd.DataFrame, f: dict[str, pd.Series], k: dict[str, float]) -> pd.Series:
    return (
        0.25 * _case(f["Is_Veteran_Advisor"])
        + 0.25 * _case(f["Has_Scale"])
        + 0.15 * _case(f["Firm_Stability_Score"] > k["firm_stability_median"])
        + 0.15 * _case(df["IsPrimaryRIAFirm"])
        + 0.10 * _case(f["AUM_per_Client"] > k["aum_per_client_median"])
        + 0.10 * (1 - _case(f["High_Turnover_Flag"]))
    )


def _segments(df: pd.DataFrame) -> dict[str, pd.Series]:
    aum, metro = df["TotalAssetsInMillions"], df["Home_MetropolitanArea"]
    tier = np.select(
        [
            df["TotalAssetsInMillions"].isna().to_numpy(),
            when_true(aum < 100),
            when_true(aum <= 500),
        ],
        ["Unknown", "<$100M", "$100-500M"],
        default=">$500M",
    )
    names, areas = list(METROS), list(METROS.values())
    area = np.select(
        [metro.isna().to_numpy(), *(when_true(metro.eq(a)) for a in areas)],
        ["Unknown", *names],
        default="Other",
    )
    return {"aum_tier": pd.Series(tier, df.index), "metro_area": pd.Series(area, df.index)}


def compute_features(df: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Every model feature of the catalog (and its segments), from the as-of joined rows.

    SQL's three-valued logic is kept with pandas' nullable dtypes (Kleene AND/OR).
    """
    constants = {name: c.value for name, c in catalog.constants.items()}
    f: dict[str, Any] = _base_features(df)
    f.update(_m5_ratios(df, f))
    f.update(_m5_flags(df, f, constants))
    f["Quality_Score"] = _quality_score(df, f, constants)
    f["Day_of_Contact"] = (df["contact_ts"].dt.day_of_week + 1).astype("int64")
    f["Is_Weekend_Contact"] = f["Day_of_Contact"] >= 6
    f.update(_segments(df))
    names = [s.name for s in catalog.segments] + catalog.model_features()
    return pd.DataFrame({n: f[n] if n in f else df[n] for n in names}, index=df.index)


def covered_features(catalog: Catalog) -> list[str]:
    """Catalog model features this baseline computes (all of them, checked by the test)."""
    return catalog.model_features()


def build_training_frame(
    data: PitTables, catalog: Catalog, as_of: datetime, label_window_days: int
) -> PandasBuild:
    """The training set in pandas: one row per eligible contacted lead, features and label.

    Same steps as the SQL: spine, as-of join of reps then firms by CRD, status, label,
    exclusions (negative days, right-censoring relative to ``as_of``), catalog features.
    """
    joined = join_vintages(_spine(data.leads), data.reps, data.firms)
    labelled = add_label(joined, as_of, label_window_days)
    reasons = labelled["exclusion_reason"]
    excluded = {str(k): int(v) for k, v in reasons.value_counts().items()}
    kept = labelled[reasons.isna().to_numpy()]
    keys = [*KEY_COLUMNS, *LABEL_COLUMNS, *VINTAGE_COLUMNS]
    frame = pd.concat([kept[keys], compute_features(kept, catalog)], axis=1)
    frame = frame.sort_values(["contact_ts", "lead_id"], kind="stable").reset_index(drop=True)
    return PandasBuild(frame=frame, excluded=excluded)
