"""Generic source, build: load a CRM export (and enrichment tables), clean it, and join each
lead point in time.

Reads the mapping's CSV/Parquet files; writes ``generic_leads`` and ``generic_enrich_<name>``
(cleaned: placeholders and blanks are NULL, values typed) and ``generic_spine`` (one row per
lead id: features from the catalog, label and exclusion reason) in the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.catalog import CALIBRATION_SEGMENT
from leadscore.generic.catalog import GenericCatalog
from leadscore.generic.mapping import EnrichmentSpec, SourceMapping, safe_name
from leadscore.warehouse import Warehouse
from leadscore.warehouse.sql import ident as _q
from leadscore.warehouse.sql import text as _lit
from leadscore.warehouse.sql import timestamp as _ts
from leadscore.warehouse.swap import next_table, replace_tables

LEADS_TABLE = "generic_leads"
SPINE_TABLE = "generic_spine"
#: Why a lead is not a training row, in order of precedence.
REASONS: tuple[str, ...] = (
    "missing_event_time",
    "future_event",
    "missing_outcome",
    "negative_days",
    "right_censored",
)


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet file as Arrow with every column as text (typing happens in SQL)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table {path} does not exist")
    if path.suffix.lower() == ".parquet":
        table = pq.read_table(path)
    else:
        opts = pacsv.ConvertOptions(strings_can_be_null=False, auto_dict_encode=False)
        names = pacsv.read_csv(path, convert_options=opts).column_names
        types = {n: pa.string() for n in names}
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    columns = [pc.cast(c, pa.string()) for c in table.columns]
    return pa.table(columns, names=table.column_names)


def _text(col: str, placeholders: tuple[str, ...]) -> str:
    """Trimmed text; blank and placeholder values (``Select``, ``N/A``) become NULL."""
    lowered = ", ".join(_lit(p.lower()) for p in placeholders) or "''"
    c = f"TRIM(CAST({_q(col)} AS VARCHAR))"
    return f"CASE WHEN {c} = '' OR LOWER({c}) IN ({lowered}) THEN NULL ELSE {c} END"


def typed_sql(col: str, kind: str, placeholders: tuple[str, ...]) -> str:
    """The cleaned, typed value of a raw text column."""
    text = _text(col, placeholders)
    if kind == "numeric":
        return f"TRY_CAST(REPLACE(REPLACE(REPLACE({text}, ',', ''), '$', ''), '%', '') AS DOUBLE)"
    if kind in ("date", "ts"):
        return f"TRY_CAST({text} AS TIMESTAMPTZ)"
    if kind == "bool":
        return (
            f"CASE WHEN LOWER({text}) IN ('true', 't', 'yes', 'y', '1') THEN TRUE "
            f"WHEN LOWER({text}) IN ('false', 'f', 'no', 'n', '0') THEN FALSE END"
        )
    return text


@dataclass(frozen=True)
class LoadResult:
    """What was loaded: rows per table, and per field the values that did not parse."""

    n_rows: dict[str, int]
    n_duplicate_ids: int
    n_placeholders: dict[str, int]
    n_unparsed: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def _require(table: pa.Table, columns: list[str | None], what: str) -> None:
    missing = [c for c in columns if c is not None and c not in table.column_names]
    if missing:
        raise ValueError(f"{what} has no column(s) {missing}; fix the mapping")


def _lead_select(mapping: SourceMapping) -> list[str]:
    p = mapping.placeholders
    items = [
        f"{_text(mapping.id_col, ())} AS lead_id",
        "_row",
        (f"{typed_sql(mapping.event_ts_col, 'ts', p)}" if mapping.event_ts_col else "NULL")
        + " AS event_ts",
        (f"{typed_sql(mapping.outcome_ts_col, 'ts', p)}" if mapping.outcome_ts_col else "NULL")
        + " AS outcome_ts",
        (
            f"{typed_sql(mapping.outcome_flag_col, 'bool', p)}"
            if mapping.outcome_flag_col
            else "NULL"
        )
        + " AS outcome_flag",
    ]
    for e in mapping.enrichments:
        items.append(f"{_text(e.lead_key_col, p)} AS {_q('key__' + e.name)}")
    items += [f"{typed_sql(f.column, f.kind, p)} AS {_q(f.name)}" for f in mapping.fields]
    return items


def _enrich_select(e: EnrichmentSpec, placeholders: tuple[str, ...]) -> list[str]:
    items = [
        f"{_text(e.key_col, placeholders)} AS key",
        "_row",
        f"{typed_sql(e.available_ts_col, 'ts', ())} AS available_ts",
    ]
    for f in e.fields:
        name = f"{e.name}__{safe_name(f.column)}"
        items.append(f"{typed_sql(f.column, f.kind, placeholders)} AS {_q(name)}")
    return items


def _load_one(
    wh: Warehouse,
    raw: pa.Table,
    table: str,
    select: list[str],
    columns: dict[str, str],
    placeholders: tuple[str, ...],
) -> tuple[dict[str, int], dict[str, int]]:
    """Load ``raw`` as ``<table>_raw`` and write the cleaned rows to ``table``'s scratch table.

    :func:`~leadscore.warehouse.swap.replace_tables` then swaps them in, so no table is created
    inside a transaction (BigQuery allows only DML there).

    Args:
        columns: cleaned column -> raw column, for the counts.

    Returns:
        Per cleaned column: values present but not parseable, and placeholder values.
    """
    raw = raw.append_column("_row", pa.array(range(raw.num_rows), pa.int64()))
    wh.load_arrow(f"{table}_raw", raw)
    body = ",\n  ".join(select)
    scratch = next_table(table)
    wh.execute(f"CREATE OR REPLACE TABLE {scratch} AS SELECT\n  {body}\nFROM {table}_raw")
    if not columns:
        return {}, {}
    sums = []
    for i, (clean, source) in enumerate(columns.items()):
        given = f"TRIM(CAST(r.{_q(source)} AS VARCHAR)) <> ''"
        text = _text(source, placeholders).replace(_q(source), f"r.{_q(source)}")
        sums.append(
            f"SUM(CASE WHEN {given} AND ({text}) IS NULL THEN 1 ELSE 0 END) AS p{i}, "
            f"SUM(CASE WHEN ({text}) IS NOT NULL AND c.{_q(clean)} IS NULL THEN 1 ELSE 0 END)"
            f" AS u{i}"
        )
    row = wh.query(
        f"SELECT {', '.join(sums)} FROM {table}_raw AS r JOIN {scratch} AS c USING (_row)"
    ).to_pylist()[0]
    unparsed = {c: int(row[f"u{i}"] or 0) for i, c in enumerate(columns)}
    found = {c: int(row[f"p{i}"] or 0) for i, c in enumerate(columns)}
    return unparsed, found


def load_source(wh: Warehouse, mapping: SourceMapping) -> LoadResult:
    """Load and clean the lead table and every enrichment table.

    Placeholder texts count as missing (``n_placeholders`` counts them with blanks); a value
    that is present but does not parse as its kind is NULL and counted in ``n_unparsed``.
    """
    leads = read_table(mapping.table)
    _require(
        leads,
        [mapping.id_col, mapping.event_ts_col, mapping.outcome_ts_col, mapping.outcome_flag_col]
        + [f.column for f in mapping.fields]
        + [e.lead_key_col for e in mapping.enrichments],
        f"lead table {mapping.table.name}",
    )
    n_rows = {LEADS_TABLE: leads.num_rows}
    p = mapping.placeholders
    columns = {f.name: f.column for f in mapping.fields}
    unparsed, blanks = _load_one(wh, leads, LEADS_TABLE, _lead_select(mapping), columns, p)
    for e in mapping.enrichments:
        raw = read_table(e.table)
        _require(raw, [e.key_col, e.available_ts_col, *(f.column for f in e.fields)], e.name)
        name = f"generic_enrich_{e.name}"
        columns = {f"{e.name}__{f.name}": f.column for f in e.fields}
        u, b = _load_one(wh, raw, name, _enrich_select(e, p), columns, p)
        unparsed.update(u)
        blanks.update(b)
        n_rows[name] = raw.num_rows
    replace_tables(wh, list(n_rows))
    dupes = wh.query(
        f"SELECT COUNT(lead_id) - COUNT(DISTINCT lead_id) AS n FROM {LEADS_TABLE}"
    ).to_pylist()[0]["n"]
    warnings = [
        f"{n}: {k:,} value(s) present but not parseable as the mapped kind; read as missing"
        for n, k in unparsed.items()
        if k
    ]
    if dupes:
        warnings.append(f"{dupes:,} duplicate lead id row(s): the earliest event of each id kept")
    return LoadResult(n_rows, int(dupes), blanks, unparsed, warnings)


def resolve_as_of(wh: Warehouse, mapping: SourceMapping) -> datetime:
    """The extraction time: the mapping's ``as_of``, else the latest time in the lead table."""
    if mapping.as_of is not None:
        return mapping.as_of
    row = wh.query(
        f"SELECT GREATEST(MAX(event_ts), MAX(outcome_ts)) AS ts FROM {LEADS_TABLE}"
    ).to_pylist()[0]
    if row["ts"] is None:
        raise ValueError("no as_of: set [source] as_of; the lead table has no usable times")
    return row["ts"]


# ---------------------------------------------------------------------------- point in time
@dataclass(frozen=True)
class GenericContext:
    """What the generic point-in-time SQL depends on."""

    mapping: SourceMapping
    as_of: datetime
    has_time: bool


def _spine_cte(ctx: GenericContext) -> str:
    pit = "l.event_ts" if ctx.has_time else _ts(ctx.as_of)
    return f"""-- 1. Restrict: one row per lead id (duplicates: earliest event, then file order).
lead_spine AS (
  SELECT
    l.*,
    {pit} AS pit_ts
  FROM {LEADS_TABLE} AS l
  WHERE l.lead_id IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY l.lead_id
    ORDER BY l.event_ts NULLS LAST, l._row
  ) = 1
)"""


def _enrichment_cte(e: EnrichmentSpec) -> str:
    return f"""-- 2. Join {e.name} on its key with available_ts <= the lead's point in time.
-- 3. Break ties: latest available_ts, then the later row of the file.
-- 4. Keep the latest: one {e.name} row per lead.
pit_{e.name} AS (
  SELECT
    s.lead_id,
    e.* EXCLUDE (key, _row, available_ts),
    e.available_ts AS {_q(e.name + "_available_ts")}
  FROM lead_spine AS s
  JOIN generic_enrich_{e.name} AS e
    ON e.key = s.{_q("key__" + e.name)}
    AND e.available_ts <= s.pit_ts
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY s.lead_id
    ORDER BY e.available_ts DESC, e._row DESC
  ) = 1
)"""


def _joined_cte(mapping: SourceMapping) -> str:
    cols = ["s.*"] + [f"p{i}.* EXCLUDE (lead_id)" for i, _ in enumerate(mapping.enrichments)]
    items = ",\n    ".join(cols)
    joins = "".join(
        f"\n  LEFT JOIN pit_{e.name} AS p{i} ON p{i}.lead_id = s.lead_id"
        for i, e in enumerate(mapping.enrichments)
    )
    return f"""-- 5. Left-join back to the lead spine, so no lead disappears silently.
joined AS (
  SELECT
    {items}
  FROM lead_spine AS s{joins}
)"""


def _label_sql(ctx: GenericContext) -> tuple[str, str]:
    window = f"INTERVAL {int(ctx.mapping.label_window_days)} DAY"
    if ctx.has_time and ctx.mapping.outcome_ts_col is not None:
        target = (
            "CASE WHEN outcome_ts >= event_ts AND outcome_ts <= event_ts + "
            f"{window} THEN 1 ELSE 0 END"
        )
    else:
        target = "CASE WHEN outcome_flag THEN 1 ELSE 0 END"
    checks = []
    if ctx.has_time:
        checks += [
            "WHEN event_ts IS NULL THEN 'missing_event_time'",
            f"WHEN event_ts > {_ts(ctx.as_of)} THEN 'future_event'",
        ]
    if ctx.mapping.outcome_ts_col is None or not ctx.has_time:
        checks.append("WHEN outcome_flag IS NULL THEN 'missing_outcome'")
    if ctx.has_time and ctx.mapping.outcome_ts_col is not None:
        checks.append("WHEN outcome_ts < event_ts THEN 'negative_days'")
    if ctx.has_time:
        checks.append(f"WHEN event_ts > {_ts(ctx.as_of)} - {window} THEN 'right_censored'")
    reason = "CASE\n    " + "\n    ".join(checks) + "\n  END" if checks else "NULL"
    return f"CAST({target} AS BIGINT)", reason


def generic_pit_sql(ctx: GenericContext, catalog: GenericCatalog) -> str:
    """The point-in-time statement: one row per lead id of the lead table (invariant), with
    segment, catalog features, label, exclusion reason and the raw times the leakage detector
    reads (outcome time, each date field's timestamp)."""
    target, reason = _label_sql(ctx)
    dates = [f for f in ctx.mapping.all_fields() if f.kind == "date"]
    out = ["lead_id", "event_ts AS contact_ts", "pit_ts", "outcome_ts", f"{target} AS target"]
    out += [f"{reason} AS exclusion_reason"]
    out += [catalog.select_sql(s.name) for s in catalog.segments]
    out += [catalog.select_sql(n) for n in catalog.model_features()]
    out += [f"{_q(d.name)} AS {_q(d.name + '__ts')}" for d in dates]
    out += [f"{_q(e.name + '_available_ts')}" for e in ctx.mapping.enrichments]
    ctes = [_spine_cte(ctx), *(_enrichment_cte(e) for e in ctx.mapping.enrichments)]
    ctes.append(_joined_cte(ctx.mapping))
    header = (
        f"-- leadscore generic point-in-time query: as_of={ctx.as_of.astimezone(UTC).isoformat()}"
        f", time={'event' if ctx.has_time else 'none (as_of)'}, catalog={catalog.fingerprint[:12]}"
    )
    select = ",\n  ".join(out)
    body = ",\n".join(ctes)
    return f"{header}\nWITH\n{body}\n-- 6. Output.\nSELECT\n  {select}\nFROM joined"


def build_spine(wh: Warehouse, ctx: GenericContext, catalog: GenericCatalog) -> pd.DataFrame:
    """Write ``generic_spine`` and return it (one row per lead id), ordered by time and id."""
    sql = generic_pit_sql(ctx, catalog)
    wh.execute(f"CREATE OR REPLACE TABLE {SPINE_TABLE} AS\n{sql}")  # one statement: atomic
    df = wh.query(f"SELECT * FROM {SPINE_TABLE} ORDER BY contact_ts, lead_id").to_pandas()
    df[CALIBRATION_SEGMENT] = df[CALIBRATION_SEGMENT].astype(str)
    return df


def level_counts(
    wh: Warehouse, mapping: SourceMapping, end: datetime | None
) -> dict[str, dict[str, int]]:
    """Category level counts over the lead rows before ``end`` (all rows when None).

    Enrichment categories are counted over their whole table (rows describe entities, not
    leads; no labels are read either way).
    """
    out: dict[str, dict[str, int]] = {}
    where = f"WHERE event_ts < {_ts(end)}" if end is not None else ""
    for f in mapping.fields:
        if f.kind == "category":
            rows = wh.query(
                f"SELECT {_q(f.name)} AS v, COUNT(*) AS n FROM {LEADS_TABLE} {where} "
                f"GROUP BY 1 HAVING v IS NOT NULL"
            ).to_pylist()
            out[f.name] = {str(r["v"]): int(r["n"]) for r in rows}
    for e in mapping.enrichments:
        for f in e.fields:
            if f.kind == "category":
                name = f"{e.name}__{f.name}"
                rows = wh.query(
                    f"SELECT {_q(name)} AS v, COUNT(*) AS n FROM generic_enrich_{e.name} "
                    "GROUP BY 1 HAVING v IS NOT NULL"
                ).to_pylist()
                out[name] = {str(r["v"]): int(r["n"]) for r in rows}
    return out
