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


_UNITS = ["$M", "$", "%", "share", "years", "firms", None, "score", "$M per client", "index",
          "yrs", "percentage points", "isodow", "s"]  # fmt: skip


@pytest.mark.parametrize("unit", _UNITS)
def test_numbers_for_a_whole_column_equal_the_one_by_one_rendering(unit: str | None) -> None:
    """Rounding to tenths, to a whole and to two significant digits decides exact halves as
    Python does (the binary value, an exact tie to even); thousands separators; money at
    every suffix; the cases left to Python (tiny, huge, infinite, below $1K)."""
    from leadscore.explain.drivers import format_numbers, number_formatter

    rng = np.random.default_rng(11)
    tenths = (np.arange(-20_000, 20_000) + 0.5) / 10  # x.x5 and x.5: on or near a half
    values = np.concatenate([
        rng.normal(0, 1, 40_000), rng.normal(0, 300, 40_000),
        rng.lognormal(0, 7, 40_000) * rng.choice([-1, 1], 40_000),
        np.round(rng.uniform(-200, 200, 40_000), 2), tenths / 10, tenths, tenths * 1000,
        np.nextafter(tenths, np.inf), np.nextafter(tenths, -np.inf),
        rng.integers(-10**9, 10**9, 20_000).astype(float),
        [0.0, -0.0, np.inf, -np.inf, 0.95, 0.0995, 0.00995, 0.000999, 0.001, 0.125, 0.25,
         99.95, 999.5, 1000.5, 999_950.0, 949.5, 950.0, 1e15, 1e15 - 1, 2.0**52, 1e300,
         5e-324, 0.99995e12, 1.25e15, 123_456_789.5],
    ])  # fmt: skip
    for scaled in (values, values * 1e-6, values * 1e6):
        render = number_formatter(unit)
        expected = [render(v) for v in scaled.tolist()]
        assert format_numbers(scaled, unit).to_pylist() == expected


def test_one_sort_ranks_as_two_stable_sorts_even_with_ties() -> None:
    rng = np.random.default_rng(12)
    names = [f"f{i:02d}" for i in rng.permutation(20)]
    contrib = np.round(rng.normal(0, 1, (30_000, 20)), 1)  # many equal values
    contrib[rng.random(contrib.shape) < 0.3] = 0.0
    contrib[rng.random(contrib.shape) < 0.05] = -0.0
    by_name = np.argsort(np.asarray(names), kind="stable")
    ordered = contrib[:, by_name]
    for n_pos, n_neg in [(5, 3), (1, 1), (20, 20), (25, 2), (0, 3)]:
        up, down = rank_drivers(contrib, names, n_pos, n_neg)
        assert np.array_equal(up, by_name[np.argsort(-ordered, axis=1, kind="stable")[:, :n_pos]])
        assert np.array_equal(down, by_name[np.argsort(ordered, axis=1, kind="stable")[:, :n_neg]])


def test_phrases_carry_over_chunks_for_object_columns_of_mixed_types() -> None:
    """A value met in one chunk keeps its words in the next; 1, True and 1.0 stay apart even
    when a column mixes them; a missing value of each kind keeps its own JSON."""
    from leadscore.explain.assemble import Phrases, driver_cells

    names = ["mixed", "flag", "state"]
    contrib = pd.DataFrame(np.tile([[0.3, 0.2, -0.1]], (8, 1)), columns=names)
    df = pd.DataFrame(
        {
            "mixed": [1, True, 1.0, None, 1, True, float("nan"), pd.NA],
            "flag": [True, False, None, True, False, True, None, False],
            "state": ["NY", "CA", None, "NY", "TX", "CA", "NY", None],
        },
        dtype=object,
    )
    cfg = ScoreConfig(drivers_positive=2, drivers_negative=1, max_drivers_chars=255)
    catalog = load_catalog()
    expected = _one_row_at_a_time(contrib, df, cfg)
    phrases = Phrases(names, catalog)
    texts: list[str] = []
    jsons: list[str] = []
    for part in (slice(0, 3), slice(3, 8)):  # the second chunk reuses the first one's phrases
        folded = contrib.iloc[part]
        cells = driver_cells(folded, cfg)
        out = driver_columns(folded, df.iloc[part], catalog, cfg, phrases, cells)
        texts += out.texts
        jsons += out.jsons
    assert (texts, jsons) == expected


def test_the_column_formatter_renders_nearly_every_ordinary_number_itself() -> None:
    """The exactness test above holds only if the vectorized path does the work: ordinary
    values (not tiny, not below $1K) are rendered without the one-by-one fallback."""
    from leadscore.explain.drivers import _money_amounts, _plain_numbers

    rng = np.random.default_rng(13)
    values = np.concatenate([rng.normal(0, 300, 20_000), np.round(rng.uniform(1, 200, 20_000), 2)])
    assert _plain_numbers(values)[1].mean() > 0.99
    assert _money_amounts(np.abs(values) * 1e6)[1].mean() > 0.99  # $M of at least $1K


def test_a_failure_is_raised_without_computing_every_queued_chunk(
    trained_model: TrainedModel,
) -> None:
    from leadscore.explain.contributions import chunk_bounds, explain_rows

    bundle, df, catalog = trained_model.bundle, trained_model.frame, trained_model.catalog
    size = max(len(df) // 40, 1)
    computed: list[int] = []
    real = bundle.prepare_matrix

    def counting(rows: pd.DataFrame):  # type: ignore[no-untyped-def]
        computed.append(len(rows))
        return real(rows)

    def fails() -> None:
        raise RuntimeError("the caller's own work failed")

    object.__setattr__(bundle, "prepare_matrix", counting)  # this instance only
    try:
        with pytest.raises(RuntimeError, match="own work failed"):
            explain_rows(bundle, df, catalog, ScoreConfig(), chunk_rows=size, meanwhile=fails)
    finally:
        object.__delattr__(bundle, "prepare_matrix")
    assert len(chunk_bounds(len(df), size)) > 20
    assert len(computed) < len(chunk_bounds(len(df), size)) // 2  # the queued ones were dropped
