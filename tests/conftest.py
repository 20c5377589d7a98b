"""Shared fixtures: one small synthetic world, generated and ingested once per test session."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pandas as pd

    from leadscore.bundle import Bundle
    from leadscore.catalog import Catalog

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


@pytest.fixture(scope="session")
def finished_run(small_world: SmallWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`leadscore run` through the CLI, in a copy of the small world's project folder."""
    import shutil

    from typer.testing import CliRunner

    from leadscore.cli import app

    project = tmp_path_factory.mktemp("run") / "project"
    shutil.copytree(small_world.project, project)
    config = project / "leadscore.toml"
    result = CliRunner().invoke(
        app, ["run", "--config", str(config), "--override", "small test world"]
    )
    assert result.exit_code == 0, result.output
    return project


@dataclass(frozen=True)
class TrainedModel:
    """The real objects the explain and score stages take: a bundle trained on the small world,
    the world's training frame and the packaged catalog."""

    bundle: Bundle
    frame: pd.DataFrame
    catalog: Catalog


@pytest.fixture(scope="session")
def trained_model(finished_run: Path) -> TrainedModel:
    """The model the session's pipeline run published, loaded as scoring loads it."""
    from leadscore.bundle import load_bundle
    from leadscore.catalog import load_catalog
    from leadscore.config import load_settings
    from leadscore.pipeline import latest_bundle_path, read_training_frame
    from leadscore.warehouse import open_warehouse

    cfg = load_settings(finished_run / "leadscore.toml")
    wh = open_warehouse(cfg.warehouse)
    try:
        frame = read_training_frame(wh)
    finally:
        wh.close()
    return TrainedModel(load_bundle(latest_bundle_path(cfg)), frame, load_catalog())
