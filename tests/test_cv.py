"""CV splits: time-ordered holdout, forward-chaining folds with a gap, persisted boundaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.train.cv import load_folds, make_splits, positions, save_folds


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01", tz="UTC")
    ts = start + pd.to_timedelta(rng.integers(0, 730 * 86400, n), unit="s")
    return pd.DataFrame({"lead_id": [f"L{i:05d}" for i in range(n)], "contact_ts": ts})


@pytest.mark.parametrize(("n_folds", "gap_days"), [(3, 0), (5, 30), (4, 60)])
def test_no_training_row_within_gap_before_test_fold(n_folds: int, gap_days: int) -> None:
    df = _frame()
    splits = make_splits(df, n_folds=n_folds, gap_days=gap_days, holdout_fraction=0.15)
    ts = df.set_index("lead_id")["contact_ts"]
    gap = pd.Timedelta(days=gap_days)
    assert len(splits.folds) == n_folds
    for fold in splits.folds:
        train_ts, test_ts = ts.loc[list(fold.train_ids)], ts.loc[list(fold.test_ids)]
        assert train_ts.max() < test_ts.min() - gap
        assert train_ts.max() < fold.test_start - gap
        assert test_ts.min() >= fold.test_start and test_ts.max() < fold.test_end
        assert not set(fold.train_ids) & set(fold.test_ids)
    holdout_ts = ts.loc[list(splits.holdout_ids)]
    dev_ts = ts.loc[list(splits.dev_ids)]
    assert dev_ts.max() < holdout_ts.min() - gap
    every_fold = {i for f in splits.folds for i in (*f.train_ids, *f.test_ids)}
    assert not every_fold & set(splits.holdout_ids)


def test_holdout_is_last_fraction_of_time_span_and_folds_expand() -> None:
    df = _frame()
    splits = make_splits(df, n_folds=4, gap_days=30, holdout_fraction=0.15)
    span = df["contact_ts"].max() - df["contact_ts"].min()
    assert splits.holdout_start == df["contact_ts"].max() - span * 0.15
    sizes = [len(f.train_ids) for f in splits.folds]
    assert sizes == sorted(sizes) and sizes[0] > 0
    starts = [f.test_start for f in splits.folds]
    assert starts == sorted(starts)
    for a, b in zip(splits.folds, splits.folds[1:], strict=False):
        assert a.test_end == b.test_start  # test blocks tile the development period


def test_folds_round_trip_through_json(tmp_path: Path) -> None:
    df = _frame(800)
    splits = make_splits(df, n_folds=3, gap_days=10)
    path = save_folds(splits, tmp_path / "folds.json")
    assert load_folds(path) == splits
    assert "train_end" in path.read_text()


def test_same_input_any_row_order_gives_same_splits() -> None:
    df = _frame(800)
    shuffled = df.sample(frac=1.0, random_state=1)
    assert make_splits(df, 3, 10) == make_splits(shuffled, 3, 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [("duplicate", "duplicates"), ("nat", "missing"), ("tiny", "development rows")],
)
def test_bad_input_is_refused(change: str, message: str) -> None:
    df = _frame(200)
    if change == "duplicate":
        df.loc[1, "lead_id"] = df.loc[0, "lead_id"]
    elif change == "nat":
        df["contact_ts"] = df["contact_ts"].astype(object)
        df.loc[3, "contact_ts"] = None
    else:
        df = df.head(5)
    with pytest.raises(ValueError, match=message):
        make_splits(df, n_folds=3, gap_days=0)


def test_positions_maps_ids_and_rejects_unknown() -> None:
    df = _frame(10)
    assert positions(df, ["L00003", "L00001"]).tolist() == [3, 1]
    with pytest.raises(KeyError):
        positions(df, ["nope"])
