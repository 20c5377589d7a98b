"""Ingest guards: what a delivery may not do silently.

Reads the delivery folder listing, the staged and typed scratch tables of one file, and
``ingest_log``; writes the dated backup of a replaced vendor table. Each guard either returns
(with a warning line for the console) or raises :class:`IngestError` with one line that names
the file and the problem and never echoes a raw input line (values only, at most three).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from leadscore.ingest.quality import IngestError, lit, q
from leadscore.ingest.sql import Source
from leadscore.warehouse import Warehouse

#: Top-level entries of a delivery folder that ingest knows and does not read.
NOT_READ: Final = frozenset({"truth", "future", "manifest.json"})
#: Confidence of the cast-failure test: fail only when the rate is above the limit at 95%.
CAST_CONFIDENCE: Final = 0.95
_LINEAGE: Final = ("_source_file", "_source_row")


# --- files no rule recognises --------------------------------------------------------------


def unrecognised(src: Path, crm_unknown: Iterable[str], folders: Iterable[str]) -> list[str]:
    """Entries of the delivery that no rule reads (the CRM folder's unknown files and
    top-level entries other than the folders and :data:`NOT_READ`), sorted."""
    known = set(folders) | NOT_READ
    top = [p.name for p in src.iterdir() if p.name not in known and not p.name.startswith(".")]
    return sorted([*crm_unknown, *top])


def refuse_unrecognised(src: Path, names: Sequence[str], expected: str) -> None:
    """Raise when ``names`` is not empty: a misnamed file would otherwise be skipped."""
    if names:
        raise IngestError(
            f"{src}: {len(names)} file(s) no rule recognises: {', '.join(names)}; expected "
            f"{expected} (names are case-sensitive)"
        )


# --- cast failures --------------------------------------------------------------------------


def rate_lower_bound(n_failed: int, n_rows: int) -> float:
    """One-sided lower confidence bound (exact, Clopper-Pearson) of a failure rate."""
    if n_failed <= 0 or n_rows <= 0:
        return 0.0
    from scipy.stats import beta  # imported on use: most deliveries have no cast failure

    return float(beta.ppf(1 - CAST_CONFIDENCE, n_failed, n_rows - n_failed + 1))


def check_cast_failures(
    wh: Warehouse, source: Source, profile: Mapping[str, Any], stage: str, typed: str,
    max_rate: float,
) -> None:  # fmt: skip
    """Fail when a column's cast-failure rate is above ``max_rate`` (at 95% confidence, so one
    junk cell in a 77-row file is not a verdict), naming three example values.

    Raises:
        IngestError: file, column, count, rate, limit and up to three failed values.
    """
    n_rows = int(profile["n_rows"])
    for col, n_failed in sorted(profile["cast_failures"].items()):
        # The bound never exceeds the observed rate, so a rate within the limit needs no bound
        # (and no SciPy import).
        if n_rows <= 0 or int(n_failed) / n_rows <= max_rate:
            continue
        if rate_lower_bound(int(n_failed), n_rows) <= max_rate:
            continue
        examples = _failed_values(wh, source, col, stage, typed)
        raise IngestError(
            f"{source.file}: column {col}: {n_failed:,} of {n_rows:,} values "
            f"({n_failed / n_rows:.2%}) are not a valid {source.columns[col]}, above the "
            f"{max_rate:.2%} allowed (ingest.max_cast_failure_rate); e.g. "
            f"{', '.join(repr(v) for v in examples)}"
        )


def _failed_values(wh: Warehouse, source: Source, col: str, stage: str, typed: str) -> list[str]:
    flag = f"_fail_{source.present.index(col)}"
    rows = wh.query(
        f"SELECT trim(s.{q(col)}) AS v FROM {q(stage)} AS s JOIN {q(typed)} AS t "
        f"USING (_source_row) WHERE t.{flag} GROUP BY 1 ORDER BY min(_source_row) LIMIT 3"
    ).to_pylist()
    return [str(r["v"])[:40] for r in rows]


def cast_warnings(entries: Iterable[Mapping[str, Any]], files: Iterable[str]) -> list[str]:
    """One console line per file loaded now whose values failed to cast (below the limit)."""
    import json

    wanted = set(files)
    lines = []
    for entry in entries:
        if entry["file"] not in wanted:
            continue
        failures = json.loads(entry["profile"])["cast_failures"]
        if failures:
            cols = ", ".join(f"{c} {n:,}" for c, n in sorted(failures.items()))
            lines.append(
                f"{entry['file']}: {sum(failures.values()):,} value(s) failed to cast and are "
                f"NULL ({cols}); see the quality report"
            )
    return lines


# --- messages without raw lines ---------------------------------------------------------------

_DUCK_LINE = re.compile(r"CSV Error on Line: (\d+)")
_ARROW_GOT = re.compile(r"(Expected \d+ columns, got \d+):.*")


def safe_reason(message: str) -> str:
    """What went wrong reading a CSV, without the input line the reader quotes."""
    lines = message.split("\n-- in statement")[0].strip().splitlines()
    original = next((x[len("Original Line:") :] for x in lines if x.startswith("Original Line:")),
                    "")  # fmt: skip
    fields = [f.strip(' "') for f in re.split(r"[,;\t|]", original) if len(f.strip(' "')) >= 3]
    kept = []
    for line in lines:
        if line.startswith(("Possible", "*", "  ")) or not line.strip():
            break
        if line.startswith("Original Line:") or any(f in line for f in fields):
            continue
        line = _ARROW_GOT.sub(r"\1", line)
        found = _DUCK_LINE.search(line)
        kept.append(f"error on line {found.group(1)}" if found else line.strip())
    return "; ".join(kept[:3]) or "unreadable"


# --- re-delivery of a loaded vendor quarter ---------------------------------------------------


@dataclass(frozen=True)
class Redelivery:
    """A vendor file for a quarter already loaded, with different content."""

    file: str
    table: str
    backup: str
    old_sha256: str
    old_rows: int


def redeliveries(
    sources: Iterable[Source], log: Mapping[str, Any], sha: Mapping[str, str], replace: bool
) -> list[Redelivery]:
    """The vendor files that would replace a loaded quarter with different content.

    Raises:
        IngestError: there is one and ``replace`` is False (nothing has been loaded yet).
    """
    found = []
    for source in sources:
        previous = log.get(source.file)
        if source.vintage is None or previous is None or previous["sha256"] == sha[source.file]:
            continue
        stamp = f"{previous['ingested_at']:%Y%m%d}" if previous.get("ingested_at") else "undated"
        backup = f"{source.table}_backup_{stamp}_{previous['sha256'][:8]}"
        found.append(Redelivery(source.file, source.table, backup, previous["sha256"],
                                int(previous["n_kept"])))  # fmt: skip
    if found and not replace:
        named = ", ".join(f"{r.file} ({r.old_rows:,} rows loaded)" for r in found)
        raise IngestError(
            f"{len(found)} vendor file(s) differ from the quarter already loaded: {named}; "
            "nothing was loaded. Re-run with --replace to load them (the old tables are kept "
            "as dated backups)"
        )
    return found


def back_up(wh: Warehouse, redelivery: Redelivery) -> None:
    """Copy the loaded table to its dated backup before the new file replaces it."""
    wh.execute(
        f"CREATE OR REPLACE TABLE {q(redelivery.backup)} AS SELECT * FROM {q(redelivery.table)}"
    )


def what_changed(wh: Warehouse, redelivery: Redelivery, key: str) -> dict[str, Any]:
    """Rows before and after, keys added, removed and changed (any value) by the new file."""
    old, new, k = q(redelivery.backup), q(redelivery.table), q(key)
    cols = [c for c in wh.query(f"SELECT * FROM {new} LIMIT 0").column_names
            if c not in _LINEAGE]  # fmt: skip
    select = ", ".join(q(c) for c in cols)
    row = wh.query(
        f"SELECT (SELECT count(*) FROM {old}) AS rows_before, "
        f"(SELECT count(*) FROM {new}) AS rows_after, "
        f"(SELECT count(DISTINCT {k}) FROM {new} WHERE {k} NOT IN "
        f"(SELECT {k} FROM {old} WHERE {k} IS NOT NULL)) AS keys_added, "
        f"(SELECT count(DISTINCT {k}) FROM {old} WHERE {k} NOT IN "
        f"(SELECT {k} FROM {new} WHERE {k} IS NOT NULL)) AS keys_removed, "
        f"(SELECT count(DISTINCT {k}) FROM (SELECT {select} FROM {new} EXCEPT "
        f"SELECT {select} FROM {old}) AS d WHERE {k} IN (SELECT {k} FROM {old})) AS keys_changed"
    ).to_pylist()[0]
    return {"file": redelivery.file, "table": redelivery.table, "backup": redelivery.backup,
            "old_sha256": redelivery.old_sha256, **row}  # fmt: skip


def ingested_at(wh: Warehouse, log_table: str, file: str) -> datetime | None:
    """When ``file`` was last ingested (names the backup's date)."""
    rows = wh.query(
        f"SELECT max(ingested_at) AS t FROM {q(log_table)} WHERE file = {lit(file)}"
    ).to_pylist()
    return rows[0]["t"] if rows else None
