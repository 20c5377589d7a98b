"""Generic source, test tables: a CRM-like lead export and a vintage enrichment table that carry
the hard cases of real data.

Writes ``leads.csv``, ``firmographics.csv``, ``truth.csv`` (true probability per lead, never read
by training) and ``mapping.toml`` into a folder. Planted: post-outcome fields of moderate strength
(a call duration, a lead quality set by the sales team, a last-activity date), calendar proxies
(a monthly macro index, a monthly campaign code), a base rate that drifts over time, heavy
missingness, placeholder values ("Select", "N/A"), a little junk in a number column and
duplicate lead ids. Seeded: same arguments, same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.io import write_text

START = datetime(2024, 1, 1, tzinfo=UTC)
N_DAYS = 730
AS_OF = START + timedelta(days=N_DAYS)
#: Fields recorded after the outcome (planted leaks) and fields that only track the calendar.
POST_OUTCOME_FIELDS: tuple[str, ...] = ("Call_Duration_min", "Lead_Quality", "Last_Activity_Date")
CALENDAR_FIELDS: tuple[str, ...] = ("Macro_Index", "Campaign_Code")
GENUINE_FIELDS: tuple[str, ...] = (
    "Company_Size",
    "Industry",
    "Lead_Source",
    "Has_LinkedIn",
    "First_Touch_Date",
    "Annual_Revenue",
    "firmo__growth_score",
)
_INDUSTRIES = ("Retail", "Finance", "Health", "Tech", "Energy", "Media", "Legal", "Travel")
_SOURCES = {"Web": 0.0, "Referral": 0.7, "Event": 0.3, "Partner": 0.2, "Cold list": -0.6}


@dataclass(frozen=True)
class CrmTables:
    """Paths of the written tables and the figures the tests check against."""

    leads_csv: Path
    enrichment_csv: Path
    truth_csv: Path
    mapping: Path
    n_leads: int
    base_rate_first: float
    base_rate_last: float


def _blank(
    rng: np.random.Generator, values: list[str], share: float, fill: list[str]
) -> list[str]:
    """Replace a ``share`` of values with blanks or placeholders drawn from ``fill``."""
    mask = rng.random(len(values)) < share
    picks = rng.choice(np.array(fill, dtype=object), size=len(values))
    return [str(p) if m else v for v, m, p in zip(values, mask, picks, strict=True)]


def _enrichment(rng: np.random.Generator, n_companies: int) -> pd.DataFrame:
    """Quarterly vintages of a company table, each available 20 days after its quarter starts."""
    rows = []
    level = rng.normal(0, 1, n_companies)
    for q in range(9):
        quarter = START + timedelta(days=round(q * 91.25))
        level = 0.6 * level + 0.8 * rng.normal(0, 1, n_companies)  # values move between vintages
        available = quarter + timedelta(days=20)
        for c in range(n_companies):
            rows.append(
                {
                    "company_id": f"C{c:05d}",
                    "snapshot_date": quarter.date().isoformat(),
                    "available_at": available.isoformat(),
                    "growth_score": f"{level[c]:.3f}",
                }
            )
    return pd.DataFrame(rows)


def _growth_at(enrich: pd.DataFrame, company: np.ndarray, event: pd.Series) -> np.ndarray:
    """The growth score of the vintage available at each event time (the truth's view)."""
    available = pd.to_datetime(enrich["available_at"], utc=True).astype(event.dtype)
    e = enrich.assign(available=available)
    e = e.sort_values("available")
    leads = pd.DataFrame({"company_id": company, "event": event, "pos": np.arange(len(event))})
    merged = pd.merge_asof(
        leads.sort_values("event"), e, left_on="event", right_on="available",
        by="company_id", direction="backward",
    )  # fmt: skip
    out = merged.sort_values("pos")["growth_score"].astype(float).to_numpy()
    return np.nan_to_num(out, nan=0.0)


def _propensity(rng: np.random.Generator, n: int, frac: np.ndarray) -> dict[str, np.ndarray]:
    size = np.exp(rng.normal(4.0, 1.3, n))
    industry = rng.choice(len(_INDUSTRIES), n)
    source = rng.choice(len(_SOURCES), n, p=[0.4, 0.1, 0.15, 0.15, 0.2])
    linkedin = rng.random(n) < 0.5
    touch_age = rng.uniform(0, 400, n)
    revenue = np.exp(rng.normal(13, 1.5, n))
    return {
        "size": size,
        "industry": industry,
        "source": source,
        "linkedin": linkedin,
        "touch_age": touch_age,
        "revenue": revenue,
        "frac": frac,
    }


def _logit(p: dict[str, np.ndarray], growth: np.ndarray) -> np.ndarray:
    industry_effect = np.linspace(-0.5, 0.5, len(_INDUSTRIES))[p["industry"]]
    source_effect = np.array(list(_SOURCES.values()))[p["source"]]
    base = np.log(0.03 / 0.97) + (np.log(0.25 / 0.75) - np.log(0.03 / 0.97)) * p["frac"]
    return (
        base
        - 0.35 * (np.log(p["size"]) - 4.0) / 1.3
        + industry_effect
        + source_effect
        + 0.3 * p["linkedin"]
        - 0.6 * p["touch_age"] / 400
        + 0.1 * (np.log(p["revenue"]) - 13) / 1.5
        + 0.45 * growth
    )


def generate_crm_tables(
    out: Path, n_leads: int = 6000, seed: int = 42, with_time: bool = True
) -> CrmTables:
    """Write the test tables and a reviewed mapping for them into ``out``.

    With ``with_time=False`` the export has no usable time column: no event or outcome times,
    only a ``converted`` flag (the random-split case).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_companies = max(50, n_leads // 4)
    enrich = _enrichment(rng, n_companies)
    offset = np.sort(rng.uniform(0, N_DAYS, n_leads))
    event = pd.Series(pd.to_datetime(START) + pd.to_timedelta(offset * 86400, unit="s"))
    event = event.dt.floor("min")
    frac = offset / N_DAYS
    company = np.array([f"C{c:05d}" for c in rng.integers(0, n_companies, n_leads)])
    p = _propensity(rng, n_leads, frac)
    prob = 1 / (1 + np.exp(-_logit(p, _growth_at(enrich, company, event))))
    converts = rng.random(n_leads) < prob
    late = ~converts & (rng.random(n_leads) < 0.03)
    delay = np.where(converts, rng.exponential(9.0, n_leads), rng.uniform(31, 150, n_leads))
    delay = np.where(converts & (rng.random(n_leads) < 0.01), -rng.uniform(1, 20, n_leads), delay)
    outcome = event + pd.to_timedelta(delay * 86400, unit="s")
    known = (converts | late) & (outcome <= pd.Timestamp(AS_OF))
    month = event.dt.year * 12 + event.dt.month - (START.year * 12 + 1)
    macro = np.asarray(100 + 12 * month / 24 + rng.normal(0, 0.4, 25)[month]).round(2)
    leads = _lead_frame(rng, p, company, event, outcome.where(known), known, macro, month)
    if not with_time:
        leads = leads.drop(columns=["created_at", "mql_at"]).assign(
            converted=np.where((converts & (delay <= 30)) & known, "Yes", "No")
        )
    dupes = leads.sample(n=max(1, n_leads // 200), random_state=seed)
    leads = pd.concat([leads, dupes], ignore_index=True)
    paths = _write(out, leads, enrich, prob, with_time)
    rate = pd.Series(converts & (delay >= 0) & (delay <= 30)).groupby(month).mean()
    return CrmTables(*paths, n_leads, float(rate.iloc[:3].mean()), float(rate.iloc[-3:].mean()))


def _lead_frame(
    rng: np.random.Generator,
    p: dict[str, np.ndarray],
    company: np.ndarray,
    event: pd.Series,
    outcome: pd.Series,
    known: np.ndarray,
    macro: np.ndarray,
    month: pd.Series,
) -> pd.DataFrame:
    n = len(event)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    quality = np.where(
        known,
        rng.choice(["A", "B", "C"], n, p=[0.55, 0.3, 0.15]),
        rng.choice(["A", "B", "C"], n, p=[0.1, 0.3, 0.6]),
    )
    duration = np.exp(rng.normal(1.5 + 1.4 * known, 1.0, n)).round(1)
    activity = event + pd.to_timedelta(rng.uniform(0, 60, n) * 86400, unit="s")
    activity = activity.where(~known, np.maximum(activity, outcome.fillna(activity)))
    activity = activity.where(activity <= pd.Timestamp(AS_OF), pd.Timestamp(AS_OF))
    industries = [_INDUSTRIES[i] for i in p["industry"]]
    rare = rng.random(n) < 0.004
    industries = [
        f"Niche {i % 7}" if r else v for i, (v, r) in enumerate(zip(industries, rare, strict=True))
    ]
    sources = list(_SOURCES)
    return pd.DataFrame(
        {
            "Lead ID": [f"L{i:06d}" for i in range(n)],
            "created_at": event.dt.strftime(iso),
            "mql_at": outcome.dt.strftime(iso).fillna(""),
            "company_id": company,
            "Company Size": _blank(
                rng,
                _blank(rng, [str(int(v)) for v in p["size"]], 0.45, ["", "N/A"]),
                0.005,
                ["approx 50", "Osseo"],
            ),
            "Industry": _blank(rng, industries, 0.2, ["Select", "--Select--", ""]),
            "Lead Source": _blank(rng, [sources[i] for i in p["source"]], 0.1, ["N/A"]),
            "Has LinkedIn": _blank(rng, ["Yes" if v else "No" for v in p["linkedin"]], 0.15, [""]),
            "First Touch Date": (event - pd.to_timedelta(p["touch_age"], unit="D")).dt.strftime(
                "%Y-%m-%d"
            ),
            "Annual Revenue": _blank(rng, [f"${v:,.0f}" for v in p["revenue"]], 0.75, ["", "N/A"]),
            "Macro Index": [f"{v:.2f}" for v in macro],
            "Campaign Code": [f"CMP-{2024 + m // 12}-{m % 12 + 1:02d}" for m in month],
            "Call Duration (min)": _blank(rng, [f"{v:.1f}" for v in duration], 0.1, [""]),
            "Lead Quality": _blank(rng, list(quality), 0.15, ["Select"]),
            "Last Activity Date": activity.dt.strftime(iso),
        }
    )


def _write(
    out: Path, leads: pd.DataFrame, enrich: pd.DataFrame, prob: np.ndarray, with_time: bool
) -> tuple[Path, Path, Path, Path]:
    paths = (out / "leads.csv", out / "firmographics.csv", out / "truth.csv", out / "mapping.toml")
    write_text(paths[0], leads.to_csv(index=False, lineterminator="\n"))
    write_text(paths[1], enrich.to_csv(index=False, lineterminator="\n"))
    truth = pd.DataFrame({"lead_id": [f"L{i:06d}" for i in range(len(prob))], "p": prob.round(6)})
    write_text(paths[2], truth.to_csv(index=False, lineterminator="\n"))
    write_text(paths[3], example_mapping(with_time))
    return paths


def example_mapping(with_time: bool = True) -> str:
    """The reviewed mapping of the generated tables (what a person writes after ``init``)."""
    times = (
        'event_ts_col = "created_at"\noutcome_ts_col = "mql_at"\n'
        if with_time
        else 'outcome_flag_col = "converted"\n'
    )
    fields = [
        ("Company Size", "numeric"),
        ("Industry", "category"),
        ("Lead Source", "category"),
        ("Has LinkedIn", "bool"),
        ("First Touch Date", "date"),
        ("Annual Revenue", "numeric"),
        ("Macro Index", "numeric"),
        ("Campaign Code", "category"),
        ("Call Duration (min)", "numeric"),
        ("Lead Quality", "category"),
        ("Last Activity Date", "date"),
    ]
    body = "".join(f'\n[[fields]]\ncolumn = "{c}"\nkind = "{k}"\n' for c, k in fields)
    return (
        "# Mapping of the generated CRM test tables.\n[source]\n"
        f'table = "leads.csv"\nid_col = "Lead ID"\n{times}label_window_days = 30\n'
        f"as_of = {AS_OF.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        f"{body}\n[[enrichments]]\n"
        'name = "firmo"\ntable = "firmographics.csv"\nlead_key_col = "company_id"\n'
        'key_col = "company_id"\navailable_ts_col = "available_at"\n'
        '\n[[enrichments.fields]]\ncolumn = "growth_score"\nkind = "numeric"\n'
        '\n[leakage]\naction = "drop"\n'
    )
