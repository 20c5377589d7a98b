"""Model registry: content-addressed versions, champion/challenger, promote, rollback, refresh.

A copy of the small world's project is trained "in the past" (``as_of`` 2025-06-01), then
refreshed after the 2025-07-01 vintage was delivered (2025-08-08), so the simulated run crosses a
quarter boundary: score with the first champion, refresh, shadow, promote, score, roll back,
score, and every score row names the model that produced it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import SmallWorld
from leadscore.bundle import MANIFEST, write_bundle
from leadscore.catalog import default_catalog_path, load_catalog
from leadscore.cli import app
from leadscore.config import RegistryConfig, Settings, load_settings
from leadscore.io import sha256_file, write_json
from leadscore.pipeline import (
    latest_bundle_path,
    read_training_frame,
    stage_build,
    stage_score,
    stage_train,
)
from leadscore.registry import (
    PromotionRefused,
    RegistryError,
    TamperedBundle,
    champion,
    get_model,
    history,
    load_verified,
    promote,
    refresh_due,
    register,
    rollback,
    set_status,
    shadow_models,
)
from leadscore.registry.compare import paired_bootstrap, shared_leads, verdict_reasons
from leadscore.registry.identity import model_config_hash, version_id
from leadscore.registry.runner import challenge, opened, register_trained, stage_refresh
from leadscore.registry.store import registry_ddl
from leadscore.train.fit import train_model
from leadscore.warehouse import tables, transpile
from leadscore.warehouse.duckdb import DuckDBWarehouse

OVERRIDE = "small test world: the logistic baseline can win on a few dozen MQLs"
FIRST_AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
REFRESH_AS_OF = datetime(2025, 8, 20, tzinfo=UTC)  # the 2025-07-01 vintage arrived 2025-08-08


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _config(project: Path, world: SmallWorld) -> Path:
    """Permissive thresholds (except the fixed beats-baseline gate): tiny data, real code."""
    path = project / "leadscore.toml"
    path.write_text(
        "[project]\n"
        f'truth_file = "{world.manifest["_raw"]}/truth/lead_truth.csv"\n'
        "[dataset]\n"
        f'as_of = "{FIRST_AS_OF.isoformat()}"\n'
        "[train]\ncv_folds = 3\nn_trials = 2\nbootstrap_samples = 50\n"
        "[gates]\nmin_aucpr = 0.0\nship_threshold_aucpr = 0.0\n"
        "ship_threshold_precision_at_10pct = 0.0\nmax_ece = 1.0\nmax_train_test_gap = 100.0\n"
        "max_cv_cov = 100.0\nmax_ks = 1.0\n"
        "[registry]\nbootstrap_samples = 200\nshadow_days = 7\n"
    )
    return path


@dataclass(frozen=True)
class Lifecycle:
    """The project after: build + train (v1, champion), score, refresh (v2, shadow)."""

    cfg: Settings
    twin: Path  # a copy of the project taken after the build, before any training
    v1: str
    v2: str


@pytest.fixture(scope="module")
def life(small_world: SmallWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lifecycle]:
    # git can time out on a busy machine; one code version for the whole module
    patch = pytest.MonkeyPatch()
    patch.setattr("leadscore.io.code_version", lambda: "test")
    root = tmp_path_factory.mktemp("registry")
    project = root / "project"
    shutil.copytree(small_world.project, project)
    cfg = load_settings(_config(project, small_world))
    stage_build(cfg)
    twin = root / "elsewhere" / "twin"
    shutil.copytree(project, twin)
    v1 = stage_train(cfg, OVERRIDE).name
    stage_score(cfg, FIRST_AS_OF)
    v2 = stage_refresh(cfg, REFRESH_AS_OF, override_reason=OVERRIDE).challenger
    yield Lifecycle(cfg, twin, v1, v2)
    patch.undo()


# --------------------------------------------------------------------------- identity
def test_version_id_is_content_addressed() -> None:
    a = Settings().resolve(Path("/one/place"))
    b = Settings().resolve(Path("/somewhere/else"))
    assert a.config_hash() != b.config_hash()  # the full settings carry the paths...
    assert model_config_hash(a) == model_config_hash(b)  # ...the model's do not
    other = Settings.model_validate({"train": {"n_trials": 3}}).resolve(Path("/one/place"))
    assert model_config_hash(other) != model_config_hash(a)
    args = ("d" * 64, model_config_hash(a), "cat", "abc123")
    assert version_id(FIRST_AS_OF, *args) == version_id(FIRST_AS_OF, *args)
    assert version_id(FIRST_AS_OF, *args).startswith("v20250601-")
    assert version_id(FIRST_AS_OF, *args) != version_id(FIRST_AS_OF, *args[:3], "abc124")


def test_two_folders_train_the_same_version(life: Lifecycle) -> None:
    """The same data and settings in another folder give the same id and the same model."""
    cfg_twin = load_settings(life.twin / "leadscore.toml")
    assert cfg_twin.project.models_dir != life.cfg.project.models_dir
    twin = stage_train(cfg_twin, OVERRIDE)
    assert twin.name == life.v1
    here = life.cfg.project.models_dir / life.v1
    for name in ("model.json", "calibration.json", "preprocessing.json", "folds.json"):
        assert sha256_file(twin / name) == sha256_file(here / name), name


# --------------------------------------------------------------------------- SQL
def test_registry_sql_carries_to_bigquery() -> None:
    for sql in registry_ddl():
        (out,) = transpile(sql, "bigquery", dataset="LeadScoring")
        assert "LeadScoring.`model_registry" in out and "TIMESTAMP" in out and "STRING" in out
    wh = DuckDBWarehouse(":memory:")
    try:
        captured: list[str] = []
        run = wh.execute

        def spy(sql: str) -> None:
            captured.append(sql)
            run(sql)

        wh.execute = spy  # type: ignore[method-assign]
        with pytest.raises(TamperedBundle):
            register(wh, Path("/nonexistent/bundle"), FIRST_AS_OF)
        assert captured  # the DDL ran
        for sql in captured:
            assert transpile(sql, "bigquery", dataset="LeadScoring")
    finally:
        wh.close()


# --------------------------------------------------------------------------- comparison
def test_paired_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.1).astype(float)
    noise = rng.random(2000)
    good = y + noise  # ranks every positive first
    assert paired_bootstrap(y, noise, noise, 200, 1, 0.95) == (0.0, 0.0)
    lo, hi = paired_bootstrap(y, noise, good, 200, 1, 0.95)
    assert 0.5 < lo <= hi <= 1.0
    lo, hi = paired_bootstrap(y, good, noise, 200, 1, 0.95)
    assert -1.0 <= lo <= hi < -0.5


@pytest.mark.parametrize(
    ("diff", "ci_low", "ece", "strict", "n_pos", "refused_for"),
    [
        (-0.019, -0.30, 0.01, False, 5, None),  # within the margin: the interval is not asked
        (-0.021, -0.30, 0.01, False, 5, "beyond the allowed"),
        (0.010, -0.03, 0.01, True, 5, "non-inferiority not shown"),
        (0.010, -0.01, 0.01, True, 5, None),
        (0.010, 0.00, 0.09, False, 5, "ECE"),
        (0.000, 0.00, 0.01, False, 0, "no shared matured leads"),
    ],
)
def test_promotion_verdict(
    diff: float, ci_low: float, ece: float, strict: bool, n_pos: int, refused_for: str | None
) -> None:
    cfg = RegistryConfig(max_aucpr_drop=0.02, non_inferiority=strict)
    reasons = verdict_reasons(100, n_pos, diff, (ci_low, 0.1), ece, cfg, max_ece=0.05)
    if refused_for is None:
        assert reasons == []
    else:
        assert len(reasons) == 1 and refused_for in reasons[0]


# --------------------------------------------------------------------------- lifecycle
def test_first_model_is_champion_and_refresh_shadows_a_challenger(life: Lifecycle) -> None:
    with opened(life.cfg) as wh:
        v1, v2 = get_model(wh, life.v1), get_model(wh, life.v2)
        assert champion(wh).version == life.v1 != life.v2
        assert [r.version for r in shadow_models(wh)] == [life.v2]
        assert [e.to_status for e in history(wh, life.v1)] == ["candidate", "champion"]
        assert [e.to_status for e in history(wh, life.v2)] == ["candidate", "shadow"]
        frame = read_training_frame(wh)
    assert (life.cfg.project.models_dir / "LATEST").read_text().strip() == life.v1
    # lineage: the challenger saw the vintage delivered after the champion's data was cut
    assert v1.as_of == FIRST_AS_OF and v2.as_of == REFRESH_AS_OF
    assert "2025-04-01" in v2.vintages["reps"] and "2025-04-01" not in v1.vintages["reps"]
    assert v2.shadow_since == REFRESH_AS_OF and v2.override_reason == OVERRIDE
    # compared on the same matured leads, none of which either model trained on
    comp = v2.comparison
    assert comp is not None and comp["champion_version"] == life.v1
    old, new = load_verified(v1), load_verified(v2)
    shared = shared_leads(frame, old, new)
    assert comp["n_leads"] == len(shared) > 50 and comp["n_positives"] == shared["target"].sum()
    ids = set(shared["lead_id"])
    assert ids <= set(new.folds.holdout_ids) and not ids & set(old.folds.dev_ids)
    lo, hi = comp["aucpr_diff_ci"]
    assert lo <= comp["aucpr_diff"] <= hi
    saved = json.loads((life.cfg.project.reports_dir / "refresh" / "latest.json").read_text())
    assert saved["challenger"] == life.v2
    assert saved["comparison"]["aucpr_diff"] == comp["aucpr_diff"]


def test_refresh_due_names_its_triggers(life: Lifecycle) -> None:
    with opened(life.cfg) as wh:
        assert refresh_due(wh, life.cfg, _ts("2025-07-01T00:00:00")) == []
        # the challenger shadowing since the refresh was trained after the delivery
        assert refresh_due(wh, life.cfg, REFRESH_AS_OF) == []
        late = refresh_due(wh, life.cfg, _ts("2025-11-01T00:00:00"), performance_alert=True)
    assert any("days old (limit 120)" in r for r in late)
    assert "performance alert from monitoring" in late


def _scores(cfg: Settings) -> pd.DataFrame:
    with opened(cfg) as wh:
        return wh.query(
            f"SELECT lead_id, model_version, contact_ts, reps_snapshot_quarter, run_id "
            f"FROM {tables.LEAD_SCORES}"
        ).to_pandas()


def test_promote_score_rollback_score(life: Lifecycle) -> None:
    """Across the quarter boundary: each scoring run uses the champion of its day."""
    cfg = life.cfg
    with opened(cfg) as wh:
        with pytest.raises(PromotionRefused) as refused:
            promote(wh, cfg, life.v2, _ts("2025-08-22T00:00:00"))
        assert any("shadowed the champion 2.0 of 7 days" in r for r in refused.value.reasons)
        assert any("beats_baseline" in r for r in refused.value.reasons)
    runner = CliRunner()
    cli = ["--config", str(cfg.project.models_dir.parent / "leadscore.toml")]
    out = runner.invoke(app, ["models", "promote", life.v2, "--at", "2025-08-28T00:00:00Z", *cli])
    assert out.exit_code == 2 and "REFUSED" in out.output
    out = runner.invoke(
        app,
        ["models", "promote", life.v2, "--at", "2025-08-28T00:00:00Z", "--override", "ok", *cli],
    )
    assert out.exit_code == 0, out.output
    assert (cfg.project.models_dir / "LATEST").read_text().strip() == life.v2
    assert latest_bundle_path(cfg).name == life.v2
    during = stage_score(cfg, _ts("2025-09-15T00:00:00"))
    assert during.model_version == life.v2 and during.n_scored > 0
    out = runner.invoke(app, ["models", "rollback", "--reason", "drop in MQLs", *cli])
    assert out.exit_code == 0, out.output
    after = stage_score(cfg, _ts("2025-10-15T00:00:00"))
    assert after.model_version == life.v1 and after.n_scored > 0
    scores = _scores(cfg)
    by_run = scores.groupby("run_id")["model_version"].unique().map(list).to_dict()
    assert by_run[after.run_id] == [life.v1] and by_run[during.run_id] == [life.v2]
    late = scores[scores["run_id"] == after.run_id]
    assert late["contact_ts"].min() > pd.Timestamp(FIRST_AS_OF)  # only leads v1 never scored
    # lineage: leads contacted after the new vintage arrived carry it in their score rows
    new_vintage = late[late["contact_ts"] > pd.Timestamp("2025-08-09", tz="UTC")]
    assert (
        len(new_vintage)
        and (
            pd.to_datetime(new_vintage["reps_snapshot_quarter"]) == pd.Timestamp("2025-07-01")
        ).all()
    )
    with opened(cfg) as wh:
        assert champion(wh).version == life.v1 and get_model(wh, life.v2).status == "rejected"
        steps = [(e.version, e.to_status) for e in history(wh)][-4:]
        assert steps == [
            (life.v1, "retired"),
            (life.v2, "champion"),
            (life.v2, "rejected"),
            (life.v1, "champion"),
        ]
        assert "rollback: drop in MQLs" in history(wh, life.v2)[-1].reason
        with pytest.raises(RegistryError, match="no earlier champion"):
            rollback(wh, _ts("2025-10-16T00:00:00"))
    shown = runner.invoke(app, ["models", "show", life.v1, "--json", *cli])
    doc = json.loads(shown.output)
    assert [e["to_status"] for e in doc["history"]] == [
        "candidate",
        "champion",
        "retired",
        "champion",
    ]
    assert doc["status"] == "champion"
    assert sum(r["n_scores"] for r in doc["scores_by_vintage"]) == int(
        (scores["model_version"] == life.v1).sum()
    )
    listed = json.loads(runner.invoke(app, ["models", "list", "--json", *cli]).output)
    assert {r["version"]: r["status"] for r in listed}[life.v2] == "rejected"


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_a_worse_challenger_is_refused(life: Lifecycle) -> None:
    """Trained while every vendor column came through blank: it learns nothing."""
    cfg = life.cfg.model_copy(
        update={"dataset": life.cfg.dataset.model_copy(update={"as_of": REFRESH_AS_OF})}
    )
    catalog = load_catalog()
    with opened(cfg) as wh:
        broken = read_training_frame(wh)
    for name in catalog.feature_types():
        broken[name] = None
    result = train_model(broken, catalog.feature_types(), cfg, override_reason=OVERRIDE)
    path = write_bundle(result, cfg.project.models_dir, default_catalog_path())
    record = register_trained(cfg, path, broken)
    with opened(cfg) as wh:
        comp = challenge(wh, cfg, record.version, REFRESH_AS_OF)
        assert comp is not None and not comp["passed"]
        assert comp["challenger"]["aucpr"] < comp["champion"]["aucpr"] - 0.02
        with pytest.raises(PromotionRefused) as refused:
            promote(wh, cfg, record.version, _ts("2025-12-01T00:00:00"))
        assert any("challenger AUC-PR is -0." in r for r in refused.value.reasons)
        assert all("shadowed" not in r for r in refused.value.reasons)  # the period is over
        with pytest.raises(RegistryError, match="only one champion"):
            set_status(wh, record.version, "champion", "by hand", REFRESH_AS_OF)
        set_status(wh, record.version, "rejected", "worse than the champion", REFRESH_AS_OF)
        with pytest.raises(RegistryError, match="cannot go from rejected to champion"):
            set_status(wh, record.version, "champion", "by hand", REFRESH_AS_OF)


def test_a_changed_bundle_cannot_be_promoted_or_used(life: Lifecycle, tmp_path: Path) -> None:
    cfg = life.cfg
    with opened(cfg) as wh:
        champ = champion(wh)
    # 1. the champion's files change: scoring refuses to use it
    target = champ.bundle_path / "calibration.json"
    original = target.read_bytes()
    try:
        target.write_bytes(original.replace(b"1", b"2", 1))
        with pytest.raises(TamperedBundle, match=r"checksum mismatch in calibration\.json"):
            stage_score(cfg, _ts("2025-10-20T00:00:00"))
    finally:
        target.write_bytes(original)
    assert latest_bundle_path(cfg) == champ.bundle_path
    # 2. a candidate re-signed after registration (manifest rewritten to match): refused even
    #    with an override
    copy = tmp_path / champ.version
    shutil.copytree(champ.bundle_path, copy)
    wh = DuckDBWarehouse(":memory:")
    try:
        register(wh, copy, FIRST_AS_OF)
        cal = json.loads((copy / "calibration.json").read_text())
        cal["cutpoints"] = {k: 0.0 for k in cal["cutpoints"]}
        write_json(copy / "calibration.json", cal)
        manifest = json.loads((copy / MANIFEST).read_text())
        manifest["files"]["calibration.json"] = sha256_file(copy / "calibration.json")
        write_json(copy / MANIFEST, manifest)
        with pytest.raises(TamperedBundle, match="changed after registration"):
            promote(wh, cfg, champ.version, FIRST_AS_OF, override_reason="please")
    finally:
        wh.close()


def test_a_challenger_can_be_rejected_and_never_promoted(life: Lifecycle, tmp_path: Path) -> None:
    from leadscore.registry import reject

    cfg = life.cfg
    with opened(cfg) as wh:
        champ = champion(wh)
    copy = tmp_path / champ.version
    shutil.copytree(champ.bundle_path, copy)
    wh = DuckDBWarehouse(":memory:")
    try:
        register(wh, copy, FIRST_AS_OF)
        set_status(wh, champ.version, "shadow", "test", FIRST_AS_OF)
        done = reject(wh, champ.version, REFRESH_AS_OF, "worse on the call list")
        assert done.status == "rejected" and shadow_models(wh) == []
        assert history(wh, champ.version)[-1].reason == "rejected: worse on the call list"
        with pytest.raises(PromotionRefused, match="it is rejected"):
            promote(wh, cfg, champ.version, REFRESH_AS_OF, override_reason="please")
        with pytest.raises(RegistryError, match="only a candidate or shadow"):
            reject(wh, champ.version, REFRESH_AS_OF, "again")
    finally:
        wh.close()
    # the champion is replaced by `rollback`, not rejected
    cli = ["--config", str(cfg.project.models_dir.parent / "leadscore.toml")]
    out = CliRunner().invoke(app, ["models", "reject", champ.version, "--reason", "x", *cli])
    assert out.exit_code == 1 and "models rollback" in " ".join(out.output.split())


def test_registry_config_defaults() -> None:
    reg = RegistryConfig()
    assert (reg.shadow_days, reg.max_aucpr_drop, reg.max_model_age_days) == (7, 0.02, 120)
    assert reg.non_inferiority
