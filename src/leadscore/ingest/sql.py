"""SQL for stage ``ingest``: staged raw strings -> one typed pass -> profile and final table.

Reads the staging table (raw strings with ``_source_row``); writes the typed scratch table and
the target table. DuckDB dialect, transpiled by sqlglot for BigQuery. Each raw value is trimmed
and cast exactly once (in ``typed_sql``); the profile and the load only read typed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final, Literal

from leadscore.ingest import quality, schema
from leadscore.ingest.quality import lit, q

Kind = Literal["reps", "firms", "leads", "tasks"]

#: Per-column names in the typed table: cast failed, normalised zone, value without a zone.
_FAIL: Final = "_fail_{}"
_ZONE: Final = "_zone_{}"
_NAIVE: Final = "_naive_{}"
_TS_LIKE: Final = r"^\d{4}-\d{1,2}-\d{1,2}"


@dataclass(frozen=True)
class Source:
    """One input file and everything the generated SQL needs to know about it."""

    path: Path
    file: str  # path relative to the delivery folder: the ingest_log key
    kind: Kind
    table: str
    columns: Mapping[str, schema.LogicalType]
    key_col: str
    zone: str | None
    zone_section: str  # config section naming the zone: "vendor" or "crm"
    vintage: tuple[int, int] | None = None  # (year, quarter) of a vendor file
    latest_col: str | None = None  # duplicates: the latest value of this column wins
    header: tuple[str, ...] = ()
    as_of: date | None = None  # the vendor file's one snapshot_as_of, once profiled

    @property
    def quarter_start(self) -> date | None:
        return None if self.vintage is None else date(self.vintage[0], self.vintage[1] * 3 - 2, 1)

    @property
    def present(self) -> list[str]:
        """The schema columns the file has, in schema order (index ``i`` of the profile)."""
        return [c for c in self.columns if c in self.header]


def typed_sql(source: Source, stage: str, typed: str, temp: bool) -> str:
    """One pass over the staged strings: every schema column cast once, plus what the profile
    needs per column (``_fail_i``: non-blank but cast NULL; for timestamps ``_zone_i``, the
    normalised offset, and ``_naive_i``, the value when it has no offset). One row per staged
    row, in file order."""
    typed_cols = [
        f"{quality.cast_expr(source.columns, source.header, c, source.zone)} AS {q(c)}"
        for c in source.columns
    ]
    raw_cols, extra = [], []
    for i, col in enumerate(source.present):
        ltype = source.columns[col]
        if ltype == "str":  # a string never fails to cast
            continue
        raw_cols.append(f"{q(col)} AS {q('_raw_' + col)}")
        extra.append(f"({q('_raw_' + col)} IS NOT NULL AND {q(col)} IS NULL) AS {_FAIL.format(i)}")
        if ltype == "timestamp":
            naive = f"{q('_z_' + col)} = '' AND regexp_matches({q(col)}, {lit(_TS_LIKE)})"
            raw_cols += [
                f"{quality.norm_zone(col)} AS {_ZONE.format(i)}",
                f"CASE WHEN {naive} THEN {q(col)} END AS {_NAIVE.format(i)}",
            ]
            extra += [_ZONE.format(i), _NAIVE.format(i)]
    keep = ["_source_row", *(q(c) for c in source.columns), *extra]
    return (
        f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {q(typed)} AS\n"
        f"WITH {quality.clean_ctes(source.columns, source.header, stage)},\n"
        f"converted AS (SELECT _source_row, {', '.join(typed_cols + raw_cols)} FROM prepared)\n"
        f"SELECT {', '.join(keep)} FROM converted"
    )


def profile_sql(source: Source, typed: str) -> str:
    """One pass over the typed table: rows, keys, cast failures per column, timestamp zones."""
    key = q(source.key_col)
    items = [
        "count(*) AS n_rows",
        f"count(DISTINCT {key}) AS n_unique_keys",
        f"count(*) FILTER (WHERE {key} IS NULL) AS n_null_keys",
    ]
    for i, col in enumerate(source.present):
        if source.columns[col] == "str":
            items.append(f"0 AS fail_{i}")
            continue
        items.append(f"count(*) FILTER (WHERE {_FAIL.format(i)}) AS fail_{i}")
        if source.columns[col] == "timestamp":
            zone, naive = _ZONE.format(i), _NAIVE.format(i)
            items += [
                f"count({naive}) AS naive_{i}",
                f"min({naive}) AS naive_example_{i}",
                f"count(DISTINCT {zone}) AS n_zones_{i}",
                f"min({zone}) AS zone_min_{i}",
                f"max({zone}) AS zone_max_{i}",
            ]
    if source.vintage:
        items += ["min(snapshot_as_of) AS as_of_min", "max(snapshot_as_of) AS as_of_max"]
    return f"SELECT {', '.join(items)} FROM {q(typed)}"


def _filled(source: Source) -> str:
    # snapshot_as_of counts as filled on every row: the load writes the file's one date there
    constant = "snapshot_as_of" if source.vintage and source.as_of else None
    return " + ".join(
        "1" if c == constant else f"(CASE WHEN {q(c)} IS NULL THEN 0 ELSE 1 END)"
        for c in source.columns
    )


def _order(source: Source) -> str:
    if source.latest_col:
        return f"{q(source.latest_col)} DESC NULLS LAST, _source_row"
    return f"({_filled(source)}) DESC, _source_row"


def _final_columns(source: Source, delivery_lag_days: int) -> list[str]:
    final = [q(c) for c in source.columns]
    if source.vintage and source.as_of and source.quarter_start:
        as_of = source.as_of  # check_profile proved the file holds exactly this one date
        final[list(source.columns).index("snapshot_as_of")] = f"{_date(as_of)} AS snapshot_as_of"
        lagged = as_of + timedelta(days=delivery_lag_days)
        fallback = f"CAST({lit(f'{lagged} 00:00:00+00:00')} AS TIMESTAMPTZ)"
        final += [
            f"{_date(source.quarter_start)} AS snapshot_quarter",
            f"COALESCE(processed_at, {fallback}) AS available_at",
        ]
    if source.kind == "leads":
        crd, plain = q("FA_CRD__c"), f"regexp_matches({q('FA_CRD__c')}, '^[0-9]+$')"
        final += [
            f"CASE WHEN {plain} THEN TRY_CAST({crd} AS BIGINT) END AS {q('RepCRD')}",
            f"CASE WHEN {crd} IS NULL THEN 'missing' WHEN {plain} AND TRY_CAST({crd} AS BIGINT) "
            "IS NOT NULL THEN 'ok' ELSE 'malformed' END AS crd_status",
        ]
    return [*final, f"{lit(source.file)} AS _source_file", "_source_row"]


def load_sql(source: Source, typed: str, delivery_lag_days: int) -> str:
    """One statement: typed rows -> one row per key -> the target table, in file order.

    Steps: 1. keys held by more than one row (most keys are unique, so this set is small);
    2. rank only those rows by the duplicate rule; 3. keep every row that is not a ranked
    loser (rows with a NULL key are never ranked, so all of them stay).
    """
    key, table = q(source.key_col), q(typed)
    return (
        f"CREATE OR REPLACE TABLE {q(source.table)} AS\n"
        f"WITH repeated AS (SELECT {key} FROM {table} WHERE {key} IS NOT NULL "
        f"GROUP BY {key} HAVING count(*) > 1),\n"
        f"ranked AS (SELECT _source_row, row_number() OVER (PARTITION BY {key} "
        f"ORDER BY {_order(source)}) AS _rn FROM {table} "
        f"WHERE {key} IN (SELECT {key} FROM repeated)),\n"
        f"losers AS (SELECT _source_row FROM ranked WHERE _rn > 1)\n"
        f"SELECT {', '.join(_final_columns(source, delivery_lag_days))} FROM {table} "
        "WHERE _source_row NOT IN (SELECT _source_row FROM losers) ORDER BY _source_row"
    )


def _date(value: date) -> str:
    return f"CAST({lit(value.isoformat())} AS DATE)"


def view_sql(columns: Mapping[str, schema.LogicalType], vintage_tables: list[str]) -> str:
    """All vintages of one kind, stacked by column name."""
    cols = [*columns, "snapshot_quarter", "available_at", "_source_file", "_source_row"]
    select = ", ".join(q(c) for c in cols)
    return "\nUNION ALL BY NAME\n".join(f"SELECT {select} FROM {q(t)}" for t in vintage_tables)
