"""Crash safety of scoring: kill the scorer (SIGKILL) at every step boundary, re-run, check.

The scorer runs in a subprocess on the tiny hand-built world of ``test_score`` with
``LEADSCORE_CRASH_AT`` naming one step; it dies exactly there. The re-run (in this process)
must leave: every lead scored exactly once, every upsert file complete and agreeing with the
scores marked exported to its run, every score's run (and export run) in ``scoring_runs``, a
record JSON per run that agrees with its row, no run's file overwritten, no staging table.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leadscore.bundle import Bundle
from leadscore.catalog import load_catalog
from leadscore.config import Settings
from leadscore.dataset import build_scoring_set
from leadscore.faults import CRASH_ENV
from leadscore.score.batch import score_leads
from leadscore.score.salesforce import validate_upsert_csv
from leadscore.warehouse import tables
from leadscore.warehouse.duckdb import DuckDBWarehouse
from test_score import AS_OF, N_LEADS, _truth, make_bundle, make_world

BATCH = 40  # 94 candidates -> 3 batches
STEPS = [
    "run_reserved",
    *(f"batch_{k}_{step}" for k in range(3) for step in ("staged", "in_transaction", "committed")),
    "export_tmp_written",
    "export_file_written",
    "export_marked",
    "record_written",
    "staging_dropped",
]
DRIVER = """
import sys
from pathlib import Path
from leadscore.catalog import load_catalog
from leadscore.config import Settings
from leadscore.score.batch import score_leads
from leadscore.warehouse.duckdb import DuckDBWarehouse
from test_faults import AS_OF, BATCH, scoring_bundle
base, target, out = (Path(a) for a in sys.argv[1:4])
bundle = scoring_bundle(base, target.parent / "bundle_scratch.duckdb")
wh = DuckDBWarehouse(target)
score_leads(wh, Settings().resolve(target.parent), bundle, AS_OF, load_catalog(),
            out_dir=out, batch_size=BATCH)
wh.close()
"""


def scoring_bundle(base: Path, scratch: Path) -> Bundle:
    """The real bundle trained on the world in ``base`` (deterministic: same every call)."""
    shutil.copyfile(base, scratch)
    wh = DuckDBWarehouse(scratch)
    catalog = load_catalog()
    built = build_scoring_set(wh, Settings().resolve(scratch.parent), catalog, as_of=AS_OF)
    df = wh.query(f"SELECT * FROM {built.table} WHERE pit_status = 'ok'").to_pandas()
    wh.close()
    scratch.unlink()
    y = (_truth(df) + np.random.default_rng(1).logistic(size=len(df)) > 0).astype(int)
    return make_bundle(df, catalog.model_features(), catalog.feature_types(), y, scratch.parent)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Bundle]:
    root = tmp_path_factory.mktemp("faults")
    wh = DuckDBWarehouse(root / "base.duckdb")
    make_world(wh)
    wh.close()
    return root / "base.duckdb", scoring_bundle(root / "base.duckdb", root / "scratch.duckdb")


def _crash(base_path: Path, target: Path, out: Path, step: str) -> None:
    """Run the scorer in a subprocess that SIGKILLs itself at ``step``."""
    tests_dir = Path(__file__).parent
    src = tests_dir.parent / "src"
    env = {**os.environ, CRASH_ENV: step, "OMP_WAIT_POLICY": "PASSIVE"}
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(tests_dir)])
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(base_path), str(target), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == -signal.SIGKILL, (step, done.returncode, done.stderr[-2000:])


def _files(out: Path) -> dict[str, bytes]:
    if not out.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in out.glob("salesforce_upsert_*.csv")}


def _csv_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [row[0] for row in list(csv.reader(fh))[1:]]


def check_nothing_lost(wh: DuckDBWarehouse, out: Path) -> dict[str, int]:
    """The crash-safety invariant; returns per-run export counts."""
    scores = wh.query(
        f"SELECT lead_id, run_id, sf_export_run_id FROM {tables.LEAD_SCORES}"
    ).to_pylist()
    runs = {r["run_id"]: r for r in wh.query(f"SELECT * FROM {tables.SCORING_RUNS}").to_pylist()}
    ids = [s["lead_id"] for s in scores]
    assert len(ids) == N_LEADS and len(set(ids)) == N_LEADS  # every lead scored exactly once
    assert {s["run_id"] for s in scores} <= set(runs)  # every score's run is recorded
    assert {s["sf_export_run_id"] for s in scores} <= set(runs)  # and every export's run
    exported_in_files: list[str] = []
    for run_id, run in runs.items():
        assert run["status"] in ("complete", "interrupted"), run
        mine = {s["lead_id"] for s in scores if s["sf_export_run_id"] == run_id}
        assert run["n_scored"] == sum(s["run_id"] == run_id for s in scores)
        assert run["n_exported"] == len(mine)
        if mine or run["status"] == "complete":
            path = Path(run["salesforce_csv"])
            assert validate_upsert_csv(path) == []  # complete and valid
            assert sorted(_csv_ids(path)) == sorted(mine)  # the file and the marks agree
            exported_in_files += _csv_ids(path)
        record = json.loads(Path(run["record_path"]).read_text())
        assert (record["status"], record["n_scored"], record["n_exported"]) == (
            run["status"], run["n_scored"], run["n_exported"],
        )  # fmt: skip
    assert sorted(exported_in_files) == sorted(ids)  # each score in exactly one file
    assert wh.list_tables("_stage_") == []
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
    return {run_id: run["n_exported"] for run_id, run in runs.items()}


#: One step per phase in the default run; ``-m faults`` kills at every step.
QUICK = ("batch_1_in_transaction", "export_file_written", "export_marked")


@pytest.mark.parametrize(
    "step", [s if s in QUICK else pytest.param(s, marks=pytest.mark.faults) for s in STEPS]
)
def test_kill_at_every_step_then_rerun_loses_nothing(
    base: tuple[Path, Bundle], tmp_path: Path, step: str
) -> None:
    base_path, bundle = base
    target, out = tmp_path / "wh.duckdb", tmp_path / "out"
    shutil.copyfile(base_path, target)
    _crash(base_path, target, out, step)
    before = _files(out)
    wh = DuckDBWarehouse(target)
    try:
        run = score_leads(
            wh, Settings().resolve(tmp_path), bundle, AS_OF, load_catalog(), out_dir=out,
            batch_size=BATCH,
        )  # fmt: skip
        check_nothing_lost(wh, out)
        after = _files(out)
        assert {k: after[k] for k in before} == before  # no run's file was overwritten
        assert run.salesforce_csv.name not in before  # the re-run took a fresh run id
    finally:
        wh.close()


@pytest.mark.faults
@pytest.mark.parametrize(
    ("first", "second"),
    [("export_file_written", "run_reserved"), ("batch_1_committed", "export_marked")],
)
def test_two_crashes_in_a_row_then_rerun_loses_nothing(
    base: tuple[Path, Bundle], tmp_path: Path, first: str, second: str
) -> None:
    base_path, bundle = base
    target, out = tmp_path / "wh.duckdb", tmp_path / "out"
    shutil.copyfile(base_path, target)
    _crash(base_path, target, out, first)
    _crash(base_path, target, out, second)
    wh = DuckDBWarehouse(target)
    try:
        score_leads(
            wh, Settings().resolve(tmp_path), bundle, AS_OF, load_catalog(), out_dir=out,
            batch_size=BATCH,
        )  # fmt: skip
        exported = check_nothing_lost(wh, out)
        assert len(exported) == 3
    finally:
        wh.close()


def test_a_run_leaves_no_staging_table_and_a_complete_record(
    base: tuple[Path, Bundle], tmp_path: Path
) -> None:
    base_path, bundle = base
    shutil.copyfile(base_path, tmp_path / "wh.duckdb")
    out = tmp_path / "out"
    with DuckDBWarehouse(tmp_path / "wh.duckdb") as wh:
        cfg, catalog = Settings().resolve(tmp_path), load_catalog()
        first = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=out, batch_size=BATCH)
        second = score_leads(wh, cfg, bundle, AS_OF, catalog, out_dir=out, batch_size=BATCH)
        assert wh.list_tables("_stage_") == []
        assert check_nothing_lost(wh, out) == {first.run_id: N_LEADS, second.run_id: 0}
