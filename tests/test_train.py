"""Train stage: folds shared by both models, in-fold SMOTE, out-of-fold calibration, metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from leadscore.calibrate import fit_calibrators
from leadscore.config import Settings
from leadscore.train import booster as booster_mod
from leadscore.train.booster import DEFAULT_PARAMS
from leadscore.train.fit import TrainResult, train_model
from leadscore.train.imbalance import choose_strategy
from leadscore.train.preprocess import ids_digest

TIERS = np.array(["<$100M", "$100-500M", ">$500M", "Unknown"])


def synthetic_leads(n: int = 3000, seed: int = 0):
    """Leads over two years with a known logistic signal, categoricals, NaNs and a copy."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01", tz="UTC")
    seconds = np.sort(rng.integers(0, 730 * 86400, n))
    contact_ts = (start + pd.to_timedelta(seconds, unit="s")).astype("datetime64[us, UTC]")
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    flag = rng.random(n) < 0.3
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    tier = rng.choice(TIERS, n, p=[0.4, 0.3, 0.2, 0.1])
    logit = -2.8 + 1.1 * x1 + 0.7 * x2 + 0.8 * flag + np.where(region == "west", 0.9, 0.0)
    p = 1 / (1 + np.exp(-logit))
    df = pd.DataFrame(
        {
            "lead_id": [f"L{i:06d}" for i in range(n)],
            "contact_ts": contact_ts,
            "target": (rng.random(n) < p).astype(int),
            "aum_tier": tier,
            "OwnerId": rng.choice(["sga1", "sga2", "sga3"], n),
            "x1": np.where(rng.random(n) < 0.1, np.nan, x1),
            "x2": x2,
            "x2_copy": 2.0 * x2 + rng.normal(scale=0.01, size=n),
            "flag": flag,
            "region": pd.Categorical(np.where(rng.random(n) < 0.05, None, region)),
            "noise": rng.normal(size=n),
        }
    )
    types = {
        "x1": "numeric",
        "x2": "numeric",
        "x2_copy": "numeric",
        "flag": "bool",
        "region": "category",
        "noise": "numeric",
    }
    dials = pd.Series(rng.integers(1, 8, n), index=df["lead_id"])
    truth = pd.Series(p, index=df["lead_id"])
    return df, types, dials, truth


def small_settings(tmp: Any = None, **train: Any) -> Settings:
    data: dict[str, Any] = {
        "train": {"cv_folds": 3, "n_trials": 2, "bootstrap_samples": 20, **train},
    }
    if tmp is not None:
        data["project"] = {"reports_dir": str(tmp / "reports"), "models_dir": str(tmp / "models")}
    return Settings.model_validate(data)


@pytest.fixture(scope="module")
def trained() -> tuple[TrainResult, pd.DataFrame, list[tuple[str, set[str]]]]:
    df, types, dials, truth = synthetic_leads()
    calls: list[tuple[str, set[str]]] = []
    original: Callable[..., Any] = booster_mod.apply_strategy

    def spy(x: pd.DataFrame, y: np.ndarray, strategy: str, *args: Any) -> Any:
        calls.append((strategy, set(x.index)))
        out = original(x, y, strategy, *args)
        if strategy == "smote":  # the real rows pass through unchanged, synthetic ones follow
            pd.testing.assert_frame_equal(out[0].iloc[: len(x)], x)
            assert len(out[0]) > len(x)
        return out

    original_fit: Callable[..., Any] = booster_mod.fit_xgb

    def fit_spy(x: pd.DataFrame, *args: Any, n_trees: int | None = None) -> Any:
        calls.append((f"fit n_trees={n_trees}", set(x.index)))
        return original_fit(x, *args, n_trees=n_trees)

    mp = pytest.MonkeyPatch()
    mp.setattr(booster_mod, "apply_strategy", spy)
    mp.setattr(booster_mod, "fit_xgb", fit_spy)
    try:
        result = train_model(df, types, small_settings(), dials=dials, true_probability=truth)
    finally:
        mp.undo()
    return result, df, calls


def test_calibration_fold_models_are_trained_like_the_shipped_model(trained) -> None:
    result, _, calls = trained
    n = result.params["n_estimators"]
    fixed = [ids for name, ids in calls if name == f"fit n_trees={n}"]
    # one refit per fold on exactly its training rows, at the shipped model's tree count
    assert [set(f.train_ids) for f in result.splits.folds] == fixed
    early = [name for name, _ in calls if name.startswith("fit")]
    assert set(early) == {"fit n_trees=None", f"fit n_trees={n}"}


def test_smote_and_every_resampling_only_see_training_rows(trained) -> None:
    result, _, calls = trained
    calls = [(s, ids) for s, ids in calls if not s.startswith("fit")]
    splits = result.splits
    smote_calls = [ids for strategy, ids in calls if strategy == "smote"]
    assert len(smote_calls) == len(splits.folds)
    holdout = set(splits.holdout_ids)
    for _, ids in calls:
        assert not ids & holdout
        owners = [f for f in splits.folds if ids <= set(f.train_ids)]
        assert owners or ids <= set(splits.dev_ids)
        for fold in owners:
            assert not ids & set(fold.test_ids)


def test_baseline_and_xgboost_see_the_same_folds(trained) -> None:
    result, _, _ = trained
    usage = result.fold_usage
    assert usage["xgboost"] == usage["logistic"]
    expected = [
        {
            "train": ids_digest(pd.Index(f.train_ids)),
            "test": ids_digest(pd.Index(f.test_ids)),
        }
        for f in result.splits.folds
    ]
    expected.append(
        {
            "train": ids_digest(pd.Index(result.splits.dev_ids)),
            "test": ids_digest(pd.Index(result.splits.holdout_ids)),
        }
    )
    assert usage["xgboost"] == expected


def test_calibrators_never_see_their_models_training_rows(trained) -> None:
    result, _, _ = trained
    pred = result.predictions
    cv = pred[pred["set"] == "cv"]
    for k, fold in enumerate(result.splits.folds):
        rows = set(cv.loc[cv["fold"] == k, "lead_id"])
        assert rows == set(fold.test_ids)
        assert not rows & set(fold.train_ids)
    assert not set(cv["lead_id"]) & set(result.splits.holdout_ids)
    refit = fit_calibrators(
        cv["xgb_margin"].to_numpy(),
        cv["target"].to_numpy(),
        cv["aum_tier"].astype(str).to_numpy(),
        "platt",
    )
    assert refit.to_dict() == result.calibrator.to_dict()  # fitted on exactly these rows


def test_holdout_metrics_match_sklearn_and_oracle_is_reported(trained) -> None:
    result, _, _ = trained
    ho = result.predictions[result.predictions["set"] == "holdout"]
    assert set(ho["lead_id"]) == set(result.splits.holdout_ids)
    m = result.metrics
    assert m["holdout"]["aucpr"] == pytest.approx(
        average_precision_score(ho["target"], ho["xgb_proba"])
    )
    assert m["baseline_holdout_aucpr"] == pytest.approx(
        average_precision_score(ho["target"], ho["baseline_proba"])
    )
    assert m["oracle"]["model_aucpr_fraction"] == pytest.approx(
        m["holdout"]["aucpr"] / average_precision_score(ho["target"], ho["true_probability"])
    )
    assert m["holdout"]["aucpr"] > 2 * m["holdout"]["base_rate"]  # it learned the signal
    lo, hi = m["holdout"]["aucpr_ci95"]
    assert lo <= m["holdout"]["aucpr"] <= hi
    assert set(m["mqls_per_100_dials"]) <= {"Very Hot", "Hot", "Warm", "Cool", "Cold"}
    assert len(m["cv_folds"]) == 3 and 0 <= m["ks"]["ks"] <= 1


def test_stability_and_calibration_figures_are_out_of_sample(trained) -> None:
    from scipy.stats import ks_2samp

    result, _, _ = trained
    pred, m = result.predictions, result.metrics
    blocks = [g["xgb_proba"].to_numpy() for _, g in pred[pred["set"] == "cv"].groupby("fold")]
    blocks.append(pred.loc[pred["set"] == "holdout", "xgb_proba"].to_numpy())
    expected = max(ks_2samp(a, b).statistic for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    assert m["ks"]["ks"] == pytest.approx(expected) and m["ks"]["scores"] == "out-of-sample"
    refit = [
        average_precision_score(g["target"], g["xgb_margin"])
        for _, g in pred[pred["set"] == "cv"].groupby("fold")
    ]  # the CV stability gate reads the fold models trained like the shipped one
    assert m["cv_aucpr_cov"] == pytest.approx(np.std(refit, ddof=1) / np.mean(refit))
    ho = pred[pred["set"] == "holdout"]
    cal = m["holdout"]["calibration"]
    assert cal["overall"]["n"] == len(ho)
    assert cal["overall"]["mean_predicted"] == pytest.approx(ho["xgb_proba"].mean())
    assert sum(b["n"] for b in cal["by_tier"].values()) == len(ho)
    shares = {r["bucket"]: r for r in m["holdout"]["bucket_shares"]}
    for name, row in shares.items():
        assert row["share"] == pytest.approx((ho["bucket"] == name).mean())
    assert sum(r["truth_share"] for r in shares.values()) == pytest.approx(1.0)


def test_selection_is_recorded_per_fold_and_drops_the_collinear_copy(trained) -> None:
    result, _, _ = trained
    sel = result.selection
    assert len(sel["folds"]) == len(result.splits.folds)
    assert {"x2", "x2_copy"} & set(sel["final"]["removed"])
    assert "noise" in sel["final"]["removed"]
    assert result.features == sel["final"]["selected"]
    assert 0 <= sel["stability"]["mean_jaccard"] <= 1


def test_strategy_and_tuning_records(trained) -> None:
    result, _, _ = trained
    comp = result.strategy_comparison
    assert set(comp["strategies"]) == {"none", "scale_pos_weight", "smote"}
    means = {k: v["mean_aucpr"] for k, v in comp["strategies"].items()}
    assert comp["winner"] == choose_strategy(means) == result.strategy
    assert len(result.tuning["trials"]) == 2
    assert result.tuning["trials"][0]["params"] == DEFAULT_PARAMS
    assert result.params["seed"] == 42 and result.params["nthread"] == 2


@pytest.mark.parametrize(
    ("scores", "winner"),
    [
        ({"none": 0.300, "scale_pos_weight": 0.301, "smote": 0.302}, "none"),
        ({"none": 0.300, "scale_pos_weight": 0.303, "smote": 0.304}, "scale_pos_weight"),
        ({"none": 0.300, "scale_pos_weight": 0.290, "smote": 0.310}, "smote"),
        ({"scale_pos_weight": 0.2, "smote": 0.2015}, "scale_pos_weight"),
    ],
)
def test_strategy_ties_go_to_the_simpler(scores: dict[str, float], winner: str) -> None:
    assert choose_strategy(scores) == winner


def test_missing_columns_and_bad_targets_are_refused() -> None:
    df, types, _, _ = synthetic_leads(400)
    with pytest.raises(KeyError, match="aum_tier"):
        train_model(df.drop(columns="aum_tier"), types, small_settings())
    bad = df.assign(target=df["target"].replace({1: 2}))
    with pytest.raises(ValueError, match="0/1"):
        train_model(bad, types, small_settings())


def test_early_stopping_leaves_the_gap_before_its_validation_rows() -> None:
    from leadscore.train.booster import early_stopping_split
    from leadscore.train.preprocess import TrainingData

    df, types, _, _ = synthetic_leads(400)
    x = df[list(types)].set_index(df["lead_id"])
    ts = pd.Series(df["contact_ts"].to_numpy(), index=x.index)
    empty = np.array([], dtype=int)
    data = TrainingData(x, df["target"].to_numpy(), df["aum_tier"].to_numpy(), [], types, 0,
                        empty, empty, contact_ts=ts, gap_days=30)  # fmt: skip
    fit_rows, valid_rows = early_stopping_split(x, data)
    assert valid_rows.tolist() == list(range(340, 400))  # the last 15% by time
    first_valid = ts.iloc[valid_rows[0]]
    gap = pd.Timedelta(days=30)
    assert (ts.iloc[fit_rows] < first_valid - gap).all()
    assert (ts.iloc[fit_rows[-1] + 1 : 340] >= first_valid - gap).all()  # nothing else fits
    assert 0 < len(fit_rows) < 340
    no_gap = TrainingData(x, data.y, data.tiers, [], types, 0, empty, empty)
    assert early_stopping_split(x, no_gap)[0].tolist() == list(range(340))
