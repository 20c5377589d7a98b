"""Calibration: per-tier Platt / isotonic, JSON round trip, buckets and tiers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from leadscore.calibrate import (
    SegmentCalibrator,
    assign_buckets,
    assign_tiers,
    bucket_cutpoints,
    fit_platt,
)
from leadscore.catalog import calibration_segment
from leadscore.config import DEFAULT_BUCKETS, BucketConfig

AUM_TIERS = calibration_segment().values  # from features.yaml


def _margins(n: int = 6000, seed: int = 0):
    rng = np.random.default_rng(seed)
    tiers = rng.choice(np.array(AUM_TIERS, dtype=object), n, p=[0.4, 0.3, 0.25, 0.05])
    true_logit = -3 + 1.2 * rng.normal(size=n) + np.where(tiers == "<$100M", 0.8, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    margin = 0.5 * true_logit - 1.0  # a miscalibrated but monotone score
    return margin, y, tiers


def test_platt_matches_unregularized_logistic_regression() -> None:
    margin, y, _ = _margins()
    a, b = fit_platt(margin, y)
    ref = LogisticRegression(C=1e10, max_iter=1000).fit(margin[:, None], y)
    # Platt's smoothed targets move the fit by O(1/n) only
    assert a == pytest.approx(ref.coef_[0, 0], rel=0.02)
    assert b == pytest.approx(ref.intercept_[0], rel=0.02)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_per_tier_calibration_reduces_error_and_round_trips_json(method: str) -> None:
    margin, y, tiers = _margins()
    cal = SegmentCalibrator(method=method).fit(margin, y, tiers)
    p = cal.predict(margin, tiers)
    raw = 1 / (1 + np.exp(-margin))
    for tier in ("<$100M", "$100-500M"):
        mask = tiers == tier
        assert abs(p[mask].mean() - y[mask].mean()) < abs(raw[mask].mean() - y[mask].mean())
        assert abs(p[mask].mean() - y[mask].mean()) < 0.01
    restored = SegmentCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(restored.predict(margin, tiers), p)


def test_small_tiers_and_unknown_segments_use_the_global_calibrator() -> None:
    margin, y, tiers = _margins(n=2000)
    cal = SegmentCalibrator(min_rows=300).fit(margin, y, tiers)
    assert "Unknown" in cal.fallback_  # ~100 rows
    glob = SegmentCalibrator(min_rows=10**9).fit(margin, y, tiers)
    unseen = np.array(["Martian"] * 5, dtype=object)
    np.testing.assert_allclose(cal.predict(margin[:5], unseen), glob.predict(margin[:5], unseen))


def test_unfitted_calibrator_raises() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SegmentCalibrator().predict([0.0], ["Unknown"])


def test_bucket_shares_and_tiers() -> None:
    p = np.random.default_rng(3).random(10_000)
    cuts = bucket_cutpoints(p)
    buckets = assign_buckets(p, cuts)
    shares = {b: float(np.mean(buckets == b)) for b in ("Very Hot", "Hot", "Warm", "Cool", "Cold")}
    expected = {"Very Hot": 0.05, "Hot": 0.10, "Warm": 0.25, "Cool": 0.30, "Cold": 0.30}
    for name, share in expected.items():
        assert shares[name] == pytest.approx(share, abs=0.002)
    tiers = assign_tiers(p, cuts)
    assert set(tiers[np.isin(buckets, ["Very Hot", "Hot"])]) == {"A"}
    assert set(tiers[buckets == "Warm"]) == {"B"}
    assert set(tiers[np.isin(buckets, ["Cool", "Cold"])]) == {"C"}
    assert cuts["Very Hot"] > cuts["Hot"] > cuts["Warm"] > cuts["Cool"]


def test_buckets_come_from_the_bucket_config() -> None:
    p = np.random.default_rng(4).random(10_000)
    two = BucketConfig(
        names=("Now", "Later"),
        shares_from_top={"Now": 0.2},
        tier_of_bucket={"Now": "A", "Later": "B"},
    )
    cuts = bucket_cutpoints(p, two)
    buckets = assign_buckets(p, cuts, two)
    assert float(np.mean(buckets == "Now")) == pytest.approx(0.2, abs=0.002)
    assert set(assign_tiers(p, cuts, two)) == {"A", "B"}
    assert list(bucket_cutpoints(p)) == list(DEFAULT_BUCKETS.names[:-1])
    assert DEFAULT_BUCKETS.tiers == ("A", "B", "C")


@pytest.mark.parametrize(
    "fields",
    [
        {"shares_from_top": {"Very Hot": 0.05}},  # a bucket without a share
        {"shares_from_top": {"Very Hot": 0.5, "Hot": 0.15, "Warm": 0.4, "Cool": 0.7}},  # falls
        {"tier_of_bucket": {"Very Hot": "A"}},  # buckets without a tier
    ],
)
def test_inconsistent_bucket_config_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"shares_from_top|tier_of_bucket"):
        BucketConfig.model_validate(fields)
