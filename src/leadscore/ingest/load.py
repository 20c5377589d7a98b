"""Stage ``ingest``: vendor snapshot files and CRM exports -> cast, deduplicated warehouse tables.

Reads ``DIR/vendor/{reps,firms}_YYYY_qN.csv`` and ``DIR/crm/{Lead,Task}.csv`` (``truth/`` and
``manifest.json`` are never read); writes one ``snapshot_{kind}_{yyyy}_q{n}`` table per vintage,
the all-vintage views, ``crm_leads``, ``crm_tasks``, ``ingest_log`` and the quality report.

Each file is all-or-nothing (one transaction) and goes through: 1. check (name, format, header,
required columns; every file before any is loaded); 2. stage the raw strings with
``_source_row`` (1-based data-row order in the file); 3. profile in one SQL pass (rows, keys,
cast failures = raw non-blank but cast NULL, timestamp zones); 4. one SQL statement that casts
(TRY_CAST-like: junk -> NULL), deduplicates and writes the table. A file whose SHA-256 is in
``ingest_log`` is skipped; a changed file replaces its table.

Duplicate rule (one row per key, applied before any join; rows whose key is NULL are all kept):
reps (RepCRD), firms (RIAFirmCRD), tasks (Id): the row with the most non-null fields after
casting, ties -> the earliest ``_source_row``. Leads (Id): the latest ``LastModifiedDate`` (NULL
last), ties -> the earliest ``_source_row``.

Timestamps become TIMESTAMPTZ in UTC. A column holding values without a zone is rejected unless
``crm.timestamp_zone`` / ``vendor.timestamp_zone`` names the zone to assume for them; a column
whose values carry more than one distinct UTC offset is always rejected.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadscore.config import Settings
from leadscore.ingest import guard, merge, quality, schema
from leadscore.ingest.quality import IngestError, lit
from leadscore.ingest.sql import Kind, Source, load_sql, profile_sql, typed_sql, view_sql
from leadscore.io import sha256_file
from leadscore.progress import ProgressFn, no_progress
from leadscore.warehouse import Warehouse, WarehouseError, tables
from leadscore.warehouse.swap import next_table, replacing

__all__ = ["INGEST_LOG", "FileLoad", "IngestError", "IngestResult", "ingest_directory"]

INGEST_LOG: Final = "ingest_log"
STAGE: Final = "_ingest_stage"
TYPED: Final = "_ingest_typed"
Action = Literal["added", "replaced", "merged", "skipped"]

_VENDOR_KINDS: Final = {
    "reps": (schema.REPS_COLUMNS, "RepCRD"),
    "firms": (schema.FIRMS_COLUMNS, "RIAFirmCRD"),
}
_FOLDERS: Final = (schema.VENDOR_DIR, schema.CRM_DIR)
_VENDOR_FILE = re.compile(r"(reps|firms)_(\d{4})_q([1-4])\.csv")
_LOG_DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS {INGEST_LOG} (file VARCHAR, kind VARCHAR, table_name VARCHAR, "
    "sha256 VARCHAR, snapshot_quarter DATE, n_rows BIGINT, n_kept BIGINT, profile VARCHAR, "
    "ingested_at TIMESTAMPTZ)"
)


@dataclass(frozen=True)
class FileLoad:
    """What ingest did with one file (``skipped``: unchanged since it was last ingested)."""

    file: str
    table: str
    action: Action
    n_rows: int
    n_kept: int
    n_duplicates: int
    n_cast_failures: int
    seconds: float


@dataclass(frozen=True)
class IngestResult:
    """The files ingested, the files not read, and where the quality report is."""

    files: tuple[FileLoad, ...]
    ignored: tuple[str, ...]
    report_md: Path
    report_json: Path
    seconds: float
    warnings: tuple[str, ...] = ()
    replacements: tuple[dict[str, Any], ...] = ()

    def _named(self, action: Action) -> tuple[str, ...]:
        return tuple(f.file for f in self.files if f.action == action)

    @property
    def added(self) -> tuple[str, ...]:
        return self._named("added")

    @property
    def replaced(self) -> tuple[str, ...]:
        return self._named("replaced")

    @property
    def skipped(self) -> tuple[str, ...]:
        return self._named("skipped")

    def summary(self) -> str:
        """One line for the CLI."""
        text = f"{len(self.added)} added, {len(self.skipped)} unchanged"
        if self.replaced:
            text += f", {len(self.replaced)} replaced ({', '.join(self.replaced)})"
        if self._named("merged"):
            text += f", {len(self._named('merged'))} merged by Id"
        return f"{text} in {self.seconds:.1f}s; report: {self.report_md}"


def ingest_directory(
    wh: Warehouse,
    src: Path,
    cfg: Settings,
    progress: ProgressFn | None = None,
    *,
    replace_quarters: bool = False,
) -> IngestResult:
    """Ingest a delivery folder; unchanged files are skipped, so re-running only adds.

    A vendor file for a quarter already loaded whose content differs is refused (before
    anything is loaded) unless ``replace_quarters`` (the CLI's ``--replace``); then the old
    table is kept as a dated backup and the result and the quality report say what changed.

    Raises:
        IngestError: a file is unusable; it names the file and the problem. The failed file
            changes nothing; files loaded before it in the same run stay loaded.
    """
    started = time.perf_counter()
    report = progress or no_progress
    # 1. Discover and check every file before loading any.
    sources, ignored = _discover(Path(src), cfg)
    sources = [replace(s, header=quality.check_csv(s.path, s.file, _required(s))) for s in sources]
    # every file's SHA-256, in file order, on a thread: DuckDB casts a file on one core while
    # the next file's hash is read on the other
    hashing = ThreadPoolExecutor(1, thread_name_prefix="sha256")
    try:
        shas = {s.file: hashing.submit(sha256_file, s.path) for s in sources}
        log = _read_log(wh)
        redos = _redeliveries(wh, sources, log, replace_quarters, shas)
        for redo in redos:
            guard.back_up(wh, redo)
        total = sum(s.path.stat().st_size for s in sources) or 1
        done, loads = 0, []
        # 2. Load file by file, each in its own transaction.
        for source in sources:
            report(f"ingest {source.file}", done / total)
            loads.append(_ingest_file(wh, source, cfg, log, shas[source.file].result()))
            done += source.path.stat().st_size
    finally:
        hashing.shutdown(wait=False, cancel_futures=True)
    # 3. Report.
    report("quality report", 0.99)
    seconds = time.perf_counter() - started
    timings = {f.file: {"action": f.action, "seconds": round(f.seconds, 3)} for f in loads}
    keys = {s.file: s.key_col for s in sources}
    changes = tuple(guard.what_changed(wh, r, keys[r.file]) for r in redos)
    final_log = _read_log(wh)
    _refresh_views(wh, final_log)
    md, js = quality.write_quality_report(
        wh, cfg, final_log.values(), timings, ignored, seconds, changes
    )
    loaded = [f.file for f in loads if f.action != "skipped"]
    warnings = tuple(guard.cast_warnings(final_log.values(), loaded))
    report("done", 1.0)
    return IngestResult(tuple(loads), tuple(ignored), md, js, seconds, warnings, changes)


def _redeliveries(
    wh: Warehouse,
    sources: list[Source],
    log: dict[str, Any],
    replace: bool,
    shas: Mapping[str, Future[str]],
) -> list[guard.Redelivery]:
    again = [s for s in sources if s.vintage and s.file in log]
    sha = {s.file: shas[s.file].result() for s in again}
    dated = {s.file: {**log[s.file], "ingested_at": guard.ingested_at(wh, INGEST_LOG, s.file)}
             for s in again}  # fmt: skip
    return guard.redeliveries(again, dated, sha, replace)


def _discover(src: Path, cfg: Settings) -> tuple[list[Source], list[str]]:
    if not src.is_dir():
        raise IngestError(f"{src}: not a folder")
    sources: list[Source] = []
    ignored: list[str] = []
    vendor_zone = _zone(cfg.vendor.timestamp_zone, "vendor.timestamp_zone")
    crm_zone = _zone(cfg.crm.timestamp_zone, "crm.timestamp_zone")
    for path in _files(src / schema.VENDOR_DIR):
        match = _VENDOR_FILE.fullmatch(path.name)
        if match is None:
            raise IngestError(
                f"{schema.VENDOR_DIR}/{path.name}: unknown file in the vendor folder; expected "
                "reps_YYYY_qN.csv or firms_YYYY_qN.csv"
            )
        kind: Kind = "reps" if match.group(1) == "reps" else "firms"
        year, quarter = int(match.group(2)), int(match.group(3))
        columns, key = _VENDOR_KINDS[kind]
        table = tables.snapshot_table("reps" if kind == "reps" else "firms", year, quarter)
        file = f"{schema.VENDOR_DIR}/{path.name}"
        sources.append(Source(path, file, kind, table, columns, key, vendor_zone, "vendor"))
        sources[-1] = replace(sources[-1], vintage=(year, quarter))
    crm_unknown: list[str] = []
    for path in _files(src / schema.CRM_DIR):
        file = f"{schema.CRM_DIR}/{path.name}"
        if path.name not in (schema.LEAD_FILE, schema.TASK_FILE):
            crm_unknown.append(file)
        elif path.name == schema.LEAD_FILE:
            sources.append(Source(path, file, "leads", tables.LEADS, schema.LEAD_COLUMNS,
                                   cfg.crm.lead_id_col, crm_zone, "crm",
                                   latest_col=cfg.crm.modified_ts_col))  # fmt: skip
        else:
            sources.append(Source(path, file, "tasks", tables.TASKS, schema.TASK_COLUMNS,
                                   cfg.crm.lead_id_col, crm_zone, "crm"))  # fmt: skip
    guard.refuse_unrecognised(
        src, guard.unrecognised(src, crm_unknown, _FOLDERS),
        f"{schema.CRM_DIR}/{schema.LEAD_FILE}, {schema.CRM_DIR}/{schema.TASK_FILE} and "
        f"{schema.VENDOR_DIR}/{{reps,firms}}_YYYY_qN.csv",
    )  # fmt: skip
    ignored += sorted(p.name for p in src.iterdir() if p.name in guard.NOT_READ)
    if not sources:
        raise IngestError(f"{src}: no vendor/ or crm/ files to ingest")
    sources.sort(key=lambda s: (s.vintage is None, s.vintage or (0, 0), s.kind))
    return sources, ignored


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _zone(zone: str | None, key: str) -> str | None:
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise IngestError(f"config {key} = {zone!r} is not an IANA time zone") from None
    return zone


def _required(source: Source) -> list[str]:
    optional = schema.OPTIONAL_VENDOR_COLUMNS if source.vintage else frozenset()
    return [c for c in source.columns if c not in optional]


def _ingest_file(
    wh: Warehouse, source: Source, cfg: Settings, log: dict[str, Any], sha: str
) -> FileLoad:
    started = time.perf_counter()
    previous = log.get(source.file)
    if previous and previous["sha256"] == sha and wh.table_exists(source.table):
        return _file_load(previous, "skipped", time.perf_counter() - started)
    stage = stage_csv(wh, source.path, source.header, source.file)
    try:
        _type_stage(wh, source, stage)
        row = wh.query(profile_sql(source, TYPED)).to_pylist()[0]
        profile = quality.check_profile(source.file, row, _checks(source))
        guard.check_cast_failures(
            wh, source, profile, STAGE, TYPED, cfg.ingest.max_cast_failure_rate
        )
        profile["extra_columns"] = [c for c in source.header if c not in source.columns]
        profile["missing_columns"] = [c for c in source.columns if c not in source.header]
        source = replace(source, as_of=profile.get("snapshot_as_of"))
        entry = _log_entry(source, sha, profile)
        merging = merge.merges(source, wh.table_exists(source.table))
        _load(wh, source, cfg, merging)
        wh.execute(_LOG_DDL)
        # DML only inside the transaction (BigQuery allows no DDL there): see warehouse.swap
        with replacing(wh, [] if merging else [source.table]):
            if merging:
                for statement in merge.merge_statements(source):
                    wh.execute(statement)
            wh.execute(f"DELETE FROM {INGEST_LOG} WHERE file = {lit(source.file)}")
            wh.execute(_log_insert(entry))
        if source.vintage:
            _refresh_views(wh, {**log, source.file: entry})
    finally:
        wh.execute(f'DROP TABLE IF EXISTS "{next_table(source.table)}"')
        wh.execute(f'DROP TABLE IF EXISTS "{TYPED}"')
        wh.execute(f'DROP TABLE IF EXISTS "{merge.DELTA}"')
        wh.execute(f'DROP {stage} IF EXISTS "{STAGE}"')
    log[source.file] = entry
    action: Action = "merged" if merging else ("replaced" if previous else "added")
    return _file_load(entry, action, time.perf_counter() - started)


def _load(wh: Warehouse, source: Source, cfg: Settings, merging: bool) -> None:
    """Write the typed rows to the scratch table that replaces the source's table, or to the
    delta that a CRM delivery's merge by Id reads."""
    target = merge.DELTA if merging else next_table(source.table)
    wh.execute(load_sql(replace(source, table=target), TYPED, cfg.vendor.delivery_lag_days))


def _refresh_views(wh: Warehouse, log: Mapping[str, Any]) -> None:
    """Recreate the all-vintage views from the log (heals a crash between a vintage's commit
    and its view, which is created after the commit)."""
    for kind, (columns, _) in _VENDOR_KINDS.items():
        vintages = sorted(e["table_name"] for e in log.values() if e["kind"] == kind)
        view = tables.REPS_ALL_VINTAGES if kind == "reps" else tables.FIRMS_ALL_VINTAGES
        if vintages:
            wh.create_view(view, view_sql(columns, vintages))


def _checks(source: Source) -> dict[str, Any]:
    return {
        "zone": source.zone,
        "zone_key": f"{source.zone_section}.timestamp_zone",
        "quarter_start": source.quarter_start,
        "fail_columns": [c for c in source.columns if c in source.header],
    }


def _log_entry(source: Source, sha: str, profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": source.file,
        "kind": source.kind,
        "table_name": source.table,
        "sha256": sha,
        "snapshot_quarter": source.quarter_start,
        "n_rows": profile["n_rows"],
        "n_kept": profile["n_rows"] - profile["n_duplicates"],
        "profile": json.dumps(profile, sort_keys=True, default=str),
    }


def _file_load(entry: Mapping[str, Any], action: Action, seconds: float) -> FileLoad:
    profile = json.loads(entry["profile"])
    return FileLoad(
        entry["file"], entry["table_name"], action, entry["n_rows"], entry["n_kept"],
        profile["n_duplicates"], sum(profile["cast_failures"].values()), seconds,
    )  # fmt: skip


def _read_log(wh: Warehouse) -> dict[str, Any]:
    if not wh.table_exists(INGEST_LOG):
        return {}
    rows = wh.query(f"SELECT * EXCLUDE (ingested_at) FROM {INGEST_LOG} ORDER BY file")
    return {row["file"]: row for row in rows.to_pylist()}


def _log_insert(entry: Mapping[str, Any]) -> str:
    quarter = entry["snapshot_quarter"]
    values = [
        lit(entry["file"]), lit(entry["kind"]), lit(entry["table_name"]), lit(entry["sha256"]),
        f"CAST({lit(quarter.isoformat())} AS DATE)" if quarter else "CAST(NULL AS DATE)",
        str(int(entry["n_rows"])), str(int(entry["n_kept"])), lit(entry["profile"]),
        "CURRENT_TIMESTAMP",
    ]  # fmt: skip
    return f"INSERT INTO {INGEST_LOG} VALUES ({', '.join(values)})"


# --- staging: the one backend-specific step --------------------------------------------------


StageKind = Literal["TABLE", "VIEW"]


def stage_csv(wh: Warehouse, path: Path, header: tuple[str, ...], file: str) -> StageKind:
    """Expose a CSV's raw strings as the staging relation with a 1-based ``_source_row``.

    DuckDB gets a view over its own ``read_csv`` (every column VARCHAR, no type sniffing), so
    the file is parsed once, by the typed pass, and never copied as strings; other backends
    get pyarrow's all-string parse through ``load_arrow``. Either way the cast SQL that
    follows is the same. Returns what the staging relation is, to drop it afterwards.
    """
    try:
        if wh.dialect == "duckdb":
            return _stage_with_duckdb(wh, path, header)
        return _stage_with_arrow(wh, path, header)
    except (WarehouseError, OSError, ValueError) as exc:
        wh.execute(f'DROP TABLE IF EXISTS "{STAGE}"')
        raise _unreadable(file, exc) from exc


def _unreadable(file: str, exc: Exception) -> IngestError:
    return IngestError(f"{file}: not a readable CSV: {guard.safe_reason(str(exc))}")


def _type_stage(wh: Warehouse, source: Source, stage: StageKind) -> None:
    """Cast the staged strings once into the typed scratch table (TEMP on DuckDB; BigQuery
    cannot qualify a temporary table with the dataset, so there it is a plain table)."""
    try:
        wh.execute(typed_sql(source, STAGE, TYPED, temp=wh.dialect == "duckdb"))
    except WarehouseError as exc:
        if stage == "VIEW":  # the view reads the file only now: a malformed row fails here
            raise _unreadable(source.file, exc) from exc
        raise


def _stage_with_duckdb(wh: Warehouse, path: Path, header: tuple[str, ...]) -> StageKind:
    columns = ", ".join(f"{lit(c)}: 'VARCHAR'" for c in header)
    wh.execute(
        f'CREATE OR REPLACE TEMP VIEW "{STAGE}" AS SELECT row_number() OVER () AS _source_row, '
        f"* FROM read_csv({lit(path.as_posix())}, header = true, all_varchar = true, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"columns = {{{columns}}})"
    )
    return "VIEW"


def _stage_with_arrow(wh: Warehouse, path: Path, header: tuple[str, ...]) -> StageKind:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    data = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=list(header), skip_rows=1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
    )
    rows = pa.array(range(1, data.num_rows + 1), pa.int64())
    wh.load_arrow(STAGE, data.add_column(0, "_source_row", rows))
    return "TABLE"
