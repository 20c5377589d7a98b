"""Render one vintage of the clean population as messy vendor CSVs (reps and firms).

The mess is the file format's, not the population's: junk text in numeric cells, thousands
separators, mixed boolean and date spellings, duplicate CRD rows. Every planted item is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from leadscore.ingest.schema import FIRMS_COLUMNS, REPS_COLUMNS
from leadscore.io import atomic_path
from leadscore.synthetic import vocab
from leadscore.synthetic.population import Population
from leadscore.synthetic.timeline import Vintage, iso_ts

JUNK_RATE = 0.0005
THOUSANDS_RATE = 0.05
MMDDYYYY_RATE = 0.02
#: Numeric columns that get random per-file blanks (not used by the generating model).
RANDOM_BLANK_COLS = frozenset(
    {
        "Number_BranchAdvisors",
        "NumberFirmAssociations",
        "Number_Employees",
        "Number_IAReps",
        "Percent_ClientsUS",
        "PercentClients_Individuals",
        "AssetsInMillions_MutualFunds",
        "AssetsInMillions_PrivateFunds",
        "AssetsInMillions_Equity_ExchangeTraded",
    }
)
#: Columns a duplicate CRD row may differ in; the signal columns never differ.
DUP_MUTABLE_BLANKS = ("SocialMedia_LinkedIn", "PersonalWebpage", "Notes", "Branch_County", "Title")
KEY_COLS = frozenset({"RepCRD", "RIAFirmCRD"})


@dataclass
class FileStats:
    """What was planted in one vendor file."""

    rows: int = 0
    unique_keys: int = 0
    duplicate_rows: int = 0
    duplicate_kinds: dict[str, int] = field(default_factory=dict)
    junk_cells: dict[str, int] = field(default_factory=dict)
    thousands_separator_cells: dict[str, int] = field(default_factory=dict)
    mmddyyyy_date_cells: dict[str, int] = field(default_factory=dict)
    null_cells: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


def _vocab_take(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    """Strings ``values[idx]``; a negative index gives NULL."""
    idx = np.asarray(idx)
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int64(), mask=idx < 0))


def _masked(values: np.ndarray, typ: pa.DataType, null: np.ndarray | None = None) -> pa.Array:
    mask = np.isnan(values) if null is None and values.dtype.kind == "f" else null
    if typ == pa.int64():
        values = np.nan_to_num(values).astype(np.int64)
    return pa.array(values, typ, mask=mask)


def _bools(rng: np.random.Generator, values: np.ndarray) -> pa.Array:
    """Booleans in mixed spellings (Y/N, true/false, 1/0, TRUE/FALSE), chosen per cell."""
    style = rng.choice(len(vocab.BOOL_STYLES), len(values), p=vocab.BOOL_STYLE_WEIGHTS)
    flat = [s for pair in vocab.BOOL_STYLES for s in pair]
    return _vocab_take(flat, style * 2 + values.astype(np.int64))


def _dates(rng: np.random.Generator, days: np.ndarray, stats: FileStats, col: str) -> pa.Array:
    """ISO dates, ~2% written MM/DD/YYYY."""
    arr = pa.array(days.astype("datetime64[D]"))
    iso = pc.cast(arr, pa.string())
    us = rng.random(len(days)) < MMDDYYYY_RATE
    stats.mmddyyyy_date_cells[col] = int(us.sum())
    us_text = pc.strftime(pc.cast(arr.filter(pa.array(us)), pa.timestamp("s")), format="%m/%d/%Y")
    return pc.replace_with_mask(iso, pa.array(us), us_text)


def _zips(prefix: np.ndarray, offset: np.ndarray) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(prefix * 100 + offset), pa.string()), 5, "0")


def _mess_numeric(
    rng: np.random.Generator,
    name: str,
    arr: pa.Array,
    stats: FileStats,
    thousands: bool,
    junk_masks: dict[str, np.ndarray] | None = None,
) -> pa.Array:
    """Blanks, thousands separators and junk text in one numeric column (keys stay clean)."""
    n = len(arr)
    if name in KEY_COLS:
        return arr
    if name in RANDOM_BLANK_COLS:
        blank = pa.array(rng.random(n) < 0.005)
        arr = pc.if_else(blank, pa.nulls(n, arr.type), arr)
    junk = rng.random(n) < JUNK_RATE
    values = arr.to_numpy(zero_copy_only=False)
    big = (
        np.nan_to_num(np.abs(values.astype(float))) >= 1000
        if thousands
        else np.zeros(n, dtype=bool)
    )
    sep = big & (rng.random(n) < THOUSANDS_RATE) & ~junk
    stats.junk_cells[name] = int(junk.sum())
    if junk_masks is not None:
        junk_masks[name] = junk
    if thousands:
        stats.thousands_separator_cells[name] = int(sep.sum())
    if not junk.any() and not sep.any():
        return arr
    text = pc.cast(arr, pa.string())
    if sep.any():
        text = pc.replace_with_mask(
            text, pa.array(sep), pa.array([f"{v:,.2f}" for v in values[sep]], pa.string())
        )
    junk_text = _vocab_take(vocab.JUNK, rng.integers(0, len(vocab.JUNK), int(junk.sum())))
    return pc.replace_with_mask(text, pa.array(junk), junk_text)


def _meta_cols(vintage: Vintage, n: int) -> dict[str, pa.Array]:
    cols = {"snapshot_as_of": pa.array([vintage.snapshot_as_of.isoformat()] * n, pa.string())}
    if vintage.processed_at_s is not None:
        cols["processed_at"] = pa.array([iso_ts(vintage.processed_at_s)] * n, pa.string())
    return cols


def firm_names(codes: np.ndarray) -> pa.Array:
    """Firm names built from three small vocabularies."""
    a = _vocab_take(vocab.FIRM_WORDS_A, codes % len(vocab.FIRM_WORDS_A))
    b = _vocab_take(vocab.FIRM_WORDS_B, (codes // 97) % len(vocab.FIRM_WORDS_B))
    s = _vocab_take(vocab.FIRM_SUFFIXES, (codes // 1009) % len(vocab.FIRM_SUFFIXES))
    return pc.binary_join_element_wise(a, b, s, " ")


def _firm_figures(f: Population) -> dict[str, tuple[np.ndarray, pa.DataType]]:
    total = np.round(f["total"], 2)
    indiv = np.round(f["clients"] * f["indiv_share"])
    gnull = f["growth_null"]

    def assets(share: np.ndarray) -> np.ndarray:
        return np.floor(total * share * 100) / 100

    return {
        "TotalAssetsInMillions": (total, pa.float64()),
        "Number_Employees": (f["employees"], pa.int64()),
        "Number_IAReps": (f["ia_reps"], pa.int64()),
        "Number_Investment_Advisory_Clients": (f["clients"], pa.int64()),
        "NumberClients_Individuals": (indiv, pa.int64()),
        "NumberClients_HNWIndividuals": (np.round(indiv * f["hnw_client_share"]), pa.int64()),
        "AssetsInMillions_Individuals": (assets(f["s_ind"]), pa.float64()),
        "AssetsInMillions_HNWIndividuals": (assets(f["s_hnw"]), pa.float64()),
        "AssetsInMillions_MutualFunds": (assets(f["s_mf"]), pa.float64()),
        "AssetsInMillions_PrivateFunds": (assets(f["s_pf"]), pa.float64()),
        "AssetsInMillions_Equity_ExchangeTraded": (assets(f["s_etf"]), pa.float64()),
        "PercentAssets_Individuals": (np.round(100 * f["s_ind"], 2), pa.float64()),
        "PercentAssets_HNWIndividuals": (np.round(100 * f["s_hnw"], 2), pa.float64()),
        "PercentAssets_MutualFunds": (np.round(100 * f["s_mf"], 2), pa.float64()),
        "PercentAssets_PrivateFunds": (np.round(100 * f["s_pf"], 2), pa.float64()),
        "PercentAssets_Equity_ExchangeTraded": (np.round(100 * f["s_etf"], 2), pa.float64()),
        "AverageAccountSize": (np.round(total * 1e6 / f["clients"], 2), pa.float64()),
        "PercentClients_Individuals": (np.round(100 * indiv / f["clients"], 2), pa.float64()),
        "Percent_ClientsUS": (np.round(f["pct_us"], 1), pa.float64()),
        "AUMGrowthRate_1Year": (np.where(gnull, np.nan, np.round(f["g1"], 2)), pa.float64()),
        "AUMGrowthRate_5Year": (np.where(gnull, np.nan, np.round(f["g5"], 2)), pa.float64()),
    }


def render_firms(
    rng: np.random.Generator, firms: Population, names: pa.Array, vintage: Vintage
) -> tuple[pa.Table, FileStats]:
    """The firms file of one vintage: one row per firm, numeric mess planted."""
    stats = FileStats()
    n = len(firms)
    cols: dict[str, pa.Array] = {
        "RIAFirmCRD": pa.array(firms["crd"], pa.int64()),
        "RIAFirmName": names,
        "Firm_State": _vocab_take(vocab.STATES, firms["state"]),
    }
    for name, (values, typ) in _firm_figures(firms).items():
        cols[name] = _mess_numeric(rng, name, _masked(values, typ), stats, typ == pa.float64())
    cols.update(_meta_cols(vintage, n))
    table = pa.table({k: cols[k] for k in FIRMS_COLUMNS if k in cols})
    stats.rows = stats.unique_keys = n
    stats.null_cells = {k: table[k].null_count for k in table.column_names}
    return table, stats


def _licence_texts() -> list[str]:
    texts = []
    for code in range(1 << len(vocab.LICENCES)):
        texts.append(", ".join(v for b, v in enumerate(vocab.LICENCES) if code >> b & 1))
    return texts


def _rep_places(r: Population, prefix: str) -> dict[str, pa.Array]:
    city = r[f"{prefix.lower()}_city"]
    zip_prefix = np.array([c[4] for c in vocab.CITIES])[city]
    return {
        f"{prefix}_State": _vocab_take([c[1] for c in vocab.CITIES], city),
        f"{prefix}_City": _vocab_take([c[0] for c in vocab.CITIES], city),
        f"{prefix}_County": _vocab_take([c[2] for c in vocab.CITIES], city),
        f"{prefix}_ZipCode": _zips(zip_prefix, r[f"{prefix.lower()}_zip"]),
    }


def _rep_texts(r: Population) -> dict[str, pa.Array]:
    first = _vocab_take(vocab.FIRST_NAMES, r["first"])
    last = _vocab_take(vocab.LAST_NAMES, r["last"])
    metro_idx = np.where(r["metro_blank"], -1, r["home_city"])
    metro = _vocab_take([c[3] or None for c in vocab.CITIES], metro_idx)  # type: ignore[misc]
    crd_tail = pc.cast(pa.array(r["crd"] % 100_000), pa.string())
    link = pc.binary_join_element_wise(
        "https://www.linkedin.com/in/",
        pc.utf8_lower(first),
        "-",
        pc.utf8_lower(last),
        "-",
        crd_tail,
        "",
    )
    web = pc.binary_join_element_wise("www.", pc.utf8_lower(last), "wealth.com", "")
    codes = np.where(r["licences"] == 0, -1, r["licences"])
    return {
        "FirstName": first,
        "LastName": last,
        "Title": _vocab_take(vocab.TITLES, r["title"]),
        "Home_MetropolitanArea": metro,
        "Education": _vocab_take(vocab.EDUCATION, r["edu"]),
        "Licenses": _vocab_take(_licence_texts(), codes),
        "SocialMedia_LinkedIn": pc.if_else(pa.array(r["linkedin"]), link, None),
        "PersonalWebpage": pc.if_else(pa.array(r["web"]), web, None),
        "Notes": _vocab_take(vocab.NOTES, r["notes"]),
    }


def _rep_numbers(r: Population, firms: Population) -> dict[str, tuple[np.ndarray, pa.DataType]]:
    nums: dict[str, tuple[np.ndarray, pa.DataType]] = {
        "RepCRD": (r["crd"], pa.int64()),
        "RIAFirmCRD": (firms["crd"][r["firm"]], pa.int64()),
    }
    for j in range(1, 5):
        nums[f"Number_YearsPriorFirm{j}"] = (r[f"py{j}"], pa.float64())
    nums["NumberFirmAssociations"] = (r["n_firm_assoc"], pa.int64())
    nums["NumberRIAFirmAssociations"] = (r["n_ria_assoc"], pa.int64())
    nums["MilesToWork"] = (r["miles"], pa.float64())
    nums["Number_BranchAdvisors"] = (r["branch_adv"], pa.int64())
    return nums


def render_reps(
    rng: np.random.Generator,
    reps: Population,
    firms: Population,
    names: pa.Array,
    vintage: Vintage,
    n_duplicates: int,
) -> tuple[pa.Table, FileStats]:
    """The reps file of one vintage: one row per rep plus ``n_duplicates`` duplicate CRD rows."""
    stats = FileStats()
    cols: dict[str, pa.Array] = {}
    junk_masks: dict[str, np.ndarray] = {}
    for name, (values, typ) in _rep_numbers(reps, firms).items():
        cols[name] = _mess_numeric(rng, name, _masked(values, typ), stats, False, junk_masks)
    cols["RIAFirmName"] = names.take(pa.array(reps["firm"]))
    cols.update(_rep_places(reps, "Branch"))
    cols.update(_rep_places(reps, "Home"))
    cols.update(_rep_texts(reps))
    bits = reps["licences"]
    licence_bits = {"Has_CFP": 4, "Has_Series_7": 0, "Has_Series_65": 2, "Has_Series_66": 3}
    for name, bit in licence_bits.items():
        cols[name] = _bools(rng, bits >> bit & 1)
    flags = {
        "IsPrimaryRIAFirm": "primary",
        "KnownNonAdvisor": "non_advisor",
        "IsDuallyRegistered": "dual",
        "IsIndependent": "indep",
    }
    for name, key in flags.items():
        cols[name] = _bools(rng, reps[key])
    cols["DateBecameRep"] = _dates(rng, reps["became"], stats, "DateBecameRep")
    cols["DateOfHireAtCurrentFirm"] = _dates(rng, reps["hire"], stats, "DateOfHireAtCurrentFirm")
    cols.update(_meta_cols(vintage, len(reps)))
    table = pa.table({k: cols[k] for k in REPS_COLUMNS if k in cols})
    table = _add_duplicates(rng, table, reps["branch_city"], n_duplicates, stats, junk_masks)
    stats.unique_keys = len(reps)
    stats.null_cells = {k: table[k].null_count for k in table.column_names}
    return table, stats


def _add_duplicates(
    rng: np.random.Generator,
    table: pa.Table,
    branch_city: np.ndarray,
    n_dup: int,
    stats: FileStats,
    junk_masks: dict[str, np.ndarray],
) -> pa.Table:
    """Append copies of ``n_dup`` rows that differ only in location or extra blanks; shuffle.

    Kinds: a different Branch_State; a different Branch_City (with its state); more blanks in
    non-signal columns; an exact copy. Signal columns are always identical to the original.
    """
    n_cities, n_states = len(vocab.CITIES), len(vocab.STATES)
    src = np.sort(rng.choice(table.num_rows, n_dup, replace=False))
    kind = rng.choice(4, n_dup, p=[0.45, 0.2, 0.2, 0.15])
    dup = table.take(pa.array(src))
    old_city = branch_city[src]
    new_city = (old_city + 1 + rng.integers(0, n_cities - 1, n_dup)) % n_cities
    old_state = np.searchsorted(vocab.STATES, np.array([c[1] for c in vocab.CITIES])[old_city])
    new_state = (old_state + 1 + rng.integers(0, n_states - 1, n_dup)) % n_states
    city_state = np.array([c[1] for c in vocab.CITIES])
    state_text = np.where(kind == 1, city_state[new_city], np.array(vocab.STATES)[new_state])
    replace = {
        "Branch_State": (kind <= 1, pa.array(state_text, pa.string())),
        "Branch_City": (kind == 1, _vocab_take([c[0] for c in vocab.CITIES], new_city)),
    }
    for col in DUP_MUTABLE_BLANKS:
        replace[col] = (kind == 2, pa.nulls(n_dup, pa.string()))
    for col, (mask, values) in replace.items():
        i = dup.schema.get_field_index(col)
        dup = dup.set_column(i, col, pc.if_else(pa.array(mask), values, dup[col]))
    for col, mask in junk_masks.items():
        stats.junk_cells[col] += int(mask[src].sum())
    out = pa.concat_tables([table, dup.cast(table.schema)])
    stats.rows, stats.duplicate_rows = out.num_rows, n_dup
    names = ("branch_state", "branch_city", "more_blanks", "exact_copy")
    stats.duplicate_kinds = {names[k]: int((kind == k).sum()) for k in range(4)}
    return out.take(pa.array(rng.permutation(out.num_rows)))


def write_csv(table: pa.Table, path: Path) -> Path:
    """Write a table as CSV atomically (NULL as an empty field)."""
    with atomic_path(path) as tmp:
        pa_csv.write_csv(table, tmp)
    return path
