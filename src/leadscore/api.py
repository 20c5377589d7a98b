"""The Python API: one function per stage, typed inputs, typed results, for notebooks and tests.

Reads and writes only what each stage names: ``run_train`` reads the warehouse and writes nothing;
reports and the model bundle are written by the explicit :func:`write_reports` and
:func:`publish`. Reached as ``import leadscore as ls; ls.run_train(...)`` (imported lazily).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from leadscore.config import Settings, load_settings
from leadscore.progress import ProgressFn
from leadscore.warehouse import Warehouse

if TYPE_CHECKING:
    from leadscore.bundle import Bundle
    from leadscore.catalog import Catalog
    from leadscore.dataset import BuildResult
    from leadscore.explain.shap import ExplainResult
    from leadscore.ingest.load import IngestResult
    from leadscore.score.batch import ScoringRun
    from leadscore.synthetic.world import WorldManifest
    from leadscore.train.fit import TrainResult
    from leadscore.validate.run import ValidationResult


def _catalog(catalog: Catalog | None) -> Catalog:
    from leadscore.catalog import load_catalog

    return catalog if catalog is not None else load_catalog()


def world_settings(workdir: Path, world: WorldManifest, seed: int = 42) -> Settings:
    """Write a ``leadscore.toml`` for a synthetic world in ``workdir`` (as ``demo`` does) and
    load it: the folder's own warehouse, the world's ``as_of`` and its truth file."""
    from leadscore.pipeline import write_demo_config

    return load_settings(write_demo_config(Path(workdir), world, seed))


def run_ingest(
    wh: Warehouse, src: Path, cfg: Settings, progress: ProgressFn | None = None
) -> IngestResult:
    """Load a delivery folder into the warehouse (unchanged files are skipped).

    Also writes the data quality report under ``<reports_dir>/ingest``, as the CLI does.
    """
    from leadscore.ingest.load import ingest_directory

    return ingest_directory(wh, Path(src), cfg, progress)


def run_build(
    wh: Warehouse,
    cfg: Settings,
    join: Literal["asof", "quarter"] | None = None,
    catalog: Catalog | None = None,
) -> BuildResult:
    """Build the point-in-time training set in the warehouse (``training_set``)."""
    from leadscore.dataset import build_training_set

    return build_training_set(wh, cfg, _catalog(catalog), join=join)


def run_validate(
    wh: Warehouse,
    cfg: Settings,
    build: BuildResult | None = None,
    catalog: Catalog | None = None,
    raise_on_failure: bool = True,
) -> ValidationResult:
    """Run the data checks and gates on the training set.

    Writes each check's report and the schema contract under ``<reports_dir>/validate``
    (the contract is what :func:`publish` puts in the bundle).

    Raises:
        GateFailed: a gate failed and ``raise_on_failure`` is true.
    """
    from leadscore.validate.run import validate_training_set

    return validate_training_set(
        wh, cfg, _catalog(catalog), build, raise_on_failure=raise_on_failure
    )


def training_frame(wh: Warehouse) -> pd.DataFrame:
    """The training set as pandas, ordered by contact time (UTC-aware timestamps)."""
    from leadscore.pipeline import read_training_frame

    return read_training_frame(wh)


def run_train(
    wh: Warehouse,
    cfg: Settings,
    catalog: Catalog | None = None,
    override_reason: str | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train on the warehouse's training set, with dials and (synthetic worlds) the truth.

    Writes nothing; failing model gates are recorded in the result, not raised (see
    :func:`publish`). The result scores frames directly (``result.score_frame(df)``).
    """
    from leadscore.pipeline import read_dials, read_training_frame, read_truth
    from leadscore.train.fit import train_model

    return train_model(
        read_training_frame(wh),
        _catalog(catalog).feature_types(),
        cfg,
        dials=read_dials(wh, cfg),
        true_probability=read_truth(cfg),
        progress=progress,
        override_reason=override_reason,
    )


def write_reports(result: TrainResult, out_dir: Path | None = None) -> dict[str, Path]:
    """Write the training reports (default ``result.report_dir``); return name -> path."""
    from leadscore.report.training import write_training_reports

    return write_training_reports(result, Path(out_dir or result.report_dir))


def publish(result: TrainResult, cfg: Settings) -> Bundle:
    """Write the reports, enforce the model gates, write the bundle and load it back.

    The bundle carries the catalog and the schema contract ``run_validate`` wrote, and becomes
    the latest model (what ``leadscore score`` uses).

    Raises:
        GateFailed: a gate failed and ``result.override_reason`` is empty.
    """
    from leadscore.bundle import load_bundle, publish_model
    from leadscore.catalog import default_catalog_path
    from leadscore.pipeline import LATEST_MODEL

    contract = cfg.project.reports_dir / "validate" / "schema_contract.json"
    models_dir = cfg.project.models_dir
    path = publish_model(result, models_dir, default_catalog_path(), contract)
    (models_dir / LATEST_MODEL).write_text(result.version + "\n")
    return load_bundle(path)


def run_explain(
    model: Bundle,
    df: pd.DataFrame,
    cfg: Settings,
    catalog: Catalog | None = None,
    reference_csv: Path | None = None,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> ExplainResult:
    """Exact TreeSHAP drivers, comparison with the reference ranking, cohort analysis.

    Writes its tables and figures into ``out_dir`` (default ``<reports_dir>/explain``).
    """
    from leadscore.explain.shap import explain_model
    from leadscore.pipeline import reference_importance

    return explain_model(
        model,
        df,
        _catalog(catalog),
        reference_csv or reference_importance(cfg),
        Path(out_dir or cfg.project.reports_dir / "explain"),
        score_cfg=cfg.score,
        progress=progress,
    )


def run_score(
    wh: Warehouse,
    cfg: Settings,
    model: Bundle,
    as_of: datetime | None = None,
    catalog: Catalog | None = None,
    progress: ProgressFn | None = None,
) -> ScoringRun:
    """Score every lead contacted up to ``as_of`` (default ``[dataset] as_of``) that this
    model has not scored yet; upserts ``lead_scores`` and writes the Salesforce file and run
    record under ``<reports_dir>/score``."""
    from leadscore.score.batch import score_leads

    when = as_of or cfg.dataset.as_of
    if when is None:
        raise ValueError("give as_of or set [dataset] as_of")
    out_dir = cfg.project.reports_dir / "score"
    return score_leads(wh, cfg, model, when, _catalog(catalog), progress, out_dir=out_dir)


def render_report(cfg: Settings) -> Path:
    """Write the one-page HTML report from the stages' results on disk; return its path."""
    from leadscore.report.html import render_report as render

    return render(cfg)
