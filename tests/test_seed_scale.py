"""Seed-scale checks (marker ``seed``): the synthetic world has its documented figures and the
build removes exactly what the generator planted. About 3 minutes; run with ``pytest -m seed``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadscore.catalog import load_catalog
from leadscore.config import parse_settings
from leadscore.dataset import build_training_set
from leadscore.ingest.load import ingest_directory
from leadscore.synthetic import generate_world
from leadscore.warehouse import open_warehouse

pytestmark = pytest.mark.seed


@pytest.fixture(scope="module")
def seed_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, object]:
    root = tmp_path_factory.mktemp("seed")
    manifest = generate_world(root / "raw", scale=1.0, seed=42)
    cfg = parse_settings({"dataset": {"as_of": str(manifest.as_of)}}).resolve(root)
    wh = open_warehouse(cfg.warehouse)
    try:
        ingest_directory(wh, root / "raw", cfg)
        build = build_training_set(wh, cfg, load_catalog())
    finally:
        wh.close()
    planted = json.loads((root / "raw" / "truth" / "planted.json").read_text())
    return root, planted, build


def test_world_has_the_design_figures(seed_world: tuple[Path, dict, object]) -> None:
    _, planted, _ = seed_world
    vintages = planted["vintages"]
    assert len(vintages) == 8
    for v in vintages.values():
        assert 470_000 <= v["reps"]["rows"] <= 490_000
        assert 455_000 <= v["reps"]["unique_keys"] <= 470_000
        assert 14_000 <= v["reps"]["duplicate_rows"] <= 16_000
        assert v["firms"]["rows"] == pytest.approx(38_500, rel=0.01)
    assert planted["n_leads"] == pytest.approx(79_000, rel=0.01)
    assert planted["n_crd_valid"] / planted["n_leads"] == pytest.approx(0.95, abs=0.01)
    assert 0.03 <= planted["n_converted_30d_eligible"] / planted["n_eligible"] <= 0.05
    late_share = planted["n_converted_late"] / (
        planted["n_converted_late"] + planted["n_converted_30d"]
    )
    assert 0.05 <= late_share <= 0.15
    assert 200 <= planted["n_negative_days"] <= 500


def test_build_removes_exactly_what_was_planted(seed_world: tuple[Path, dict, object]) -> None:
    _, planted, build = seed_world
    labels = planted["planted_label_counts"]
    assert build.excluded == {  # type: ignore[attr-defined]
        "crd_missing": labels["crd_missing"],
        "crd_malformed": labels["crd_malformed"],
        "crd_not_found": labels["crd_unknown"],
        "no_snapshot_yet": labels["no_snapshot"],
    }
    assert build.n_negative_days == labels["negative_days"]  # type: ignore[attr-defined]
    assert build.n_censored == planted["n_right_censored"]  # type: ignore[attr-defined]
    assert build.n_rows == planted["n_eligible"]  # type: ignore[attr-defined]
    assert build.n_positives == planted["n_converted_30d_eligible"]  # type: ignore[attr-defined]
