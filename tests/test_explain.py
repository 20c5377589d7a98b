from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import leadscore.explain.contributions as contributions_module
import leadscore.explain.shap as shap_module
from conftest import TrainedModel
from leadscore.catalog import calibration_segment, load_catalog
from leadscore.config import ScoreConfig
from leadscore.explain.contributions import (
    ExplainedRows,
    compute_contributions,
    fold_contributions,
    source_features,
)
from leadscore.explain.drivers import Driver, display_of, driver_text, format_value, join_drivers
from leadscore.explain.shap import (
    SummaryPlot,
    compare_with_reference,
    explain_model,
    global_importance,
    growth_trajectory,
    lead_drivers,
    plot_rows,
)
from leadscore.report.explain import render_shap_summary


def _frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A small labelled frame with a numeric, a bool and a category feature."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "lead_id": [f"L{i:04d}" for i in range(n)],
            "aum": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(4.5, 1.0, n).round(1)),
            "has_cfp": rng.random(n) < 0.4,
            "metro": rng.choice(["NYC", "Dallas", "Other"], n),
            "aum_tier": rng.choice(calibration_segment().values[:3], n),
        }
    )
    logit = -2 + 1.2 * df["has_cfp"] - 0.01 * df["aum"].fillna(100) - 0.8 * (df["metro"] == "NYC")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return df, y


def test_contributions_plus_bias_equal_the_margin_for_every_row(
    trained_model: TrainedModel,
) -> None:
    bundle, df = trained_model.bundle, trained_model.frame
    contrib = compute_contributions(bundle, df)
    margin = bundle.predict_margin(df)
    assert contrib.values.shape == (len(df), len(bundle.features))
    assert contrib.columns == tuple(bundle.features)
    np.testing.assert_allclose(contrib.values.sum(axis=1) + contrib.bias, margin, atol=1e-5)
    folded = fold_contributions(contrib, bundle.features, df.index)
    assert list(folded.columns) == bundle.features
    np.testing.assert_allclose(folded.sum(axis=1) + contrib.bias, margin, atol=1e-5)


def test_contributions_of_a_bundle_with_native_categoricals_add_up(tmp_path: Path) -> None:
    from test_score import make_bundle  # the real Bundle, real Preprocessor

    df, y = _frame(400, seed=2)
    types = {"aum": "numeric", "has_cfp": "bool", "metro": "category"}
    bundle = make_bundle(df, list(types), types, y, tmp_path)
    contrib = compute_contributions(bundle, df)
    assert contrib.columns == tuple(types)
    np.testing.assert_allclose(contrib.margin, bundle.predict_margin(df), atol=1e-5)


@pytest.mark.parametrize(
    ("column", "source"),
    [
        ("metro=NYC", "metro"),
        ("metro_area__Dallas", "metro_area"),
        ("aum", "aum"),
        ("Metro_NYC", "Metro_NYC"),  # a feature in its own right is never folded
        ("unknown_col", "unknown_col"),
    ],
)
def test_source_features(column: str, source: str) -> None:
    features = ["aum", "metro", "metro_area", "Metro_NYC"]
    assert source_features([column], features)[column] == source


def test_global_importance_ranks_folded_features(trained_model: TrainedModel) -> None:
    bundle, df = trained_model.bundle, trained_model.frame
    folded = fold_contributions(compute_contributions(bundle, df), bundle.features, df.index)
    table = global_importance(folded)
    assert list(table.columns) == ["rank", "feature", "mean_abs_shap", "share"]
    assert table["rank"].tolist() == list(range(1, len(bundle.features) + 1))
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert table["share"].sum() == pytest.approx(1.0)
    assert set(table["feature"]) == set(bundle.features)
    expected = folded.abs().mean()
    for row in table.itertuples():
        assert row.mean_abs_shap == pytest.approx(expected[str(row.feature)])


# ------------------------------------------------------------------------ driver texts
@pytest.mark.parametrize(
    ("label", "unit", "value", "text"),
    [
        ("Firm AUM under $100M", "$M", 62.0, "Firm AUM under $100M: $62M"),
        ("Firm AUM", "$M", 1250.0, "Firm AUM: $1.2B"),
        ("Firm AUM", "$M", 0.5, "Firm AUM: $500K"),
        ("Contacted on a {value}", "isodow", 6, "Contacted on a Saturday"),
        ("CFP holder", "", True, "CFP holder"),
        ("CFP holder", "", False, "CFP holder: no"),
        ("Firm AUM growth", "%", 12.34, "Firm AUM growth: 12.3%"),
        ("Years in the industry", "years", 1.0, "Years in the industry: 1 year"),
        ("Firm AUM per client", "$M per client", 1.5, "Firm AUM per client: $1.5M per client"),
        ("Home state", "", "CA", "Home state: CA"),
        ("Years at firm", "years", None, "Years at firm: unknown"),
        ("Advisors in the branch", "advisors", 12, "Advisors in the branch: 12 advisors"),
    ],
)
def test_driver_text(label: str, unit: str, value: Any, text: str) -> None:
    assert driver_text(label, unit, value) == text


def test_real_catalog_gives_display_name_and_unit() -> None:
    catalog = load_catalog()
    assert display_of(catalog, "TotalAssetsInMillions") == ("Firm assets under management", "$M")
    assert display_of(catalog, "Has_CFP")[1] == "flag"  # a bool feature reads as words
    assert display_of(catalog, "no_such_feature") == ("no_such_feature", None)
    assert format_value(float("nan"), "$M") == "unknown"


def test_lead_drivers_pick_top_positive_and_negative(trained_model: TrainedModel) -> None:
    bundle, df, catalog = trained_model.bundle, trained_model.frame, trained_model.catalog
    folded = fold_contributions(compute_contributions(bundle, df), bundle.features, df.index)
    cfg = ScoreConfig(drivers_positive=2, drivers_negative=1)
    rows = lead_drivers(folded, df, catalog, cfg)
    assert len(rows) == len(df)
    for (pos, neg, text), (_, contrib) in zip(rows, folded.iterrows(), strict=True):
        ranked = contrib[contrib > 0].sort_values(ascending=False, kind="stable")
        assert [d.contribution for d in pos] == pytest.approx(ranked.iloc[:2].tolist())
        lowest = contrib[contrib < 0].sort_values(kind="stable")
        assert [d.contribution for d in neg] == pytest.approx(lowest.iloc[:1].tolist())
        assert all(d.contribution > 0 for d in pos) and all(d.contribution < 0 for d in neg)
        for d in pos + neg:  # words from the catalog's display name and unit
            assert d.text == driver_text(*display_of(catalog, d.feature), d.value)
        assert len(text) <= 255


@pytest.mark.parametrize("max_chars", [255, 120, 40, 20])
def test_joined_drivers_always_fit(max_chars: int) -> None:
    long = "An extraordinarily verbose display name that goes on and on " * 3
    pos = [Driver(f"f{i}", f"{long}{i}: $62M", 62.0, 0.5 - i / 10) for i in range(5)]
    neg = [Driver(f"g{i}", f"Big metro {i}: NYC", "NYC", -0.3 + i / 10) for i in range(3)]
    text = join_drivers(pos, neg, max_chars)
    assert 0 < len(text) <= max_chars
    short = [Driver("a", "CFP holder", True, 0.31)]
    assert join_drivers(short, [], 255) == "Up: CFP holder (+0.31)"
    both = join_drivers(short, [Driver("b", "Home metro: NYC", "NYC", -0.2)], 255)
    assert both == "Up: CFP holder (+0.31) | Down: Home metro: NYC (-0.20)"


def test_join_drops_weakest_drivers_first() -> None:
    pos = [Driver(f"p{i}", f"positive driver {i}", 1, 1.0 - i / 10) for i in range(5)]
    neg = [Driver(f"n{i}", f"negative driver {i}", 1, -1.0 + i / 10) for i in range(3)]
    text = join_drivers(pos, neg, 110)
    assert "positive driver 0" in text and "negative driver 0" in text
    assert "positive driver 4" not in text


# ------------------------------------------------------------------------ reference model
def _importance(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"rank": range(1, len(names) + 1), "feature": names,
         "mean_abs_shap": np.linspace(1, 0.1, len(names))}
    )  # fmt: skip


def test_compare_with_reference_figures() -> None:
    ref = pd.DataFrame({"rank": [1, 2, 3, 4, 5], "feature": ["A", "B", "C", "D", "GONE"]})
    ours = _importance(["b", "A", "D", "C", "NEW"])  # case differs for B
    cmp = compare_with_reference(ours, ref)
    assert cmp.previous_top == "A" and cmp.previous_top_rank_now == 2
    assert not cmp.previous_top_still_top and cmp.our_top == "b"
    assert cmp.n_shared == 4 and cmp.missing_from_ours == ["GONE"]
    assert cmp.overlap_top10 == ["A", "B", "C", "D"] and cmp.top10_size == 5
    assert cmp.new_in_our_top25 == ["NEW"]
    assert cmp.rose[0] == {"feature": "B", "reference_rank": 2, "our_rank": 1, "change": 1}
    assert {m["feature"] for m in cmp.fell} == {"A", "C"}
    # Spearman over the shared ranks: (1,2,3,4) vs (2,1,4,3)
    assert cmp.spearman == pytest.approx(0.6)


def test_compare_with_the_m5_reference_file() -> None:
    from importlib import resources

    from leadscore.explain.shap import load_reference

    # the packaged reference ranking (reference/m5_importance.csv)
    path = Path(str(resources.files("leadscore") / "reference" / "m5_importance.csv"))

    ref = load_reference(path)
    same = _importance(ref["feature"].tolist())
    cmp = compare_with_reference(same, ref)
    assert cmp.previous_top == "Multi_RIA_Relationships" and cmp.previous_top_still_top
    assert cmp.spearman == pytest.approx(1.0) and len(cmp.overlap_top10) == 10


# ------------------------------------------------------------------------ cohorts, end to end
@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"Positive_Growth_Trajectory": [1, 0, None], "Accelerating_Growth": [1, 1, 0]},
         ["Positive, accelerating", "Not positive, accelerating", "Unknown"]),
        ({"AUMGrowthRate_1Year": [3.0, -1.0, None]},
         ["Growing (1y > 0)", "Shrinking (1y < 0)", "Unknown"]),
        ({"x": [1, 2, 3]}, ["Unknown"] * 3),
    ],
)  # fmt: skip
def test_growth_trajectory(columns: dict[str, list[Any]], expected: list[str]) -> None:
    assert growth_trajectory(pd.DataFrame(columns)).tolist() == expected


def test_explain_model_writes_every_report(trained_model: TrainedModel, tmp_path: Path) -> None:
    bundle, df, catalog = trained_model.bundle, trained_model.frame, trained_model.catalog
    first, second = bundle.features[:2]
    ref = tmp_path / "ref.csv"
    ref.write_text(f"rank,feature,gain\n1,{first},0.3\n2,{second},0.2\n3,Gone_Feature,0.1\n")
    result = explain_model(bundle, df, catalog, ref, tmp_path / "reports")
    assert result.model_version == bundle.version
    assert result.max_additivity_error < 1e-4
    for key in ("importance_csv", "summary_png", "comparison_md", "comparison_json",
                "cohort_md", "cohort_json", "drivers", "summary_json"):  # fmt: skip
        assert result.paths[key].exists(), key
    assert result.paths["summary_png"].read_bytes()[:4] == b"\x89PNG"
    csv = pd.read_csv(result.paths["importance_csv"])
    assert csv["feature"].tolist() == result.importance["feature"].tolist()
    assert result.comparison is not None
    assert result.comparison.missing_from_ours == ["Gone_Feature"]
    md = result.paths["comparison_md"].read_text()
    assert "Previous #1 still #1?" in md and f"`{first}`" in md
    cohorts = json.loads(result.paths["cohort_json"].read_text())
    assert set(cohorts) == {*catalog.segment_names(), "growth_trajectory"}
    tiers = {row["cohort"]: row for row in cohorts["aum_tier"]}
    assert set(tiers) <= set(calibration_segment().values)
    # cohorts are measured on the holdout only: out-of-sample probabilities
    held = df[df["lead_id"].astype(str).isin(set(bundle.folds.holdout_ids))]
    assert 0 < len(held) < len(df)
    assert sum(r["n"] for r in tiers.values()) == len(held)
    metro = {row["cohort"]: row for row in cohorts["metro_area"]}
    for area, row in metro.items():
        assert row["conversion_rate"] == pytest.approx(
            held[held["metro_area"] == area]["target"].mean()
        )
    assert f"{len(held):,} holdout leads" in result.paths["cohort_md"].read_text()
    growth = ("Growing", "Shrinking", "Flat", "Positive", "Not positive")
    assert cohorts["growth_trajectory"][0]["cohort"].startswith(growth)
    assert "## By firm AUM tier" in result.paths["cohort_md"].read_text()
    drivers = pd.read_parquet(result.paths["drivers"])
    assert len(drivers) == len(df) and drivers["drivers_text"].str.len().max() <= 255


def test_explain_model_without_reference(trained_model: TrainedModel, tmp_path: Path) -> None:
    bundle, df, catalog = trained_model.bundle, trained_model.frame, trained_model.catalog
    result = explain_model(bundle, df.head(50), catalog, None, tmp_path)
    assert result.comparison is None and "comparison_md" not in result.paths


def test_bool_feature_reads_as_words_even_as_a_number() -> None:
    from leadscore.catalog import load_catalog
    from leadscore.explain.drivers import display_of, driver_text

    label, unit = display_of(load_catalog(), "Has_CFP")
    assert driver_text(label, unit, 1.0) == label
    assert driver_text(label, unit, 0.0) == f"{label}: no"


def _summary_parts(
    trained_model: TrainedModel,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    bundle, df = trained_model.bundle, trained_model.frame
    folded = fold_contributions(compute_contributions(bundle, df), bundle.features, df.index)
    return df, folded, global_importance(folded)


def _counting_render(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    drawn: list[list[str]] = []
    real = shap_module._render

    def counted(folded: pd.DataFrame, values: pd.DataFrame, top: list[str]) -> bytes:
        drawn.append(list(top))
        return real(folded, values, top)

    monkeypatch.setattr(shap_module, "_render", counted)
    return drawn


def _summary_png(
    trained_model: TrainedModel,
    parts: list[pd.DataFrame],
    importance: pd.DataFrame,
    final: pd.DataFrame,
    top_n: int = 5,
) -> bytes:
    with ThreadPoolExecutor(2) as pool:
        plot = SummaryPlot(trained_model.bundle, trained_model.frame, top_n, pool)
        for part in parts:
            plot.add(ExplainedRows(None, part, None, None))  # type: ignore[arg-type]
        return plot.finish(importance, final).result()


def test_summary_plot_drawn_early_is_kept_when_the_final_ranking_is_the_same(
    trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    df, folded, importance = _summary_parts(trained_model)
    parts = [folded.iloc[:-1], folded.iloc[-1:]]  # the early ranking: every row but the last
    top = importance.head(5)["feature"].tolist()
    assert global_importance(parts[0]).head(5)["feature"].tolist() == top
    drawn = _counting_render(monkeypatch)
    png = _summary_png(trained_model, parts, importance, folded)
    shown = plot_rows(len(df))
    assert drawn == [top]  # drawn once, early, from every row but the last
    assert png == render_shap_summary(folded.iloc[shown], df.iloc[shown], top)


def test_summary_plot_is_drawn_again_when_the_early_ranking_differs(
    trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    df, folded, importance = _summary_parts(trained_model)
    half = (len(folded) + 1) // 2  # at least half the rows: the early plot is drawn
    top = importance.head(5)["feature"].tolist()
    # the first half as if the final #1 had contributed nothing: another feature leads early
    early = folded.iloc[:half].assign(**{top[0]: 0.0})
    drawn = _counting_render(monkeypatch)
    png = _summary_png(trained_model, [early, folded.iloc[half:]], importance, folded)
    shown = plot_rows(len(df))
    assert len(drawn) == 2 and top in drawn and any(d != top for d in drawn)  # in any order
    assert png == render_shap_summary(folded.iloc[shown], df.iloc[shown], top)


def test_summary_plot_is_drawn_again_when_the_shown_rows_differ(
    trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    df, folded, importance = _summary_parts(trained_model)
    top = importance.head(5)["feature"].tolist()
    final = folded.assign(**{top[0]: folded[top[0]] * 0.5})  # same order, other dots
    assert global_importance(final).head(5)["feature"].tolist() == top
    drawn = _counting_render(monkeypatch)
    png = _summary_png(trained_model, [folded.iloc[:-1], folded.iloc[-1:]], importance, final)
    shown = plot_rows(len(df))
    assert drawn == [top, top]
    assert png == render_shap_summary(final.iloc[shown], df.iloc[shown], top)


def test_explain_model_in_chunks_writes_the_plot_of_one_pass(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, df, catalog = trained_model.bundle, trained_model.frame, trained_model.catalog
    one = explain_model(bundle, df, catalog, None, tmp_path / "one")
    size = len(df) // 6
    monkeypatch.setattr(contributions_module, "CHUNK_ROWS", size)
    # the early plot's ranking: that of the first chunks holding at least half the rows
    _, folded, importance = _summary_parts(trained_model)
    stops = [stop for _, stop in contributions_module.chunk_bounds(len(df), size)]
    half = next(stop for stop in stops if 2 * stop >= len(df))
    early = global_importance(folded.iloc[:half]).head(30)["feature"].tolist()
    final = importance.head(30)["feature"].tolist()
    drawn = _counting_render(monkeypatch)
    chunked = explain_model(bundle, df, catalog, None, tmp_path / "chunked")
    # drawn early from the first half; again only when that ranking is not the final one
    assert sorted(drawn) == sorted([early] if early == final else [early, final])
    for key in ("summary_png", "drivers", "importance_csv", "cohort_json"):
        assert chunked.paths[key].read_bytes() == one.paths[key].read_bytes(), key


def test_holdout_rows_of_leads_with_and_without_an_id(trained_model: TrainedModel) -> None:
    bundle, df = trained_model.bundle, trained_model.frame
    held_id = sorted(bundle.folds.holdout_ids)[0]
    rows = pd.DataFrame({"lead_id": [held_id, "not-a-lead", None]})
    assert shap_module._holdout_rows(bundle, rows).tolist() == [True, False, False]
    assert shap_module._holdout_rows(bundle, rows.iloc[1:]).tolist() == [True, True]  # none held
    in_frame = set(bundle.folds.holdout_ids) & set(df["lead_id"].astype(str))
    assert shap_module._holdout_rows(bundle, df).sum() == len(in_frame) > 0
