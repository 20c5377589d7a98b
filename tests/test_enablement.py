"""Enablement documents for the session's small trained world: out of sample, complete, and
honest about how much evidence each recommendation has."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from browser import chromium as _chromium
from conftest import TrainedModel
from leadscore.cli import app
from leadscore.config import ScoreConfig, load_settings
from leadscore.enablement.cheatsheet import render_cheat_sheet
from leadscore.enablement.evidence import difference_interval, holdout_evidence, wilson
from leadscore.enablement.guide import display_of_plain
from leadscore.enablement.playbook import build_playbook
from leadscore.enablement.runbook import referenced_commands, render_runbook
from leadscore.enablement.settings import EnablementConfig
from leadscore.score.salesforce import LEAD_SCORE_FIELDS

DOCUMENTS = (
    "salesforce_field_mapping.csv", "sga_guide.md", "sga_guide.html", "cheat_sheet.png",
    "cheat_sheet.pdf", "playbook.md", "playbook.json", "ui_spec.md", "ui_mock.html",
    "runbook.md", "enablement.json",
)  # fmt: skip


@pytest.fixture(scope="module")
def enablement_dir(finished_run: Path, trained_model: TrainedModel) -> Path:
    """``leadscore enablement --model V`` through the CLI, on the session's pipeline run."""
    version = trained_model.bundle.version
    config = finished_run / "leadscore.toml"
    result = CliRunner().invoke(app, ["enablement", "--config", str(config), "--model", version])
    assert result.exit_code == 0, result.output
    cfg = load_settings(config)
    return cfg.project.reports_dir / "enablement" / version


def test_every_document_is_written(enablement_dir: Path) -> None:
    for name in DOCUMENTS:
        assert (enablement_dir / name).stat().st_size > 0, name


def test_figures_come_from_the_holdout_only(trained_model: TrainedModel) -> None:
    bundle, frame = trained_model.bundle, trained_model.frame
    evidence = holdout_evidence(
        bundle, list(bundle.folds.holdout_ids), frame, trained_model.catalog
    )
    assert set(evidence.frame["lead_id"]) == set(bundle.folds.holdout_ids)
    assert not set(evidence.frame["lead_id"]) & set(bundle.folds.dev_ids)
    rows = frame[frame["lead_id"].astype(str).isin(bundle.folds.holdout_ids)]
    rows = rows.sort_values(["contact_ts", "lead_id"]).reset_index(drop=True)
    np.testing.assert_array_equal(evidence.frame["probability"], bundle.predict_proba(rows))
    # SHAP folded per feature adds up to the model's margin on every holdout row
    margin = bundle.predict_margin(rows)
    bias = float(np.median(margin - evidence.contributions.sum(axis=1).to_numpy()))
    np.testing.assert_allclose(evidence.contributions.sum(axis=1) + bias, margin, atol=1e-4)
    with pytest.raises(ValueError, match="holdout leads"):
        holdout_evidence(bundle, list(bundle.folds.holdout_ids), frame.iloc[:10],
                         trained_model.catalog)  # fmt: skip


def test_field_mapping_covers_every_model_feature_and_score_field(
    enablement_dir: Path, trained_model: TrainedModel
) -> None:
    mapping = pd.read_csv(enablement_dir / "salesforce_field_mapping.csv")
    fields = set(mapping["salesforce_field"])
    assert {f.salesforce_field for f in LEAD_SCORE_FIELDS} <= fields
    catalog = trained_model.catalog
    assert {catalog.feature(f).sf_field for f in trained_model.bundle.features} <= fields
    assert mapping["salesforce_field"].is_unique
    assert all(re.fullmatch(r"Id|[A-Za-z][A-Za-z0-9_]*__c", f) for f in fields)
    used = mapping[mapping["used_by_model"]]
    assert set(used["source_column"]) == set(trained_model.bundle.features)
    for col in ("salesforce_type", "update_frequency", "visibility"):
        assert mapping[col].notna().all() and (mapping[col].str.len() > 0).all(), col
    assert not set(mapping["source_column"]) & set(catalog.pii_columns())


def test_no_lead_identifier_reaches_a_document(
    enablement_dir: Path, trained_model: TrainedModel
) -> None:
    ids = set(trained_model.bundle.folds.holdout_ids)
    for name in DOCUMENTS:
        if name.endswith((".png", ".pdf")):
            continue
        text = (enablement_dir / name).read_text()
        assert not [i for i in ids if i in text], name


def test_guide_explains_every_model_feature(
    enablement_dir: Path, trained_model: TrainedModel
) -> None:
    guide = (enablement_dir / "sga_guide.md").read_text()
    catalog = trained_model.catalog
    for feature in trained_model.bundle.features:
        label = display_of_plain(catalog.feature(feature))
        assert f". {label}" in guide, feature
    assert guide.count("High-scoring example") == 3 and guide.count("Low-scoring example") == 3
    assert "**Meaning**" in guide and "**Unit**" in guide and "High-value pattern" in guide


def test_cheat_sheet_is_one_readable_page(
    enablement_dir: Path, trained_model: TrainedModel
) -> None:
    from PIL import Image

    with Image.open(enablement_dir / "cheat_sheet.png") as png:
        assert png.size == (1650, 1275)  # US Letter landscape at 150 dpi
    pdf = (enablement_dir / "cheat_sheet.pdf").read_bytes()
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    bundle = trained_model.bundle
    evidence = holdout_evidence(bundle, list(bundle.folds.holdout_ids), trained_model.frame,
                                trained_model.catalog)  # fmt: skip
    from leadscore.enablement.guide import build_guide

    guide = build_guide(evidence, trained_model.catalog, ScoreConfig(), EnablementConfig())
    top = [e for e in guide.features if e.rank <= 30]
    assert [e.tier for e in top] == sorted(e.tier for e in top)
    assert {e.tier for e in top} == ({1, 2, 3} if len(top) > 20 else {e.tier for e in top})
    fig = render_cheat_sheet(guide.features, bundle.version, evidence.n, 30)
    texts = [t for ax in fig.axes for t in ax.texts]
    assert min(t.get_fontsize() for t in texts) >= 7.5  # legible on paper
    shown = " ".join(t.get_text() for t in texts)
    for entry in top:
        assert entry.label[:30] in shown, entry.label


def test_wilson_and_newcombe_match_statsmodels() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

    for k, n in ((0, 40), (3, 40), (17, 403), (40, 40)):
        rate = wilson(k, n)
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert (rate.low, rate.high) == pytest.approx((low, high), abs=1e-9)
    a, b = wilson(30, 200), wilson(12, 300)
    low, high = confint_proportions_2indep(30, 200, 12, 300, method="newcomb", compare="diff")
    assert difference_interval(a, b) == pytest.approx((low, high), abs=1e-9)


@pytest.mark.parametrize(
    "cfg",
    [
        EnablementConfig(),
        EnablementConfig(min_segment_leads=20, min_segment_conversions=2, min_group_leads=5),
    ],
)
def test_playbook_recommends_only_what_the_holdout_supports(
    trained_model: TrainedModel, cfg: EnablementConfig
) -> None:
    bundle = trained_model.bundle
    evidence = holdout_evidence(bundle, list(bundle.folds.holdout_ids), trained_model.frame,
                                trained_model.catalog)  # fmt: skip
    cohorts = build_playbook(evidence, trained_model.catalog, cfg)
    assert {c.segment for c in cohorts} == {"aum_tier", "metro_area", "growth_trajectory"}
    for segment in {c.segment for c in cohorts}:
        assert sum(c.overall.n for c in cohorts if c.segment == segment) == evidence.n
    for cohort in cohorts:
        small = (cohort.overall.n < cfg.min_segment_leads
                 or cohort.overall.conversions < cfg.min_segment_conversions)  # fmt: skip
        if small:
            assert cohort.recommendations() == [] and cohort.why_not
        for rec in cohort.recommendations():
            assert min(rec.favoured.n, rec.others.n) >= cfg.min_group_leads
            assert rec.low > 0 and rec.low <= rec.difference <= rec.high
            assert not math.isnan(rec.favoured.low)


def test_runbook_uses_real_commands_and_marks_missing_ones() -> None:
    import typer

    available = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    text = render_runbook("v1", available, "reports")
    used = referenced_commands(text)
    assert {"daily", "monitor", "refresh", "models", "score", "ingest"} <= used
    for line in text.splitlines():
        uses = re.findall(r"\bleadscore ([a-z][a-z-]*)\b", line)
        n_missing = sum(name not in available for name in uses)
        marks = line.count("not in this build")
        assert marks >= min(1, n_missing), line
        assert marks <= n_missing + ("does not offer" in line), line
    full = render_runbook("v1", available | used, "reports")
    assert "not in this build" not in full


def test_enablement_of_an_unknown_model_is_one_line(finished_run: Path) -> None:
    config = finished_run / "leadscore.toml"
    result = CliRunner().invoke(app, ["enablement", "--config", str(config), "--model", "v0-x"])
    assert result.exit_code == 1
    assert "v0-x" in result.output and "Traceback" not in result.output


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="run scripts/ensure-chromium.sh")
def test_lead_page_mock_renders_with_its_drivers_tooltip(
    enablement_dir: Path, tmp_path: Path
) -> None:
    url = (enablement_dir / "ui_mock.html").as_uri()
    shot = tmp_path / "mock.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,800", url)
    assert shot.stat().st_size > 10_000
    dom = _chromium("--virtual-time-budget=5000", "--window-size=1280,800", "--dump-dom", url)
    drivers = re.search(r'data-drivers="(\d+)"', dom.stdout)
    visible = re.search(r'data-tooltip-visible="(\d)"', dom.stdout)
    assert drivers and visible, "the page's load handler did not run"
    assert 1 <= int(drivers.group(1)) <= 5
    assert visible.group(1) == "1"
    for element in ('id="score"', 'id="bucket"', 'id="tier"', 'id="segment-recommendation"'):
        assert element in dom.stdout


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="run scripts/ensure-chromium.sh")
def test_guide_renders_in_headless_chromium(
    enablement_dir: Path, trained_model: TrainedModel
) -> None:
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom",
                    (enablement_dir / "sga_guide.html").as_uri()).stdout  # fmt: skip
    images = re.search(r'data-images="(\d+)"', dom)
    broken = re.search(r'data-broken-images="(\d+)"', dom)
    features = re.search(r'data-features="(\d+)"', dom)
    assert images and broken and features, "the page's load handler did not run"
    assert int(images.group(1)) == 1 and broken.group(1) == "0"
    assert int(features.group(1)) == len(trained_model.bundle.features)
    for section in ("score", "drivers", "examples", "features"):
        assert f'id="{section}"' in dom
