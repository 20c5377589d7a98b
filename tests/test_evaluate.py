"""Metrics (checked against scikit-learn / SciPy) and the model gates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as skm

from leadscore import evaluate as ev
from leadscore import reliability as rel
from leadscore.config import GatesConfig
from leadscore.gates import GateFailed


def _scores(seed: int, n: int = 3000, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 12, n)
    y = (rng.random(n) < p * 2).astype(int)
    return y, (np.round(p, decimals) if decimals is not None else p)


@pytest.mark.parametrize(("seed", "decimals"), [(0, None), (1, 2), (2, 1), (3, 3)])
def test_metrics_match_sklearn(seed: int, decimals: int | None) -> None:
    y, p = _scores(seed, decimals=decimals)  # rounding creates ties
    assert ev.average_precision(y, p) == pytest.approx(skm.average_precision_score(y, p))
    assert ev.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert ev.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p))
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    assert ev.log_loss(y, p) == pytest.approx(skm.log_loss(y, clipped))


def test_top_fraction_and_bottom_rate_by_hand() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 1, 0])
    score = np.arange(10, 0, -1) / 10  # descending: row 0 is the top
    top = ev.top_fraction(y, score, 0.2)  # top 2 rows: 1, 0
    assert top == {
        "precision": 0.5,
        "recall": pytest.approx(1 / 3),
        "lift": pytest.approx(0.5 / 0.3),
    }
    assert ev.bottom_conversion(y, score, 0.2) == 0.5  # rows 9, 8


def test_ece_equal_frequency_bins_by_hand() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.8])
    # two bins: {0.1, 0.3} mean 0.2 vs 0; {0.6, 0.8} mean 0.7 vs 1
    assert ev.ece(y, p, n_bins=2) == pytest.approx(0.5 * 0.2 + 0.5 * 0.3)
    assert ev.ece(y, y.astype(float)) == 0.0


def test_gains_table_adds_up() -> None:
    y, p = _scores(4)
    gains = ev.gains_table(y, p)
    assert list(gains["decile"]) == list(range(1, 11))
    assert gains["n"].sum() == len(y) and gains["n_pos"].sum() == y.sum()
    assert gains["cum_capture"].iloc[-1] == pytest.approx(1.0)
    assert gains["lift"].iloc[0] > 1 > gains["lift"].iloc[-1]


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    y, p = _scores(5)
    a = ev.bootstrap_interval(y, p, 200, seed=42)
    assert a == ev.bootstrap_interval(y, p, 200, seed=42)
    assert a[0] < ev.average_precision(y, p) < a[1]


def test_ks_is_the_largest_pair_and_matches_scipy() -> None:
    rng = np.random.default_rng(6)
    groups = {"a": rng.normal(0, 1, 300), "b": rng.normal(0.1, 1, 300), "c": rng.normal(1, 1, 300)}
    out = ev.max_pairwise_ks(groups)
    expected = max(
        ks_2samp(groups[i], groups[j]).statistic for i, j in [("a", "b"), ("a", "c"), ("b", "c")]
    )
    assert out["ks"] == pytest.approx(expected)
    assert set(out["pair"]) in ({"a", "c"}, {"b", "c"})


def test_mqls_per_100_dials() -> None:
    out = ev.mqls_per_100_dials([1, 0, 1, 0], ["Hot", "Hot", "Cold", "Cold"], [4, 6, 50, np.nan])
    assert out["Hot"]["mqls_per_100_dials"] == pytest.approx(10.0)
    assert out["Cold"] == {"leads": 1, "mqls": 1.0, "dials": 50.0, "mqls_per_100_dials": 2.0}


def _cal_block(ece: float, gated: bool = True) -> dict:
    return {
        "n": 1000,
        "n_pos": 40,
        "ece": ece,
        "ece_noise": {"mean": 0.008, "band": 0.015, "quantile": 0.95},
        "brier": 0.030,
        "brier_base_rate": 0.0384,
        "brier_skill": 0.2,
        "gated": gated,
    }


def _metrics(**overrides: float) -> dict:
    base = {
        "holdout": {
            "aucpr": 0.40,
            "precision_at_10pct": 0.2,
            "ece": 0.01,
            "ece_by_tier": {"<$100M": {"n": 10, "ece": 0.02}},
            "calibration": {
                "overall": _cal_block(0.01),
                # a tier too small to gate: its poor ECE is reported, not gated
                "by_tier": {"<$100M": _cal_block(0.012), "Unknown": _cal_block(0.3, False)},
            },
        },
        "baseline_holdout_aucpr": 0.05,
        "train_test_gap": 0.05,
        "cv_aucpr_cov": 0.05,
        "ks": {"ks": 0.05, "pair": ["fold_0", "holdout"]},
    }
    for key, value in overrides.items():
        if key == "ece":
            base["holdout"]["calibration"]["overall"]["ece"] = value
        elif key == "brier_skill":
            base["holdout"]["calibration"]["overall"]["brier_skill"] = value
        elif key in base["holdout"]:
            base["holdout"][key] = value
        else:
            base[key] = value
    return base


def test_all_gates_pass_on_good_figures() -> None:
    gates = ev.evaluate_gates(_metrics(), GatesConfig(), "r.md")
    assert all(g.passed for g in gates)
    assert {g.name for g in gates} >= {
        "min_aucpr",
        "ship_aucpr",
        "precision_at_10pct",
        "ece_overall",
        "ece_<$100M",
        "brier_skill_vs_base_rate",
        "train_test_gap",
        "cv_aucpr_cov",
        "ks_time_folds",
        "beats_baseline",
    }
    assert "ece_Unknown" not in {g.name for g in gates}
    ev.enforce_gates(gates)


@pytest.mark.parametrize(
    ("override", "gate"),
    [
        ({"aucpr": 0.10}, "min_aucpr"),  # also fails ship_aucpr; min comes first
        ({"aucpr": 0.30}, "ship_aucpr"),
        ({"precision_at_10pct": 0.10}, "precision_at_10pct"),
        ({"ece": 0.09}, "ece_overall"),
        ({"ece": 0.02}, "ece_overall"),  # below max_ece but above the noise band
        ({"brier_skill": 0.0}, "brier_skill_vs_base_rate"),
        ({"train_test_gap": 0.10}, "train_test_gap"),
        ({"cv_aucpr_cov": 0.2}, "cv_aucpr_cov"),
        ({"baseline_holdout_aucpr": 0.40}, "beats_baseline"),
        ({"cv_aucpr_cov": float("nan")}, "cv_aucpr_cov"),
    ],
)
def test_failed_gate_raises_with_figure_threshold_and_report(override: dict, gate: str) -> None:
    gates = ev.evaluate_gates(_metrics(**override), GatesConfig(), "reports/x/validation.md")
    failed_names = [g.name for g in gates if not g.passed]
    assert failed_names[0] == gate and set(failed_names) <= {gate, "ship_aucpr"}
    with pytest.raises(GateFailed) as info:
        ev.enforce_gates(gates)
    message = str(info.value)
    assert gate in message and "reports/x/validation.md" in message
    failed = next(g for g in gates if not g.passed)
    assert f"{failed.threshold:.4g}" in message
    ev.enforce_gates(gates, override_reason="accepted by the lead for the demo")


def test_reliability_table_bins() -> None:
    y, p = _scores(7, n=100)
    table = ev.reliability_table(y, p, 10)
    assert isinstance(table, pd.DataFrame) and table["n"].sum() == 100


# --- calibration figures and gates that can fail ---------------------------------------------


def _calibrated(seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes drawn from known probabilities (base rate ~4%), and a tier per row."""
    rng = np.random.default_rng(seed)
    p = np.clip(rng.beta(0.6, 14, n), 1e-3, 0.99)
    y = (rng.random(n) < p).astype(int)
    tiers = np.where(np.arange(n) < 5900, "<$100M", "Unknown")  # Unknown: 100 rows
    return y, p, tiers


def _gates_for(y: np.ndarray, p: np.ndarray, tiers: np.ndarray) -> dict[str, bool]:
    cal = rel.calibration_block(y, p, tiers, GatesConfig(), seed=1)
    metrics = _metrics()
    metrics["holdout"]["calibration"] = cal
    return {g.name: g.passed for g in ev.evaluate_gates(metrics, GatesConfig())}


def test_calibrated_model_passes_and_constant_or_zero_predictors_fail() -> None:
    y, p, tiers = _calibrated(3)
    good = _gates_for(y, p, tiers)
    assert good["ece_overall"] and good["brier_skill_vs_base_rate"] and good["ece_<$100M"]
    constant = _gates_for(y, np.full(len(y), y.mean()), tiers)
    assert not constant["brier_skill_vs_base_rate"]
    zero = _gates_for(y, np.zeros(len(y)), tiers)
    assert not zero["ece_overall"] and not zero["brier_skill_vs_base_rate"]
    # the old absolute gate (ECE <= 0.05) let the all-zero predictor through
    assert ev.ece(y, np.zeros(len(y))) <= GatesConfig().max_ece


def test_small_tiers_are_reported_not_gated() -> None:
    y, p, tiers = _calibrated(4)
    cal = rel.calibration_block(y, p, tiers, GatesConfig(), seed=1)
    assert cal["by_tier"]["Unknown"]["n"] == 100 and not cal["by_tier"]["Unknown"]["gated"]
    assert cal["by_tier"]["<$100M"]["gated"]
    names = set(_gates_for(y, p, tiers))
    assert "ece_<$100M" in names and "ece_Unknown" not in names


def test_ece_noise_band_holds_a_calibrated_model_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(5)
    p = rng.beta(0.6, 14, 2000)
    band = rel.ece_noise_band(p, n_samples=200, seed=9)
    inside = [ev.ece(rng.random(len(p)) < p, p) <= band["band"] for _ in range(200)]
    assert band["mean"] < band["band"] and 0.9 <= np.mean(inside) <= 0.99


def test_calibration_line_matches_unpenalized_logistic_regression() -> None:
    import statsmodels.api as sm

    y, p, _ = _calibrated(6)
    lp = np.log(p / (1 - p))
    sharp = 1 / (1 + np.exp(-2 * lp))  # too extreme: slope about 0.5
    line = rel.calibration_line(y, sharp)
    fit = sm.GLM(y, sm.add_constant(2 * lp), family=sm.families.Binomial()).fit()
    assert line["slope"] == pytest.approx(fit.params[1], rel=1e-6)
    assert line["slope_ci95"] == pytest.approx(list(fit.conf_int()[1]), rel=1e-4)
    offset = sm.GLM(y, np.ones(len(y)), family=sm.families.Binomial(), offset=2 * lp).fit()
    assert line["intercept"] == pytest.approx(offset.params[0], rel=1e-6)
    honest = rel.calibration_line(y, p)
    assert honest["slope_ci95"][0] < 1 < honest["slope_ci95"][1]
    assert honest["intercept_ci95"][0] < 0 < honest["intercept_ci95"][1]
    assert np.isnan(rel.calibration_line(y, np.full(len(y), 0.04))["slope"])


def test_bucket_shares_against_nominal_and_truth() -> None:
    cut = {"Very Hot": 0.5, "Hot": 0.3, "Warm": 0.2, "Cool": 0.1}
    p = np.array([0.6, 0.35, 0.25, 0.25, 0.15, 0.15, 0.15, 0.05, 0.05, 0.05])
    truth = np.array([0.6, 0.6, 0.35, 0.25, 0.25, 0.15, 0.15, 0.15, 0.05, 0.05])
    rows = {r["bucket"]: r for r in rel.bucket_shares(p, cut, truth)}
    assert rows["Very Hot"]["share"] == 0.1 and rows["Very Hot"]["truth_share"] == 0.2
    assert rows["Very Hot"]["nominal_share"] == pytest.approx(0.05)
    assert rows["Warm"]["nominal_share"] == pytest.approx(0.25)
    assert rows["Cold"]["share"] == 0.3 and rows["Cold"]["truth_share"] == 0.2
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0)
    assert "truth_share" not in rel.bucket_shares(p, cut)[0]
