"""Model bundle: byte-identical for the same seed, checksummed, pickle-free, scores as trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.bundle import BundleError, load_bundle, publish_model, write_bundle
from leadscore.gates import GateFailed
from leadscore.io import sha256_file
from leadscore.train.fit import TrainResult, train_model
from test_train import small_settings, synthetic_leads


def _train(tmp: Path, models_dir: Path) -> tuple[TrainResult, pd.DataFrame, Path]:
    """Train with settings rooted at ``tmp``; write the bundle into ``models_dir``."""
    df, types, dials, truth = synthetic_leads()
    with pytest.MonkeyPatch.context() as mp:
        # git can time out on a busy machine; the code version is not what is under test
        mp.setattr("leadscore.io.code_version", lambda: "test")
        result = train_model(df, types, small_settings(tmp), dials=dials, true_probability=truth)
        path = write_bundle(
            result,
            models_dir,
            catalog={"features": [{"name": "x1"}]},
            contract={"columns": {"x1": "float"}},
        )
    return result, df, path


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("b")
    result, df, path = _train(tmp, tmp / "models")
    return path, result, df


def _digests(path: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(path.iterdir())}


def test_same_seed_gives_a_byte_identical_bundle(bundle_dir, tmp_path: Path) -> None:
    first, result, _ = bundle_dir
    # same settings (report paths included), a fresh training, written to another folder
    _, _, second = _train(first.parent.parent, tmp_path / "models")
    assert second != first
    assert second.name == first.name == result.version
    assert result.version.startswith("v2024")  # date of the last contact, not the clock
    assert _digests(first) == _digests(second)


def test_bundle_holds_the_design_artefacts_and_no_pickle(bundle_dir) -> None:
    path, _, _ = bundle_dir
    names = {p.name for p in path.iterdir()}
    assert names >= {
        "manifest.json",
        "model.json",
        "preprocessing.json",
        "calibration.json",
        "config.json",
        "folds.json",
        "metrics.json",
        "gates.json",
        "data_fingerprint.json",
        "catalog.json",
        "contract.json",
    }
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib"))]
    for p in path.iterdir():
        assert b"pickle" not in p.read_bytes().lower(), p.name
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    fingerprint = json.loads((path / "data_fingerprint.json").read_text())
    assert fingerprint["n_rows"] == 3000 and len(fingerprint["sha256"]) == 64


@pytest.mark.parametrize("change", ["flip_byte", "delete", "add"])
def test_tampered_bundle_refuses_to_load(bundle_dir, tmp_path: Path, change: str) -> None:
    import shutil

    path = Path(shutil.copytree(bundle_dir[0], tmp_path / "copy"))
    target = path / "calibration.json"
    if change == "flip_byte":
        data = bytearray(target.read_bytes())
        data[10] ^= 1
        target.write_bytes(bytes(data))
    elif change == "delete":
        target.unlink()
    else:
        (path / "extra.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match="calibration.json" if change != "add" else "extra"):
        load_bundle(path)


def test_loaded_bundle_scores_exactly_like_training(bundle_dir) -> None:
    path, result, df = bundle_dir
    bundle = load_bundle(path)
    assert bundle.version == result.version and bundle.features == result.features
    assert bundle.feature_types == result.feature_types
    holdout = df[df["lead_id"].isin(result.splits.holdout_ids)]
    expected = result.predictions.set_index("lead_id").loc[holdout["lead_id"]]
    np.testing.assert_array_equal(bundle.predict_margin(holdout), expected["xgb_margin"])
    proba = bundle.predict_proba(holdout)
    np.testing.assert_array_equal(proba, expected["xgb_proba"])
    np.testing.assert_array_equal(bundle.bucket(proba), expected["bucket"])
    np.testing.assert_array_equal(bundle.tier(proba), expected["tier"])
    contribs = bundle.booster.predict(bundle.prepare_matrix(holdout), pred_contribs=True)
    np.testing.assert_allclose(contribs.sum(axis=1), expected["xgb_margin"], atol=1e-4)
    assert bundle.gates["all_passed"] == all(g.passed for g in result.gates)


def test_unseen_category_level_becomes_missing(bundle_dir) -> None:
    path, _, df = bundle_dir
    bundle = load_bundle(path)
    if "region" not in bundle.features:
        pytest.skip("region was filtered out")
    row = df.head(1)
    unseen = row.assign(region=pd.Categorical(["mars"]))
    missing = row.assign(region=pd.Categorical([None], categories=["north"]))
    assert bundle.predict_margin(unseen) == pytest.approx(bundle.predict_margin(missing))
    with pytest.raises(KeyError, match="aum_tier"):
        bundle.predict_proba(row.drop(columns="aum_tier"))


def test_publish_stops_on_failed_gate_unless_overridden(bundle_dir, tmp_path: Path) -> None:
    _, result, _ = bundle_dir
    if all(g.passed for g in result.gates):
        pytest.skip("every gate passed on this data")
    with pytest.raises(GateFailed) as info:
        publish_model(result, tmp_path / "models")
    report = info.value.result.report_path
    assert report is not None and Path(report).is_file()
    assert not (tmp_path / "models").exists()
    result.override_reason = "demo data; reviewed by the lead"
    try:
        path = publish_model(result, tmp_path / "models")
    finally:
        result.override_reason = None
    gates = json.loads((path / "gates.json").read_text())
    assert gates["override_reason"] == "demo data; reviewed by the lead"
    load_bundle(path)


def test_a_train_result_scores_like_its_bundle(bundle_dir) -> None:
    """Margins, probabilities, scores, buckets and tiers agree before and after the round trip
    (driver texts need the packaged catalog; docs/notebook.md scores a real world directly)."""
    path, result, df = bundle_dir
    rows = df.tail(200)
    loaded = load_bundle(path)
    np.testing.assert_array_equal(result.predict_margin(rows), loaded.predict_margin(rows))
    p = result.predict_proba(rows)
    np.testing.assert_array_equal(p, loaded.predict_proba(rows))
    for method in ("score", "bucket", "tier"):
        np.testing.assert_array_equal(getattr(result, method)(p), getattr(loaded, method)(p))
    assert set(result.bucket(p)) <= {"Very Hot", "Hot", "Warm", "Cool", "Cold"}
    assert result.score(p).min() >= 1 and result.score(p).max() <= 99
