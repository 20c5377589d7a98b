"""Experiment statistics: alpha spending, power, the delta method, assignment, monitoring checks.

Each figure is checked against an independent computation: scipy's multivariate normal for the
boundaries (and gsDesign's published values), closed-form sample sizes, Monte Carlo for the
delta-method standard error, scipy's Spearman for the adoption measure.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from leadscore.experiment.analyze import analyze_experiment, look_times
from leadscore.experiment.assign import assign_units, unit_hash
from leadscore.experiment.export import blank_control_rows, experiment_fields
from leadscore.experiment.kpi import compare_ratios, ratio_estimate
from leadscore.experiment.monitor import (
    adoption_by_day,
    balance_table,
    srm_check,
    standardized_difference,
)
from leadscore.experiment.power import (
    KpiMoments,
    anova_icc,
    cluster_leads_per_arm,
    measure_moments,
    n_per_arm,
    proportion_designs,
)
from leadscore.experiment.sequential import crossed, obf_boundaries, obf_spending
from leadscore.score.salesforce import validate_upsert_csv, write_upsert_csv

Z = stats.norm.ppf


# ------------------------------------------------------------------------- alpha spending
@pytest.mark.parametrize(
    ("fractions", "published"),
    [  # gsDesign sfLDOF, two-sided symmetric, alpha 0.05 (test.type = 2)
        ((0.25, 0.5, 0.75, 1.0), (4.3326, 2.9631, 2.3590, 2.0141)),
        ((0.2, 0.4, 0.6, 0.8, 1.0), (4.8769, 3.3569, 2.6803, 2.2898, 2.0310)),
    ],
)
def test_obf_boundaries_match_published_values(
    fractions: tuple[float, ...], published: tuple[float, ...]
) -> None:
    bounds = obf_boundaries(fractions, 0.05)
    np.testing.assert_allclose(bounds.z, published, atol=2e-3)


@pytest.mark.parametrize("fractions", [(0.25, 0.5, 0.75, 1.0), (0.3, 0.65, 1.0), (0.5, 1.0)])
def test_boundaries_spend_exactly_the_planned_alpha(fractions: tuple[float, ...]) -> None:
    """P(crossing by look k) under H0, by scipy's multivariate normal, equals alpha(t_k)."""
    bounds = obf_boundaries(fractions, 0.05)
    t = np.array(fractions)
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    for k in range(1, len(t) + 1):
        c = np.array(bounds.z[:k])
        mvn = stats.multivariate_normal(np.zeros(k), corr[:k, :k])
        p_cross = 1 - mvn.cdf(c, lower_limit=-c)
        assert p_cross == pytest.approx(bounds.cumulative_alpha[k - 1], abs=2e-4)
    assert bounds.cumulative_alpha[-1] == pytest.approx(0.05)


def test_spending_is_increasing_and_a_single_look_is_the_fixed_test() -> None:
    spent = obf_spending(np.linspace(0.05, 1, 20))
    assert np.all(np.diff(spent) > 0) and spent[-1] == pytest.approx(0.05)
    assert obf_boundaries((1.0,)).z[0] == pytest.approx(Z(0.975), abs=1e-6)


def test_crossed_finds_the_first_look_over_its_boundary() -> None:
    bounds = obf_boundaries((0.25, 0.5, 0.75, 1.0))
    assert crossed([4.0, 3.0, 1.0, 1.0], bounds) == 1
    assert crossed([-4.5, 0, 0, 0], bounds) == 0
    assert crossed([1, 1, 1, 2.0], bounds) is None


# ----------------------------------------------------------------------------------- power
def test_n_per_arm_is_the_closed_form_z_test_size() -> None:
    delta, v0, v1 = 0.004, 0.0011, 0.0017
    expected = (Z(0.975) + Z(0.8)) ** 2 * (v0 + v1) / delta**2
    # statsmodels also counts the (negligible) power of the other tail
    assert n_per_arm(delta, v0, v1, 0.05, 0.8) == pytest.approx(expected, rel=1e-5)


def _moments(rate: float) -> KpiMoments:
    return KpiMoments(1000, rate, rate / 3.4, (2.0, 5.0), (3.4, 13.0), 0.0, 20)


@pytest.mark.parametrize(("adoption", "low", "high"), [(1.0, 1850, 1950), (0.6, 4750, 5050)])
def test_proportion_reference_matches_the_arcsine_formula(
    adoption: float, low: int, high: int
) -> None:
    """3.89% baseline, +50%: ~1,900 leads per arm; ~4,900 at 60% adoption (Cohen's h)."""
    (design,) = proportion_designs(_moments(0.0389), 550.0, 0.5, 0.05, 0.8, (adoption,))
    p1 = 0.0389 * (1 + 0.5 * adoption)
    h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(0.0389))
    assert design.leads_per_arm == math.ceil(2 * ((Z(0.975) + Z(0.8)) / h) ** 2)
    assert low <= (design.leads_per_arm or 0) <= high
    assert design.weeks == pytest.approx(round(2 * design.leads_per_arm / 550, 1))


def test_ratio_variance_matches_the_data_it_was_measured_on() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(20_000) < 0.04).astype(int)
    d = np.where(y == 1, rng.integers(1, 4, y.size), rng.integers(1, 7, y.size))
    frame = pd.DataFrame({"mql": y, "n_dials": d, "owner_id": rng.integers(0, 20, y.size)})
    m = measure_moments(frame)
    ratio, var = m.lead_variance(m.mql_rate)
    assert ratio == pytest.approx(y.sum() / d.sum())
    direct = np.var(y - ratio * d) / d.mean() ** 2
    assert var == pytest.approx(direct, rel=1e-9)
    assert m.lead_variance(m.rate_for_ratio(1.5 * ratio))[0] == pytest.approx(1.5 * ratio)


def test_design_effect_solution_and_the_unreachable_case() -> None:
    assert cluster_leads_per_arm(1000.0, 0.0, 20) == (1000.0, 1.0)
    total, deff = cluster_leads_per_arm(1000.0, 0.005, 20)
    assert total is not None
    assert total == pytest.approx(1000 * (1 + (total / 10 - 1) * 0.005))
    assert deff == pytest.approx(total / 1000)
    assert cluster_leads_per_arm(1000.0, 0.02, 20) == (None, math.inf)


def test_anova_icc_recovers_a_known_intra_class_correlation() -> None:
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(200), rng.integers(20, 60, 200))
    effect = rng.normal(0, math.sqrt(0.1), 200)[groups]
    values = effect + rng.normal(0, math.sqrt(0.9), groups.size)
    assert anova_icc(values, groups) == pytest.approx(0.1, abs=0.03)
    assert anova_icc(rng.normal(size=groups.size), groups) < 0.01


# ------------------------------------------------------------------------- delta method
def test_delta_method_se_matches_monte_carlo() -> None:
    rng = np.random.default_rng(11)
    n, reps = 3000, 400

    def draw() -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(n) < 0.05).astype(int)
        return y, rng.poisson(np.where(y == 1, 2.0, 3.5)) + 1

    ratios, ses = [], []
    for _ in range(reps):
        est = ratio_estimate(*draw())
        ratios.append(est.ratio)
        ses.append(est.se)
    assert np.mean(ses) == pytest.approx(np.std(ratios, ddof=1), rel=0.1)


def test_cluster_se_uses_cluster_totals() -> None:
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1])
    d = np.array([2, 3, 1, 2, 4, 2, 3, 1])
    clusters = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    est = ratio_estimate(y, d, clusters)
    yc, dc = np.array([1, 1, 0, 1]), np.array([5, 3, 6, 4])
    r = yc.sum() / dc.sum()
    assert est.n_units == 4 and est.n_leads == 8
    assert est.se == pytest.approx(np.sqrt(np.var(yc - r * dc, ddof=1) / 4) / dc.mean())


def test_lift_interval_and_p_value_agree() -> None:
    rng = np.random.default_rng(2)
    for shift in (1.0, 1.3, 1.8):
        yt = (rng.random(4000) < 0.04 * shift).astype(int)
        yc = (rng.random(4000) < 0.04).astype(int)
        lift = compare_ratios(
            ratio_estimate(yt, np.full(4000, 3)), ratio_estimate(yc, np.full(4000, 3))
        )
        assert (lift.ci_low > 0 or lift.ci_high < 0) == (lift.p_value < 0.05)
        assert lift.ci_low < lift.lift < lift.ci_high


def test_few_clusters_use_student_t_and_an_equivalent_z() -> None:
    rng = np.random.default_rng(4)
    yt, yc = rng.poisson(3.0, 10), rng.poisson(2.0, 10)
    dt, dc = yt + rng.poisson(100, 10), yc + rng.poisson(100, 10)
    treat, control = ratio_estimate(yt, dt), ratio_estimate(yc, dc)
    normal, student = compare_ratios(treat, control), compare_ratios(treat, control, df=18)
    assert student.p_value == pytest.approx(2 * stats.t.sf(abs(normal.z), 18))
    assert student.p_value > normal.p_value
    assert abs(student.z) == pytest.approx(stats.norm.isf(student.p_value / 2))
    assert student.ci_high - student.ci_low > normal.ci_high - normal.ci_low


# ----------------------------------------------------------------------------- assignment
def _units(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"unit_id": [f"00Q{i:012d}" for i in range(n)], "stratum": rng.choice(["a", "b", "c"], n)}
    )


def test_assignment_is_reproducible_order_free_and_blocked() -> None:
    units = _units(1001)
    first = assign_units(units, "salt", 42)
    shuffled = assign_units(units.sample(frac=1, random_state=1), "salt", 42)
    assert first.set_index("unit_id")["arm"].equals(
        shuffled.set_index("unit_id")["arm"].loc[first["unit_id"]]
    )
    counts = first.groupby(["stratum", "arm"]).size().unstack()
    assert (abs(counts["treatment"] - counts["control"]) <= 1).all()
    other = assign_units(units, "another salt", 42)
    assert 0.35 < (other["arm"] != first["arm"]).mean() < 0.65


def test_unit_hash_is_a_stable_uniform() -> None:
    assert unit_hash("00Q000000000001", "leadscore-ab", 42) == unit_hash(
        "00Q000000000001", "leadscore-ab", 42
    )
    draws = np.array([unit_hash(str(i), "s", 1) for i in range(5000)])
    assert stats.kstest(draws, "uniform").pvalue > 0.01


def test_each_unit_is_treated_half_the_time_across_salts() -> None:
    units = _units(41)
    treated = np.mean(
        [assign_units(units, f"salt{s}", 7)["arm"].eq("treatment").to_numpy() for s in range(200)],
        axis=0,
    )
    assert np.all(np.abs(treated - 0.5) < 0.1)


def test_control_rows_carry_the_arm_and_no_score(tmp_path: pytest.TempPathFactory) -> None:
    rows = pd.DataFrame(
        {
            "lead_id": ["00Q8Dn0000000GRUAY", "00Q8Dn0000000GdUAI", "00Q8Dn0000000GrUAI"],
            "score": [90, 40, 12], "probability": [0.2, 0.05, 0.01],
            "bucket": ["Very Hot", "Warm", "Cold"], "tier": ["A", "B", "C"],
            "drivers_text": ["x", "y", "z"], "model_version": ["m1"] * 3,
            "scored_at": [pd.Timestamp("2025-11-01", tz="UTC")] * 3,
        }
    )  # fmt: skip
    arms = pd.DataFrame({"lead_id": rows["lead_id"][:2], "arm": ["treatment", "control"]})
    out = blank_control_rows(rows, arms)
    assert out.loc[1, ["score", "probability", "bucket", "tier", "drivers_text"]].isna().all()
    assert out.loc[0, "score"] == 90 and out.loc[2, "score"] == 12
    assert out["ab_arm"].tolist()[:2] == ["treatment", "control"]
    path = write_upsert_csv(out, tmp_path / "up.csv", experiment_fields())  # type: ignore[operator]
    assert validate_upsert_csv(path, experiment_fields()) == []
    assert rows.loc[1, "score"] == 40  # input untouched


# ------------------------------------------------------------------------------ monitoring
def test_srm_flags_only_a_real_mismatch() -> None:
    assert not srm_check({"treatment": 5000, "control": 4950}).flagged
    check = srm_check({"treatment": 600, "control": 400})
    assert check.flagged
    assert check.p_value == pytest.approx(stats.chi2.sf(40.0, 1))


def test_standardized_difference_and_balance_table() -> None:
    t, c = np.array([1.0, 0, 1, 1]), np.array([0.0, 0, 1, 0])
    pooled = math.sqrt((np.var(t, ddof=1) + np.var(c, ddof=1)) / 2)
    assert standardized_difference(t, c) == pytest.approx((0.75 - 0.25) / pooled)
    covs = pd.DataFrame({"x": np.r_[t, c], "same": 1.0})
    rows = balance_table(covs, pd.Series(["treatment"] * 4 + ["control"] * 4))
    assert rows[0]["flagged"] and rows[1]["std_diff"] == 0.0


def test_adoption_matches_scipy_spearman_per_sga_day() -> None:
    rng = np.random.default_rng(0)
    ids = [f"L{i}" for i in range(120)]
    dials = pd.DataFrame(
        {
            "owner_id": rng.integers(0, 3, 300),
            "lead_id": [ids[i] for i in rng.integers(0, 120, 300)],
            "dial_ts": pd.Timestamp("2026-01-05", tz="UTC")
            + pd.to_timedelta(rng.choice(5 * 1440, 300, replace=False), unit="m"),
        }
    )
    scores = pd.Series(rng.integers(1, 20, 120).astype(float), index=ids)
    got = adoption_by_day(dials, scores).set_index(["owner_id", "day"])["rho"]
    firsts = (
        dials.assign(day=dials["dial_ts"].dt.floor("D"))
        .sort_values("dial_ts")
        .drop_duplicates(["owner_id", "day", "lead_id"])
    )
    n_checked = 0
    for key, group in firsts.groupby(["owner_id", "day"]):
        if len(group) >= 2:
            expected = stats.spearmanr(np.arange(len(group)), -scores[group["lead_id"]]).statistic
            assert got[key] == pytest.approx(expected, nan_ok=True)
            n_checked += 1
    assert n_checked == len(got) > 10


# -------------------------------------------------------------------------------- analysis
def _frame(n: int, lift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.where(np.arange(n) % 2 == 0, "treatment", "control")
    p = np.where(arm == "treatment", 0.04 * (1 + lift), 0.04)
    return pd.DataFrame(
        {
            "contact_ts": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(np.sort(rng.uniform(0, 60, n)), unit="D"),
            "matured": True,
            "mql": (rng.random(n) < p).astype(int),
            "n_dials": rng.integers(1, 7, n),
            "arm": arm,
            "stratum": rng.choice(["<$100M", ">$500M"], n),
        }
    )


def test_looks_happen_when_their_share_of_leads_has_matured() -> None:
    matured = pd.Series(pd.date_range("2026-01-01", periods=100, freq="D", tz="UTC"))
    times = look_times(matured, 200, (0.25, 0.5, 0.75, 1.0))
    assert times[0] == matured[49] and times[1] == matured[99] and times[2] is None


def test_a_large_effect_stops_early_and_no_effect_runs_to_the_end() -> None:
    big = analyze_experiment(_frame(8000, 1.5, 1), 4000)
    assert big.status == "stopped_early" and big.significant
    assert big.verdict.startswith("Ship")
    null = analyze_experiment(_frame(8000, 0.0, 2), 4000)
    assert null.status == "final" and not null.significant
    assert {s.segment for s in null.segments} == {"<$100M", ">$500M"}
    running = analyze_experiment(_frame(1000, 0.0, 3), 4000)
    assert running.status == "running" and running.verdict.startswith("Running")
