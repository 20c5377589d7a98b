"""Monitoring stage, stress tests: each on a copy of the project (warehouse, models, reports),
then ``days`` daily runs of the world's future with the monitor on.

- ``volume_2x``: every day's CRM Lead delivery plus the Lead rows of the day ``days`` later
  (distinct leads, times moved to the day): about twice the volume, the same population.
- ``missing_features``: every vendor vintage in the copy has the important columns
  (``DateOfHireAtCurrentFirm``, ``TotalAssetsInMillions``) NULL; expects ``feature_drift``.
- ``class_shift``: two thirds of the leads (a fixed, seeded choice by lead id) never convert:
  their conversions are removed from the copy's CRM table (labels already matured: the run
  starts as if the shift began more than a label window ago) and from every day's Lead
  delivery. The test runs ``days`` plus ``label_window_days`` days (as far as the world's
  future reaches), so the shifted labels of the stress days also mature inside the run.
  Expects ``positive_rate`` or ``performance_drop``.

A test passes when every daily run completes, every reject carries a reason, and the expected
alerts fire (none for ``volume_2x``). Reads the project and the world's ``future/``; writes
the copies under ``workdir`` and ``<reports_dir>/monitor/stress.json``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.config import Settings, load_settings
from leadscore.io import write_json
from leadscore.monitor.scenarios import alert_records
from leadscore.warehouse import Warehouse, open_warehouse, tables

IMPORTANT_COLUMNS = ("DateOfHireAtCurrentFirm", "TotalAssetsInMillions")
EXPECTED: dict[str, tuple[str, ...]] = {
    "volume_2x": (),
    "missing_features": ("feature_drift",),
    "class_shift": ("positive_rate", "performance_drop"),
}


def _double_leads(folder: Path, later: Path, dest: Path) -> Path:
    """The day's delivery plus the Lead rows of a later day (distinct real leads, contacted
    later: their contact time is moved to this day so they are open today)."""
    shutil.copytree(folder, dest)
    lead, extra = dest / "crm" / "Lead.csv", later / "crm" / "Lead.csv"
    if lead.is_file() and extra.is_file():
        df = pd.read_csv(lead, dtype=str, keep_default_na=False)
        more = pd.read_csv(extra, dtype=str, keep_default_na=False)
        more = more[~more["Id"].isin(df["Id"])]
        shift = pd.Timestamp(folder.name, tz="UTC") - pd.Timestamp(later.name, tz="UTC")
        for col in ("CreatedDate", "LastModifiedDate", "Stage_Entered_Contacting__c"):
            t = pd.to_datetime(more[col], utc=True, errors="coerce") + shift
            more[col] = t.dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000").fillna("")
        more["Stage_Entered_Call_Scheduled__c"] = ""
        pd.concat([df, more], ignore_index=True).to_csv(lead, index=False)
    return dest


def _null_important(wh: Warehouse, cfg: Settings) -> None:
    for name in wh.list_tables("snapshot_"):
        cols = wh.query(f'SELECT * FROM "{name}" LIMIT 0').column_names
        for col in IMPORTANT_COLUMNS:
            if col in cols:
                wh.execute(f'UPDATE "{name}" SET "{col}" = NULL')


def never_converts(lead_id: str, seed: int) -> bool:
    """``class_shift``'s choice: two thirds of lead ids, fixed by the seed (the same lead is
    chosen in the warehouse and in every later delivery)."""
    digest = hashlib.sha256(f"{seed}:{lead_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 3 != 0


def _drop_delivered_conversions(folder: Path, dest: Path, seed: int) -> Path:
    """The day's delivery with the chosen leads' conversions blanked."""
    shutil.copytree(folder, dest)
    lead = dest / "crm" / "Lead.csv"
    if lead.is_file():
        df = pd.read_csv(lead, dtype=str, keep_default_na=False)
        chosen = np.array([never_converts(i, seed) for i in df["Id"]], dtype=bool)
        df.loc[chosen, "Stage_Entered_Call_Scheduled__c"] = ""
        df.to_csv(lead, index=False)
    return dest


def _remove_conversions(wh: Warehouse, cfg: Settings) -> None:
    c = cfg.crm
    ids = wh.query(
        f'SELECT "{c.lead_id_col}" AS id FROM "{tables.LEADS}" WHERE "{c.converted_ts_col}" '
        f"IS NOT NULL ORDER BY 1"
    ).to_pandas()["id"]
    seed = cfg.project.global_seed
    drop = [str(i) for i in ids if never_converts(str(i), seed)]
    if drop:
        listed = ", ".join("'" + str(i).replace("'", "''") + "'" for i in drop)
        wh.execute(
            f'UPDATE "{tables.LEADS}" SET "{c.converted_ts_col}" = NULL '
            f'WHERE "{c.lead_id_col}" IN ({listed})'
        )


MODIFY: dict[str, Callable[[Warehouse, Settings], None] | None] = {
    "volume_2x": None,
    "missing_features": _null_important,
    "class_shift": _remove_conversions,
}


def run_stress_test(
    name: str, project: Path, raw: Path, days: int, workdir: Path
) -> dict[str, Any]:
    """One stress test on a copy of ``project`` (its folder holds ``leadscore.toml``)."""
    from leadscore.daily.commands import stage_daily
    from leadscore.daily.simulate import day_folders

    copy = workdir / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project, copy, ignore=copy_ignore(project, workdir))
    cfg = load_settings(copy / "leadscore.toml")
    modify = MODIFY[name]
    if modify is not None:
        wh = open_warehouse(cfg.warehouse)
        try:
            modify(wh, cfg)
        finally:
            wh.close()
    runs, error = [], None
    horizon = _horizon(name, cfg, raw, days)
    try:
        folders = day_folders(raw, 2 * days if name == "volume_2x" else horizon)
        for k, (folder, as_of) in enumerate(folders[:horizon]):
            delivery = folder
            if name == "volume_2x":
                later = folders[k + days][0]
                delivery = _double_leads(folder, later, copy / "deliveries" / folder.name)
            elif name == "class_shift":
                delivery = _drop_delivered_conversions(
                    folder, copy / "deliveries" / folder.name, cfg.project.global_seed
                )
            runs.append(stage_daily(cfg, as_of, raw=delivery).summary_record())
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _verdict(name, cfg, runs, error)


def copy_ignore(project: Path, workdir: Path) -> Callable[[str, list[str]], set[str]]:
    """What a project copy leaves out: the world (``raw``) and the stress folder itself when it
    lies inside the project (the default), else each copy would contain the earlier copies,
    itself included, without end."""
    work = workdir.resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).resolve()
        skip = {n for n in names if (here / n).resolve() == work}
        return skip | ({"raw"} if here == project.resolve() else set())

    return ignore


def _horizon(name: str, cfg: Settings, raw: Path, days: int) -> int:
    """Days a test runs: ``days``; ``class_shift`` adds the label window (labels must mature),
    as far as the world's future reaches."""
    if name != "class_shift":
        return days
    have = int(json.loads((raw / "manifest.json").read_text()).get("future_days", 0))
    return max(days, min(days + cfg.dataset.label_window_days, have))


def _verdict(
    name: str, cfg: Settings, runs: list[dict[str, Any]], error: str | None
) -> dict[str, Any]:
    wh = open_warehouse(cfg.warehouse)
    try:
        blank = wh.query(
            f'SELECT count(*) AS n FROM "{tables.SCORE_REJECTS}" '
            "WHERE reason IS NULL OR trim(reason) = ''"
        ).to_pylist()[0]["n"]
    finally:
        wh.close()
    since = min((r["date"] for r in runs), default="9999")
    alerts = [a for a in alert_records(cfg) if a["level"] == "alert" and a["date"] >= since]
    rules = sorted({a["rule"] for a in alerts})
    expected = EXPECTED[name]
    fired = (not expected and not alerts) or any(r in rules for r in expected)
    return {
        "test": name, "days": len(runs), "completed": error is None, "error": error,
        "rejects_without_reason": int(blank), "alerts": alerts, "expected_rules": list(expected),
        "expected_alerts_fired": bool(fired),
        "passed": error is None and blank == 0 and bool(fired),
        "min_success_rate": min((r["success_rate"] for r in runs
                                 if r["success_rate"] is not None), default=None),
        "max_considered": max((r["n_considered"] for r in runs), default=0),
    }  # fmt: skip


def run_stress(cfg: Settings, raw: Path, days: int = 7, workdir: Path | None = None,
               only: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """Every stress test (or ``only`` these); writes ``<reports_dir>/monitor/stress.json``."""
    project = cfg.project.data_dir.parent
    workdir = workdir or project / "stress"
    names = only or tuple(MODIFY)
    results = [run_stress_test(n, project, raw, days, workdir) for n in names]
    out = {"days": days, "tests": results, "passed": all(r["passed"] for r in results)}
    write_json(cfg.project.reports_dir / "monitor" / "stress.json", out)
    return out
