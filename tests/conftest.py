"""Shared fixtures: one small synthetic world, generated and ingested once per test session."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SMALL_SCALE = 0.02
# As the CLI does: OpenMP threads that spin while waiting crawl on a busy machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass(frozen=True)
class SmallWorld:
    """A generated world and a project folder whose warehouse has it ingested."""

    raw: Path
    project: Path
    planted: dict[str, Any]
    manifest: dict[str, Any]


def write_project_config(project: Path, manifest: dict[str, Any], extra: str = "") -> Path:
    """A leadscore.toml for a test project: the world's as_of, a fast training budget."""
    path = project / "leadscore.toml"
    path.write_text(
        "[project]\n"
        f'truth_file = "{manifest["_raw"]}/truth/lead_truth.csv"\n'
        "[dataset]\n"
        f'as_of = "{manifest["as_of"]}"\n'
        "[train]\n"
        "cv_folds = 3\nn_trials = 2\nbootstrap_samples = 50\n" + extra
    )
    return path


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> SmallWorld:
    from leadscore.config import load_settings
    from leadscore.ingest.load import ingest_directory
    from leadscore.synthetic import generate_world
    from leadscore.warehouse import open_warehouse

    root = tmp_path_factory.mktemp("world")
    raw = root / "raw"
    generate_world(raw, scale=SMALL_SCALE, seed=42)
    manifest = json.loads((raw / "manifest.json").read_text())
    manifest["_raw"] = str(raw)
    project = root / "project"
    project.mkdir()
    cfg = load_settings(write_project_config(project, manifest))
    wh = open_warehouse(cfg.warehouse)
    try:
        ingest_directory(wh, raw, cfg)
    finally:
        wh.close()
    planted = json.loads((raw / "truth" / "planted.json").read_text())
    return SmallWorld(raw=raw, project=project, planted=planted, manifest=manifest)
