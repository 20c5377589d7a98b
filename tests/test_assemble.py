"""Drivers for many rows at once give, row by row, what the one-row path gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import TrainedModel
from leadscore.catalog import load_catalog
from leadscore.config import ScoreConfig
from leadscore.explain.assemble import driver_columns, rank_drivers
from leadscore.explain.contributions import compute_contributions, fold_contributions
from leadscore.explain.drivers import fit_items, pick_drivers
from leadscore.explain.shap import drivers_json, lead_drivers


def _one_row_at_a_time(
    folded: pd.DataFrame, df: pd.DataFrame, cfg: ScoreConfig
) -> tuple[list[str], list[str]]:
    rows = lead_drivers(folded, df, load_catalog(), cfg)
    return [text for _, _, text in rows], [drivers_json(pos, neg) for pos, neg, _ in rows]


@pytest.mark.parametrize(
    ("n_pos", "n_neg", "max_chars"), [(5, 3, 255), (5, 3, 120), (3, 2, 40), (2, 1, 20)]
)
def test_many_rows_equal_one_row_at_a_time(
    trained_model: TrainedModel, n_pos: int, n_neg: int, max_chars: int
) -> None:
    bundle, df = trained_model.bundle, trained_model.frame
    folded = fold_contributions(compute_contributions(bundle, df), bundle.features, df.index)
    cfg = ScoreConfig(drivers_positive=n_pos, drivers_negative=n_neg, max_drivers_chars=max_chars)
    fast = driver_columns(folded, df, trained_model.catalog, cfg)
    texts, jsons = _one_row_at_a_time(folded, df, cfg)
    assert fast.texts == texts
    assert fast.jsons == jsons
    assert all(len(t) <= max_chars for t in fast.texts)


def test_odd_values_and_ties_give_the_same_words_and_json() -> None:
    """Ties in contribution, -0.0 and 0.0, 1 and True, NaN, None, text and a timestamp."""
    names = ["b_flag", "a_num", "c_text", "d_when", "e_zero"]
    contrib = pd.DataFrame(
        [
            [0.5, 0.5, -0.2, -0.2, 0.0],
            [-0.0, 0.3, 0.3, -0.1, -0.4],
            [0.1, -0.3, 0.0, 0.2, 0.1],
            [0.1, -0.3, 0.0, 0.2, 0.1],
        ],
        columns=names,
    )
    df = pd.DataFrame(
        {
            "b_flag": [True, 1, None, np.bool_(False)],
            "a_num": [-0.0, 0.0, float("nan"), 1e9],
            "c_text": ["NYC", "caf\u00e9", None, 'quote " and \\'],
            "d_when": [pd.Timestamp("2025-01-02", tz="UTC"), pd.NaT, 3, np.int64(7)],
            "e_zero": [0, 1, 2, 3],
        },
        dtype=object,
    )
    cfg = ScoreConfig(drivers_positive=2, drivers_negative=2, max_drivers_chars=60)
    fast = driver_columns(contrib, df, load_catalog(), cfg)
    assert (fast.texts, fast.jsons) == _one_row_at_a_time(contrib, df, cfg)


def test_ranking_breaks_ties_by_feature_name() -> None:
    contrib = np.array([[0.2, 0.2, -0.1, 0.2, -0.1]])
    up, down = rank_drivers(contrib, ["d", "b", "e", "a", "c"], 3, 2)
    assert up.tolist() == [[3, 1, 0]]  # a, b, d: equal contributions in name order
    assert down.tolist() == [[4, 2]]  # c before e
    pos, neg = pick_drivers(dict(zip("dbeac", contrib[0], strict=True)), {}, load_catalog(), 3, 2)
    assert [d.feature for d in pos] == ["a", "b", "d"] and [d.feature for d in neg] == ["c", "e"]


def _greedy_by_rendering(ups: list[str], downs: list[str], max_chars: int) -> str:
    """The join as first written: render every trial line and keep what fits."""

    def render(kept: set[tuple[str, int]]) -> str:
        parts = []
        u = [x for i, x in enumerate(ups) if ("+", i) in kept]
        d = [x for i, x in enumerate(downs) if ("-", i) in kept]
        if u:
            parts.append("Up: " + "; ".join(u))
        if d:
            parts.append("Down: " + "; ".join(d))
        return " | ".join(parts)

    pos, neg, priority = (
        [("+", i) for i in range(len(ups))],
        [("-", i) for i in range(len(downs))],
        [],
    )
    while pos or neg:
        priority += pos[:2] + neg[:1]
        del pos[:2], neg[:1]
    kept: set[tuple[str, int]] = set()
    for key in priority:
        if len(render(kept | {key})) <= max_chars:
            kept = kept | {key}
    text = render(kept) if kept or not priority else render({priority[0]})
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


@pytest.mark.parametrize("max_chars", [8, 30, 45, 60, 90, 255])
@pytest.mark.parametrize(("n_up", "n_down"), [(0, 0), (5, 3), (0, 2), (3, 0), (1, 1)])
def test_fit_items_is_the_greedy_join(max_chars: int, n_up: int, n_down: int) -> None:
    ups = [f"positive {'x' * (7 * i)} (+0.{9 - i}0)" for i in range(n_up)]
    downs = [f"negative {'y' * (11 * i)} (-0.{5 - i}0)" for i in range(n_down)]
    text = fit_items(ups, downs, max_chars)
    assert text == _greedy_by_rendering(ups, downs, max_chars)
    assert len(text) <= max_chars


def test_two_decimal_signs_equal_python_formatting_including_near_halves() -> None:
    from leadscore.explain.assemble import _hundredths

    rng = np.random.default_rng(4)
    halves = (np.arange(-400, 400) + 0.5) / 100  # x.xx5: the product lands on or near a half
    values = np.concatenate([
        rng.normal(0, 0.4, 200_000), rng.normal(0, 40, 10_000), halves,
        np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf),
        [0.125, -0.375, 1e-9, -1e-9, 1e300, -1e20, 0.0, -0.0, np.inf, -np.inf, np.nan],
    ])  # fmt: skip
    assert _hundredths(values).to_pylist() == [format(v, "+.2f") for v in values.tolist()]


@pytest.mark.parametrize("chunk_rows", [7, 64])
def test_chunked_contributions_and_drivers_equal_one_pass(
    trained_model: TrainedModel, chunk_rows: int
) -> None:
    from leadscore.explain.contributions import explain_rows

    bundle, df, catalog = trained_model.bundle, trained_model.frame, trained_model.catalog
    cfg = ScoreConfig()
    whole = explain_rows(bundle, df, catalog, cfg, len(df) + 1)
    chunked = explain_rows(bundle, df, catalog, cfg, chunk_rows)
    assert len(df) > 2 * chunk_rows
    assert np.array_equal(chunked.contributions.values, whole.contributions.values)
    assert np.array_equal(chunked.contributions.bias, whole.contributions.bias)
    assert np.array_equal(chunked.margin, whole.margin)
    pd.testing.assert_frame_equal(chunked.folded, whole.folded)
    assert (chunked.drivers.texts, chunked.drivers.jsons) == (
        whole.drivers.texts,
        whole.drivers.jsons,
    )
    # and one pass equals the parts it is made of
    margin = bundle.predict_margin(df)
    assert np.array_equal(whole.margin, margin)
    folded = fold_contributions(compute_contributions(bundle, df), bundle.features, df.index)
    one = driver_columns(folded, df, catalog, cfg)
    assert (whole.drivers.texts, whole.drivers.jsons) == (one.texts, one.jsons)


def test_json_numbers_equal_json_dumps() -> None:
    import json

    from leadscore.explain.assemble import _json_numbers

    rng = np.random.default_rng(8)
    values = np.concatenate([
        rng.normal(0, 0.3, 100_000).astype(np.float32).astype(np.float64),
        10 ** rng.uniform(-8, 20, 100_000) * rng.choice([-1, 1], 100_000),
        [1e-4, 9.999999999999999e-05, 1e6, 999999.9999999999, 2.0, -0.0, 0.0, 1e16, 5e-324],
        [np.nan, np.inf, -np.inf],
    ])  # fmt: skip
    assert _json_numbers(values).to_pylist() == [json.dumps(v) for v in values.tolist()]


def test_float_columns_with_missing_whole_and_odd_values_give_the_same_words_and_json() -> None:
    names = ["AUM_per_IARep", "a_plain", "b_quote\\"]  # a catalog unit, none, a name to escape
    rng = np.random.default_rng(9)
    contrib = pd.DataFrame(rng.normal(0, 0.3, (40, 3)), columns=names)
    odd = [np.nan, np.inf, -np.inf, -0.0, 0.0, 3.0, 1e-7, 2.5e6, 1234567.25, 0.5]
    df = pd.DataFrame({name: np.resize(odd, 40) * (k + 1) for k, name in enumerate(names)})
    cfg = ScoreConfig(drivers_positive=2, drivers_negative=1, max_drivers_chars=255)
    fast = driver_columns(contrib, df, load_catalog(), cfg)
    assert (fast.texts, fast.jsons) == _one_row_at_a_time(contrib, df, cfg)
