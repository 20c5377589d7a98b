"""Enablement stage runner: every SGA and operations document for one model version.

Reads a loaded model bundle, the training table (for the model's holdout rows), the catalog and
the score config; writes into ``out_dir`` (``reports/enablement/<version>/``) the field mapping
CSV, the guide (Markdown, HTML), the cheat sheet (PNG, PDF), the playbook (Markdown, JSON), the
UI specification with its HTML mock, the runbook and ``enablement.json``.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.bundle import Bundle
from leadscore.catalog import CALIBRATION_SEGMENT, Catalog
from leadscore.config import ScoreConfig
from leadscore.enablement.cheatsheet import write_cheat_sheet
from leadscore.enablement.evidence import Evidence, holdout_evidence
from leadscore.enablement.guide import Guide, build_guide
from leadscore.enablement.mapping import field_mapping_rows, mapping_frame
from leadscore.enablement.playbook import (
    Cohort,
    build_playbook,
    playbook_records,
    recommendation_text,
    render_playbook,
)
from leadscore.enablement.runbook import render_runbook
from leadscore.enablement.settings import EnablementConfig
from leadscore.enablement.uispec import _env, render_mock, render_ui_spec
from leadscore.io import atomic_path, write_json, write_text


@dataclass(frozen=True)
class EnablementResult:
    """What was written, and the figures behind it."""

    version: str
    n_holdout: int
    n_recommendations: int
    cohorts: list[Cohort]
    guide: Guide
    paths: dict[str, Path]


def write_enablement(
    bundle: Bundle,
    training: pd.DataFrame,
    catalog: Catalog,
    score_cfg: ScoreConfig,
    out_dir: Path,
    available_commands: Collection[str],
    cfg: EnablementConfig | None = None,
) -> EnablementResult:
    """Generate every enablement document for ``bundle`` from its holdout rows only."""
    cfg = cfg or EnablementConfig()
    out_dir = Path(out_dir)
    # 1. the out-of-sample evidence: holdout rows, scored and explained
    evidence = holdout_evidence(
        bundle, list(bundle.folds.holdout_ids), training, catalog,
        bundle.folds.holdout_start.date().isoformat(),
    )  # fmt: skip
    paths: dict[str, Path] = {}
    # 2. field mapping
    ranks = dict(zip(evidence.importance["feature"], evidence.importance["rank"], strict=True))
    rows = field_mapping_rows(catalog, bundle.features, ranks, cfg.top_features)
    paths["field_mapping"] = _csv(mapping_frame(rows), out_dir / "salesforce_field_mapping.csv")
    # 3. guide and cheat sheet
    guide = build_guide(evidence, catalog, score_cfg, cfg)
    png, pdf = write_cheat_sheet(guide.features, bundle.version, evidence.n, cfg.top_features,
                                 out_dir)  # fmt: skip
    paths.update(cheat_sheet_png=png, cheat_sheet_pdf=pdf)
    paths.update(_write_guide(guide, png, out_dir))
    # 4. playbook
    cohorts = build_playbook(evidence, catalog, cfg)
    paths["playbook_md"] = write_text(
        out_dir / "playbook.md", render_playbook(cohorts, evidence, catalog, cfg)
    )
    paths["playbook_json"] = write_json(out_dir / "playbook.json", playbook_records(cohorts, cfg))
    # 5. UI specification and mock; runbook
    paths.update(_write_ui(guide, cohorts, catalog, score_cfg, cfg, out_dir))
    paths["runbook"] = write_text(
        out_dir / "runbook.md",
        render_runbook(bundle.version, available_commands, str(out_dir.parent.parent)),
    )
    n_recs = sum(len(c.recommendations()) for c in cohorts)
    paths["summary"] = write_json(out_dir / "enablement.json", _summary(evidence, n_recs, paths))
    return EnablementResult(bundle.version, evidence.n, n_recs, cohorts, guide, paths)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")
    return path


def _write_guide(guide: Guide, png: Path, out_dir: Path) -> dict[str, Path]:
    env = _env()
    image = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    return {
        "guide_md": write_text(
            out_dir / "sga_guide.md", env.get_template("guide.md.j2").render(g=guide)
        ),
        "guide_html": write_text(
            out_dir / "sga_guide.html",
            env.get_template("guide.html.j2").render(g=guide, cheat_sheet=image),
        ),
    }


def _write_ui(
    guide: Guide,
    cohorts: list[Cohort],
    catalog: Catalog,
    score_cfg: ScoreConfig,
    cfg: EnablementConfig,
    out_dir: Path,
) -> dict[str, Path]:
    """The UI spec lists the AUM-tier recommendations; the mock shows the top holdout lead."""
    segment = catalog.segment(CALIBRATION_SEGMENT)
    by_tier = {c.name: c for c in cohorts if c.segment == CALIBRATION_SEGMENT}
    recs = {
        f"{segment.display} {name}": recommendation_text(c.recommendations()[0], cfg.confidence)
        for name, c in by_tier.items()
        if c.recommendations()
    }
    example = guide.high[0]
    tier = example.segment_values.get(CALIBRATION_SEGMENT, "Unknown")
    cohort = by_tier.get(tier)
    if cohort is not None and cohort.recommendations():
        text = recommendation_text(cohort.recommendations()[0], cfg.confidence)
    else:
        text = f"No recommendation for this segment: {_why(cohort)}."
    label = f"{segment.display} {tier}"
    return {
        "ui_spec": write_text(
            out_dir / "ui_spec.md", render_ui_spec(guide.version, score_cfg, recs)
        ),
        "ui_mock": write_text(
            out_dir / "ui_mock.html",
            render_mock(guide.version, example, _plain(text), label, score_cfg.drivers_positive),
        ),
    }


def _why(cohort: Cohort | None) -> str:
    if cohort is None:
        return "no holdout leads"
    return cohort.why_not or "no difference in this segment is clear of noise"


def _plain(markdown: str) -> str:
    """Markdown emphasis removed, for the mock's plain text."""
    return markdown.replace("**", "").replace("_", "")


def _summary(evidence: Evidence, n_recs: int, paths: dict[str, Path]) -> dict[str, object]:
    return {
        "model_version": evidence.version,
        "source": "model holdout (out of sample): folds.json holdout ids, scored by the bundle",
        "n_holdout": evidence.n,
        "n_holdout_missing": evidence.n_missing,
        "holdout_conversions": evidence.conversions,
        "n_recommendations": n_recs,
        "top_features": evidence.importance.head(10)["feature"].tolist(),
        "paths": {k: str(v) for k, v in paths.items()},
    }
