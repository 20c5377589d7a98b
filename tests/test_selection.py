"""Feature pre-filters: information value and variance inflation, fitted per training fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from statsmodels.stats.outliers_influence import variance_inflation_factor

from leadscore.train.selection import (
    FeatureSelector,
    information_value,
    selection_stability,
    variance_inflation,
)


def _data(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    other = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2 + 1.5 * signal + 0.8 * other)))).astype(int)
    x = pd.DataFrame(
        {
            "signal": np.where(rng.random(n) < 0.1, np.nan, signal),
            "other": other,
            "other_copy": 3 * other + rng.normal(scale=0.01, size=n),
            "noise": rng.normal(size=n),
            "group": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        }
    )
    types = {
        "signal": "numeric",
        "other": "numeric",
        "other_copy": "numeric",
        "noise": "numeric",
        "group": "category",
    }
    return x, y, types


def test_information_value_separates_signal_from_noise() -> None:
    x, y, _ = _data()
    assert information_value(x["signal"], y) > 0.3
    assert information_value(x["noise"], y) < 0.02
    assert information_value(x["group"], y, kind="category") < 0.02


def test_missing_values_form_their_own_bin() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    only_missingness = pd.Series(np.where(y == 1, np.nan, 1.0))  # constant when present
    assert information_value(only_missingness, y) > 1.0


def test_vif_matches_statsmodels() -> None:
    x, _, _ = _data(1500)
    cols = ["other", "noise", "other_copy"]
    frame = x[cols].copy()
    frame["noise2"] = frame["noise"] * 0.5 + np.random.default_rng(2).normal(size=len(frame))
    ours = variance_inflation(frame)
    design = np.column_stack([np.ones(len(frame)), frame.to_numpy()])
    theirs = [variance_inflation_factor(design, i + 1) for i in range(frame.shape[1])]
    np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=1e-3)


def test_selector_drops_low_iv_and_collinear_features() -> None:
    x, y, types = _data()
    sel = FeatureSelector(types, iv_min=0.02, vif_max=10.0)
    assert sel.fit(x, y) is sel
    assert "noise" in sel.removed_ and "IV" in sel.removed_["noise"]
    dropped_collinear = {"other", "other_copy"} & set(sel.removed_)
    assert len(dropped_collinear) == 1
    assert "VIF" in sel.removed_[dropped_collinear.pop()]
    assert sel.selected_[0] == "signal"
    assert list(sel.transform(x).columns) == sel.selected_
    assert set(sel.report()["removed"]) == set(sel.removed_)


def test_selector_behaves_like_an_estimator() -> None:
    x, _, types = _data(500)
    sel = FeatureSelector(types, iv_min=0.05)
    with pytest.raises(NotFittedError):
        sel.transform(x)
    copy = clone(sel)
    assert copy.get_params()["iv_min"] == 0.05
    assert not hasattr(copy, "selected_")


def test_selector_keeps_one_feature_when_all_are_weak() -> None:
    x, y, types = _data(500)
    sel = FeatureSelector(types, iv_min=100.0).fit(x, y)
    assert len(sel.selected_) == 1


def test_stability_reports_frequency_and_jaccard() -> None:
    out = selection_stability([{"a", "b"}, {"a", "c"}, {"a", "b"}], ["a", "b", "c", "d"])
    assert out["frequency"] == {"a": 1.0, "b": 2 / 3, "c": 1 / 3, "d": 0.0}
    assert out["always"] == ["a"] and out["never"] == ["d"]
    assert out["mean_jaccard"] == pytest.approx((1 / 3 + 1.0 + 1 / 3) / 3)
