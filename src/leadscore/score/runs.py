"""Score stage, crash safety: reserve a run id, finish a run's export, repair crashed runs.

Reads and writes ``scoring_runs`` and ``lead_scores.sf_export_run_id``; writes the Salesforce
upsert CSV and the run record JSON. The invariant, whatever instruction a run dies at: a run's
rows, its ``scoring_runs`` row, its upsert file and its record JSON exist and agree, or the next
run repairs them before it starts. In order:

1. ``reserve_run`` commits a ``started`` row first, so every score points to a known run and
   no later run can take its id (ids are also checked against files already on disk).
2. Batches commit scores and rejects (``score.batch``).
3. ``finish_run`` writes the upsert file (temporary name, fsync, rename: a file under its final
   name is complete), then in one transaction marks exactly its Ids exported and writes the
   ``complete`` run row, then writes the record JSON.
4. ``repair_runs`` (start of every run) closes each ``started`` run: a complete upsert file it
   left is adopted (its Ids marked exported to it), its counts are taken from the rows it
   wrote, and it becomes ``interrupted``; a missing record JSON is rewritten from the row.
   Scores it did not export are exported by the new run's file.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.faults import crash_point
from leadscore.io import write_json
from leadscore.score.salesforce import render_upsert_csv
from leadscore.score.tables import (
    RUN_COMPLETE,
    RUN_STARTED,
    close_interrupted,
    commit_export,
    drop_staging,
    record_run,
    run_ids,
    runs_with_status,
    stage_export,
    stage_run,
)
from leadscore.warehouse import Warehouse

__all__ = ["csv_path", "finish_run", "record_path", "repair_runs", "reserve_run"]

_TEMP_PREFIXES = (".salesforce_upsert_", ".scoring_run_")


def csv_path(out_dir: Path, run_id: str) -> Path:
    """The upsert file of ``run_id``."""
    return out_dir / f"salesforce_upsert_{run_id}.csv"


def record_path(out_dir: Path, run_id: str) -> Path:
    """The run record JSON of ``run_id``."""
    return out_dir / f"scoring_run_{run_id}.json"


def reserve_run(
    wh: Warehouse, version: str, as_of: datetime, scored_at: datetime, out_dir: Path
) -> str:
    """Commit a ``started`` row for a new run and return its id.

    The id is ``<version>-<as_of>``, with ``-2``, ``-3`` ... when that id is in
    ``scoring_runs`` or has a file on disk: no run ever overwrites another's file.
    """
    base = f"{version}-{as_of:%Y%m%dT%H%M%SZ}"
    taken = run_ids(wh, base)
    run_id, n = base, 1
    while run_id in taken or _on_disk(out_dir, run_id):
        n += 1
        run_id = f"{base}-{n}"
    record_run(
        wh,
        {
            "run_id": run_id,
            "model_version": version,
            "as_of": as_of,
            "scored_at": scored_at,
            "record_path": str(record_path(out_dir, run_id)),
            "salesforce_csv": str(csv_path(out_dir, run_id)),
            "status": RUN_STARTED,
        },
    )
    crash_point("run_reserved")
    return run_id


def _on_disk(out_dir: Path, run_id: str) -> bool:
    return csv_path(out_dir, run_id).exists() or record_path(out_dir, run_id).exists()


def finish_run(
    wh: Warehouse,
    run: dict[str, Any],
    pending: pd.DataFrame,
    provenance: dict[str, Any],
) -> None:
    """Write the upsert file of ``pending``, mark its rows exported with the run's row in one
    transaction, then write the run record JSON.

    ``run`` is the run's record (``ScoringRun.to_dict()``); its ``n_exported`` is
    ``len(pending)``.
    """
    version, run_id = str(run["model_version"]), str(run["run_id"])
    write_durably(Path(run["salesforce_csv"]), render_upsert_csv(pending), "export")
    crash_point("export_file_written")
    stage_export(wh, pending["lead_id"].astype(str).tolist())
    stage_run(wh, {**run, "status": RUN_COMPLETE})
    commit_export(wh, version, run_id)
    crash_point("export_marked")
    write_json(Path(run["record_path"]), {**run, "status": RUN_COMPLETE, "provenance": provenance})
    crash_point("record_written")


def write_durably(path: Path, text: str, step: str) -> Path:
    """Write ``text`` under a temporary name, fsync it, then rename it onto ``path`` (and fsync
    the folder): a file under its final name is always complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    crash_point(f"{step}_tmp_written")
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


def repair_runs(wh: Warehouse, out_dir: Path, provenance: dict[str, Any]) -> list[str]:
    """Close the runs a crash left ``started`` and rewrite missing run records.

    Call before reserving a new run, with the warehouse held by this process only. Returns
    the ids of the runs it closed.
    """
    drop_staging(wh)
    if out_dir.is_dir():
        for stale in out_dir.iterdir():
            if stale.name.startswith(_TEMP_PREFIXES):
                stale.unlink(missing_ok=True)
    closed = []
    for run in runs_with_status(wh, RUN_STARTED):
        run_id = str(run["run_id"])
        path = Path(run["salesforce_csv"]) if run["salesforce_csv"] else None
        kept = path is not None and path.is_file()
        if kept and path is not None:
            stage_export(wh, _csv_ids(path))
        close_interrupted(wh, str(run["model_version"]), run_id, kept)
        drop_staging(wh)
        closed.append(run_id)
    for row in runs_with_status(wh):
        target = Path(row["record_path"]) if row["record_path"] else None
        if target is not None and (row["run_id"] in closed or not target.exists()):
            write_json(target, {**_jsonable(row), "recovered": True, "provenance": provenance})
    return closed


def _csv_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        return [row[0] for row in reader if row]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("rejected_by_reason", "feature_availability") and isinstance(value, str):
            out[key] = json.loads(value)
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out
