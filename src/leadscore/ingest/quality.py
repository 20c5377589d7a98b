"""Data quality for ``ingest``: what a valid value is, the checks a raw file must pass, the report.

The cast rules are SQL (DuckDB dialect, portable to BigQuery through sqlglot) over a staging
table of raw strings. Reads file heads, the one-pass profile of each staged file, ``ingest_log``
and the ingested tables; writes ``reports/ingest/quality.{md,json}`` atomically.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Final

from leadscore.config import Settings
from leadscore.ingest.schema import LogicalType
from leadscore.io import write_json, write_text
from leadscore.warehouse import Warehouse, tables
from leadscore.warehouse.sql import text as lit

DEDUP_RULES: Final = {
    "reps": "one row per RepCRD: most non-null fields after casting; ties -> earliest source row",
    "firms": "one row per RIAFirmCRD: most non-null fields after casting; ties -> earliest row",
    "leads": "one row per Id: latest LastModifiedDate (NULL last); ties -> earliest source row",
    "tasks": "one row per Id: most non-null fields after casting; ties -> earliest source row",
    "blank keys": "rows whose key is blank or not a number are all kept, never merged",
}
_HEAD_BYTES: Final = 1 << 16
_LINEAGE: Final = ("_source_file", "_source_row")
_ZONE_STATS: Final = ("naive", "naive_example", "n_zones", "zone_min", "zone_max")


_SQL_TYPES: Final = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "str": "VARCHAR",
}
_THOUSANDS: Final = r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"
_INTEGRAL: Final = r"^[+-]?\d+(\.0*)?$"
_US_DATE: Final = r"^(\d{1,2})/(\d{1,2})/(\d{4})$"
#: The zone suffix of a timestamp: Z, +HH, +HHMM or +HH:MM right after a time of day.
_ZONE: Final = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)$"
_TRUE: Final = "('y', 'yes', 'true', 't', '1')"
_FALSE: Final = "('n', 'no', 'false', 'f', '0')"


class IngestError(ValueError):
    """A file that cannot be ingested; the message names the file and the problem."""


# --- what a valid value is: SQL over the staged raw strings ---------------------------------


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def clean_ctes(columns: Mapping[str, LogicalType], header: Iterable[str], stage: str) -> str:
    """CTEs ``clean`` (trimmed, blank -> NULL, thousands separators dropped) and ``prepared``
    (plus ``_z_<col>``, the zone suffix of each timestamp column)."""
    present = [c for c in columns if c in header]
    cols = []
    for col in present:
        raw = f"NULLIF(trim({q(col)}), '')"
        if columns[col] in ("int", "float"):
            raw = (  # the regex runs only on the few cells holding a comma
                f"CASE WHEN {raw} NOT LIKE '%,%' THEN {raw} "
                f"WHEN regexp_matches({raw}, {lit(_THOUSANDS)}) THEN replace({raw}, ',', '') "
                f"ELSE {raw} END"
            )
        cols.append(f"{raw} AS {q(col)}")
    zones = [
        f"regexp_extract({q(c)}, {lit(_ZONE)}, 1) AS {q('_z_' + c)}"
        for c in present
        if columns[c] == "timestamp"
    ]
    return (
        f"clean AS (SELECT _source_row, {', '.join(cols)} FROM {q(stage)}),\n"
        f"prepared AS (SELECT {', '.join(['*', *zones])} FROM clean)"
    )


def norm_zone(col: str) -> str:
    """The zone suffix of timestamp column ``col`` as +HH:MM (NULL when it has none)."""
    z = f"NULLIF({q('_z_' + col)}, '')"
    return (
        f"CASE WHEN {z} IN ('Z', 'z') THEN '+00:00' WHEN length({z}) = 3 THEN {z} || ':00' "
        f"ELSE left({z}, 3) || ':' || right({z}, 2) END"
    )


def typed_expr(col: str, ltype: LogicalType, zone: str | None = None) -> str:
    """SQL casting column ``col`` of ``prepared`` to its type; junk becomes NULL.

    Timestamps keep their own offset (normalised to +HH:MM); values without one are read in
    ``zone`` (profile checks have rejected them when no zone is configured).
    """
    c = q(col)
    if ltype == "int":  # TRY_CAST('12.7' AS BIGINT) rounds; a fraction is junk here
        # the regex_replace runs only on the few cells holding a '.'
        digits = f"CASE WHEN {c} LIKE '%.%' THEN regexp_replace({c}, '\\.0*$', '') ELSE {c} END"
        integral = f"regexp_matches({c}, {lit(_INTEGRAL)})"
        return f"CASE WHEN {integral} THEN TRY_CAST({digits} AS BIGINT) END"
    if ltype == "float":  # a number needs a digit: 'NaN' and 'inf' are junk
        return f"CASE WHEN regexp_matches({c}, '\\d') THEN TRY_CAST({c} AS DOUBLE) END"
    if ltype == "bool":
        return (
            f"CASE WHEN lower({c}) IN {_TRUE} THEN TRUE WHEN lower({c}) IN {_FALSE} THEN FALSE END"
        )
    if ltype == "date":  # the regex runs only on the few cells holding a '/'
        us_date = f"regexp_replace({c}, {lit(_US_DATE)}, '\\3-\\1-\\2')"
        return f"TRY_CAST(CASE WHEN {c} LIKE '%/%' THEN {us_date} ELSE {c} END AS DATE)"
    if ltype == "timestamp":
        z = q("_z_" + col)
        naive = f"{c} || {lit(' ' + zone)}" if zone else c
        return (
            f"TRY_CAST(CASE WHEN {z} <> '' THEN left({c}, length({c}) - length({z})) || "
            f"{norm_zone(col)} ELSE {naive} END AS TIMESTAMPTZ)"
        )
    return c


def cast_expr(
    columns: Mapping[str, LogicalType], header: Iterable[str], col: str, zone: str | None
) -> str:
    """``typed_expr`` for a column the file has, a typed NULL for one it lacks."""
    if col not in header:
        return f"CAST(NULL AS {_SQL_TYPES[columns[col]]})"
    return typed_expr(col, columns[col], zone)


# --- before loading ---------------------------------------------------------------------------


def check_csv(path: Path, file: str, required: Iterable[str]) -> tuple[str, ...]:
    """The header of a CSV file fit to load.

    Raises:
        IngestError: the file is empty, not a CSV, has an unusable header, lacks a required
            column or has no data rows.
    """
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    problem = _format_problem(head)
    if problem:
        raise IngestError(f"{file}: {problem}")
    first, _, rest = head.partition(b"\n")
    try:
        line = first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise IngestError(f"{file}: the header is not UTF-8 text; not a CSV export") from None
    names = _parse_header(line, file)
    missing = [c for c in required if c not in names]
    if missing:
        raise IngestError(f"{file}: missing required column(s): {', '.join(missing)}")
    if not rest.strip() and len(head) < _HEAD_BYTES:
        raise IngestError(f"{file}: empty file (a header but no data rows)")
    return tuple(names)


def _format_problem(head: bytes) -> str | None:
    if not head.strip():
        return "empty file (no header, no rows)"
    if head.startswith(b"PAR1"):
        return "is a Parquet file, not a CSV"
    if head.startswith(b"PK\x03\x04"):
        return "is a zip (or Excel) file, not a CSV"
    if b"\x00" in head:
        return "has binary content, not a CSV"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        return "holds JSON, not a CSV"
    if b"\n" not in head and len(head) == _HEAD_BYTES:
        return "has no line break in its first 64 KiB; not a CSV"
    return None


def _parse_header(line: str, file: str) -> list[str]:
    try:
        names = [n.strip() for n in next(csv.reader([line], strict=True))]
    except (csv.Error, StopIteration) as exc:
        raise IngestError(f"{file}: the header does not parse as CSV ({exc})") from None
    if len(names) == 1 and any(sep in line for sep in ";\t|"):
        raise IngestError(f"{file}: the header is not comma-separated: {line[:80]!r}")
    if not all(names):
        raise IngestError(f"{file}: the header has an empty column name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise IngestError(f"{file}: the header repeats column(s): {', '.join(repeated)}")
    return names


def check_profile(file: str, row: Mapping[str, Any], checks: Mapping[str, Any]) -> dict[str, Any]:
    """Vet the one-pass profile of a staged file and return its figures for the log.

    Raises:
        IngestError: no data rows, a timestamp column without a zone (and none configured) or
            with mixed zones, or a vendor file whose snapshot_as_of is not one date in the
            quarter its name says.
    """
    if not row["n_rows"]:
        raise IngestError(f"{file}: empty file (a header but no data rows)")
    columns = checks["fail_columns"]
    for i, col in enumerate(columns):
        if f"naive_{i}" in row:
            stats = {k: row[f"{k}_{i}"] for k in _ZONE_STATS}
            _check_zone(file, col, stats, checks)
    n_duplicates = row["n_rows"] - row["n_null_keys"] - row["n_unique_keys"]
    profile: dict[str, Any] = {
        "n_rows": row["n_rows"],
        "n_unique_keys": row["n_unique_keys"],
        "n_null_keys": row["n_null_keys"],
        "n_duplicates": n_duplicates,
        "cast_failures": {c: row[f"fail_{i}"] for i, c in enumerate(columns) if row[f"fail_{i}"]},
    }
    if checks["quarter_start"] is not None:
        profile["snapshot_as_of"] = _check_as_of(file, row, checks["quarter_start"])
    return profile


def _check_zone(file: str, col: str, stats: Mapping[str, Any], checks: Mapping[str, Any]) -> None:
    if stats["n_zones"] > 1:
        raise IngestError(
            f"{file}: column {col} mixes time zones ({stats['zone_min']} and "
            f"{stats['zone_max']}); a timestamp column must carry one zone"
        )
    if stats["naive"] and checks["zone"] is None:
        beside = f" beside values in {stats['zone_min']}" if stats["n_zones"] else ""
        raise IngestError(
            f"{file}: column {col} has {stats['naive']} timestamp(s) without a time zone "
            f"(e.g. {stats['naive_example']!r}){beside}; set {checks['zone_key']} in "
            "leadscore.toml to the IANA zone they were written in"
        )


def _check_as_of(file: str, row: Mapping[str, Any], quarter_start: date) -> date:
    low, high = row["as_of_min"], row["as_of_max"]
    if low is None:
        raise IngestError(f"{file}: snapshot_as_of holds no valid date")
    if low != high:
        raise IngestError(f"{file}: snapshot_as_of holds several dates ({low} .. {high})")
    if (low.year, (low.month - 1) // 3) != (quarter_start.year, (quarter_start.month - 1) // 3):
        quarter = (quarter_start.month - 1) // 3 + 1
        raise IngestError(
            f"{file}: snapshot_as_of {low} is not in {quarter_start.year} Q{quarter}, "
            "the quarter the file name says"
        )
    return low


# --- after loading ----------------------------------------------------------------------------


def write_quality_report(
    wh: Warehouse,
    cfg: Settings,
    log_rows: Iterable[Mapping[str, Any]],
    timings: Mapping[str, Mapping[str, Any]],
    ignored: Iterable[str],
    seconds: float,
    replaced: Iterable[Mapping[str, Any]] = (),
) -> tuple[Path, Path]:
    """Write ``quality.md`` and ``quality.json`` under ``reports_dir/ingest``; return both.

    ``replaced``: what each re-delivered vendor quarter changed (``guard.what_changed``).
    """
    report = build_quality_report(wh, cfg, log_rows, timings, ignored, seconds)
    report["replaced_quarters"] = [dict(r) for r in replaced]
    folder = cfg.project.reports_dir / "ingest"
    return (
        write_text(folder / "quality.md", render_markdown(report)),
        write_json(folder / "quality.json", report),
    )


def build_quality_report(
    wh: Warehouse,
    cfg: Settings,
    log_rows: Iterable[Mapping[str, Any]],
    timings: Mapping[str, Mapping[str, Any]],
    ignored: Iterable[str],
    seconds: float,
) -> dict[str, Any]:
    """Every figure of the report, JSON-ready (what ``quality.json`` holds)."""
    files = [_file_figures(row, timings.get(row["file"], {})) for row in log_rows]
    files.sort(key=lambda f: (f["snapshot_quarter"] or "9999", f["kind"]))
    latest = {
        kind: max((f for f in files if f["kind"] == kind), key=lambda f: f["snapshot_quarter"])
        for kind in ("reps", "firms")
        if any(f["kind"] == kind for f in files)
    }
    check = [latest[k]["table"] for k in latest] + [
        t for t in (tables.LEADS, tables.TASKS) if any(f["table"] == t for f in files)
    ]
    leads = any(f["table"] == tables.LEADS for f in files)
    return {
        "crd_match": _crd_match(wh, cfg, latest["reps"]) if leads and "reps" in latest else None,
        "files": files,
        "completeness": {t: _completeness(wh, t) for t in check},
        "crd_status": _counts(wh, f"SELECT crd_status AS k, count(*) AS n FROM {tables.LEADS} "
                                  "GROUP BY crd_status ORDER BY crd_status") if leads else {},
        "leads_per_month": _leads_per_month(wh, cfg) if leads else {},
        "dedup_rules": DEDUP_RULES,
        "ignored_files": list(ignored),
        "seconds": round(seconds, 3),
    }  # fmt: skip


def _file_figures(row: Mapping[str, Any], timing: Mapping[str, Any]) -> dict[str, Any]:
    profile = json.loads(row["profile"])
    quarter = row["snapshot_quarter"]
    return {
        "file": row["file"],
        "kind": row["kind"],
        "table": row["table_name"],
        "snapshot_quarter": quarter.isoformat() if quarter else None,
        "snapshot_as_of": profile.get("snapshot_as_of"),
        "n_rows": row["n_rows"],
        "n_kept": row["n_kept"],
        "n_unique_keys": profile["n_unique_keys"],
        "n_duplicates": profile["n_duplicates"],
        "n_null_keys": profile["n_null_keys"],
        "cast_failures": profile["cast_failures"],
        "extra_columns": profile["extra_columns"],
        "missing_columns": profile["missing_columns"],
        "action": timing.get("action", "not in this delivery"),
        "seconds": timing.get("seconds"),
    }


def _crd_match(wh: Warehouse, cfg: Settings, latest: Mapping[str, Any]) -> dict[str, Any]:
    row = wh.query(
        f"SELECT count(*) AS n_contacted, count(r.k) AS n_matched FROM {tables.LEADS} AS l "
        f'LEFT JOIN (SELECT DISTINCT "RepCRD" AS k FROM {latest["table"]}) AS r '
        f'ON l."RepCRD" = r.k WHERE l."{cfg.crm.contacted_ts_col}" IS NOT NULL'
    ).to_pylist()[0]
    rate = row["n_matched"] / row["n_contacted"] if row["n_contacted"] else None
    return {**row, "rate": rate, "vintage": latest["snapshot_quarter"]}


def _completeness(wh: Warehouse, table: str) -> dict[str, float]:
    names = [n for n in wh.query(f"SELECT * FROM {table} LIMIT 0").column_names
             if n not in _LINEAGE]  # fmt: skip
    counts = ", ".join(f'count("{n}") AS c_{i}' for i, n in enumerate(names))
    row = wh.query(f"SELECT count(*) AS n, {counts} FROM {table}").to_pylist()[0]
    return {
        n: round(row[f"c_{i}"] / row["n"], 4) if row["n"] else 0.0 for i, n in enumerate(names)
    }


def _counts(wh: Warehouse, sql: str) -> dict[str, int]:
    return {str(r["k"]): r["n"] for r in wh.query(sql).to_pylist()}


def _leads_per_month(wh: Warehouse, cfg: Settings) -> dict[str, int]:
    ts = f'"{cfg.crm.contacted_ts_col}"'
    return {
        k[:7]: n
        for k, n in _counts(
            wh,
            f"SELECT CAST(date_trunc('month', {ts}) AS DATE) AS k, count(*) AS n "
            f"FROM {tables.LEADS} WHERE {ts} IS NOT NULL GROUP BY 1 ORDER BY 1",
        ).items()
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    """The short human report: the figure that matters first."""
    files = report["files"]
    lines = ["# Ingest data quality", "", _headline(report), "", "## Files", ""]
    lines += _table(
        ["file", "rows", "kept", "unique keys", "duplicate rows", "blank keys", "cast failures",
         "action", "seconds"],
        [[f["file"], f["n_rows"], f["n_kept"], f["n_unique_keys"], f["n_duplicates"],
          f["n_null_keys"], sum(f["cast_failures"].values()), f["action"], f["seconds"] or "-"]
         for f in files],
    )  # fmt: skip
    failed = [[f["file"], c, n] for f in files for c, n in sorted(f["cast_failures"].items())]
    if failed:
        lines += ["", "## Values that failed to cast (now NULL)", ""]
        lines += _table(["file", "column", "values"], failed)
    lines += ["", "## Completeness (share of non-null values, columns below 100%)", ""]
    for table, shares in report["completeness"].items():
        low = ", ".join(f"{k} {v:.1%}" for k, v in sorted(shares.items(), key=lambda kv: kv[1])
                        if v < 1)  # fmt: skip
        lines.append(f"- **{table}**: {low or 'every column complete'}")
    if report["crd_status"]:
        status = ", ".join(f"{k} {n:,}" for k, n in report["crd_status"].items())
        lines += ["", "## Leads", "", f"FA_CRD__c: {status}.", ""]
        lines += _table(["contact month", "leads"], list(report["leads_per_month"].items()))
    lines += ["", "## Duplicate rule", "", *(f"- {k}: {v}" for k, v in DEDUP_RULES.items())]
    notes = [f"- {f['file']}: extra columns, not loaded: {', '.join(f['extra_columns'])}"
             for f in files if f["extra_columns"]]  # fmt: skip
    notes += [f"- {f['file']}: columns absent (NULL): {', '.join(f['missing_columns'])}"
              for f in files if f["missing_columns"]]  # fmt: skip
    notes += [f"- not read: {name}" for name in report["ignored_files"]]
    notes += [f"- replaced {r['file']}: {r['rows_before']:,} -> {r['rows_after']:,} rows, "
              f"{r['keys_added']:,} keys added, {r['keys_removed']:,} removed, "
              f"{r['keys_changed']:,} changed; old table kept as {r['backup']}"
              for r in report.get("replaced_quarters", [])]  # fmt: skip
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join([*lines, "", f"Ingest took {report['seconds']:.1f} s.", ""])


def _table(header: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) else str(value)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _headline(report: Mapping[str, Any]) -> str:
    files = report["files"]
    kinds = {k: sum(f["kind"] == k for f in files) for k in ("reps", "firms")}
    rest = (
        f"{kinds['reps']} reps and {kinds['firms']} firms vintages; "
        f"{sum(f['n_duplicates'] for f in files):,} duplicate rows resolved; "
        f"{sum(sum(f['cast_failures'].values()) for f in files):,} values failed to cast."
    )
    match = report["crd_match"]
    if not match or match["rate"] is None:
        return rest
    return (
        f"**CRD match rate {match['rate']:.1%}**: {match['n_matched']:,} of "
        f"{match['n_contacted']:,} contacted leads match a RepCRD in the latest reps vintage "
        f"({match['vintage']}). {rest}"
    )
