"""Ingest against DuckDB's own typed load of the same files, in one process.

``ingest_directory`` (check, stage, profile, cast, deduplicate, load, log, quality report) on a
delivery folder into a fresh DuckDB file, then DuckDB alone on the same CSVs: one
``CREATE TABLE AS SELECT * FROM read_csv(...)`` per file (its own type sniffing), into another
fresh file with the same threads and memory limit. Wall and CPU seconds (every thread of this
process); the files are read once beforehand so both runs find them in the page cache.
Target: ingest <= 2x DuckDB's typed load.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from leadscore.config import Settings
from leadscore.ingest.load import ingest_directory
from leadscore.io import sha256_file
from leadscore.warehouse import open_warehouse

TARGET_RATIO = 2.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _csv_files(folder: Path) -> list[Path]:
    """The CSVs ingest reads: ``vendor/`` and ``crm/`` (not ``truth/``, not ``future/``)."""
    return sorted([*folder.glob("vendor/*.csv"), *folder.glob("crm/*.csv")])


def _ingest_once(folder: Path, cfg: Settings, scratch: Path) -> tuple[float, float]:
    db = scratch / "ingest.duckdb"
    wh_cfg = cfg.warehouse.model_copy(update={"path": db})
    wh = open_warehouse(wh_cfg)
    project = cfg.project.model_copy(update={"reports_dir": scratch / "reports"})
    run_cfg = cfg.model_copy(update={"warehouse": wh_cfg, "project": project})
    try:
        cpu, start = _cpu(), time.perf_counter()
        ingest_directory(wh, folder, run_cfg)
        return time.perf_counter() - start, _cpu() - cpu
    finally:
        wh.close()


def _duckdb_once(files: list[Path], cfg: Settings, scratch: Path) -> tuple[float, float]:
    import duckdb

    con = duckdb.connect(str(scratch / "typed.duckdb"))
    try:
        con.execute(f"SET threads = {cfg.warehouse.threads}")
        con.execute(f"SET memory_limit = '{cfg.warehouse.memory_limit}'")
        cpu, start = _cpu(), time.perf_counter()
        for k, path in enumerate(files):
            literal = "'" + path.as_posix().replace("'", "''") + "'"
            con.execute(f"CREATE TABLE t{k} AS SELECT * FROM read_csv({literal})")
        con.execute("CHECKPOINT")
        return time.perf_counter() - start, _cpu() - cpu
    finally:
        con.close()


def measure_ingest(folder: Path, cfg: Settings, repeats: int = 1) -> dict[str, Any]:
    """Best of ``repeats`` of ingest and of DuckDB's typed load on ``folder``'s CSV files."""
    files = _csv_files(folder)
    for path in files:  # warm the page cache for both
        sha256_file(path)
    best: dict[str, tuple[float, float]] = {}
    for _ in range(max(1, repeats)):
        for name, run in (("duckdb", _duckdb_once), ("ingest", _ingest_once)):
            scratch = Path(tempfile.mkdtemp(prefix=f"bench_{name}_", dir=folder.parent))
            try:
                arg: Any = files if name == "duckdb" else folder
                wall, cpu = run(arg, cfg, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            if name not in best or cpu < best[name][1]:
                best[name] = (wall, cpu)
    # the ratios are of the figures as recorded (rounded to milliseconds)
    (i_wall, i_cpu), (d_wall, d_cpu) = (
        tuple(round(x, 3) for x in best[name]) for name in ("ingest", "duckdb")
    )
    return {
        "folder": str(folder),
        "n_files": len(files),
        "repeats": max(1, repeats),
        "bytes": sum(p.stat().st_size for p in files),
        "ingest_s": round(i_wall, 3),
        "ingest_cpu_s": round(i_cpu, 3),
        "duckdb_typed_load_s": round(d_wall, 3),
        "duckdb_typed_load_cpu_s": round(d_cpu, 3),
        "ratio_wall": round(i_wall / d_wall, 3) if d_wall else None,
        "ratio_cpu": round(i_cpu / d_cpu, 3) if d_cpu else None,
        "target": f"<= {TARGET_RATIO}",
    }


def vintage_delivery(raw: Path) -> Path | None:
    """The first future day's delivery folder that brings a vendor vintage, if any."""
    future = raw / "future"
    if not future.is_dir():
        return None
    for day in sorted(p for p in future.iterdir() if p.is_dir()):
        if any((day / "vendor").glob("*.csv")):
            return day
    return None
