"""The pandas baseline of the benchmarks computes the same training set as the warehouse build.

A fair speed comparison needs the same answer: on the small world, every row, label, vintage
and catalog feature of ``benchmarks.pandas_pit`` must equal ``build_training_set``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from leadscore.catalog import load_catalog
from leadscore.config import load_settings
from leadscore.dataset import build_training_set
from leadscore.warehouse import open_warehouse

# benchmarks/ is not installed: make it importable however pytest is started
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import pandas_pit
from benchmarks.compare import compare_frames, read_warehouse_training_set


@pytest.fixture(scope="module")
def both_builds(small_world):  # type: ignore[no-untyped-def]
    cfg = load_settings(small_world.project / "leadscore.toml")
    catalog = load_catalog()
    wh = open_warehouse(cfg.warehouse)
    try:
        sql = build_training_set(
            wh, cfg, catalog, "asof", table="bench_test_training", exclusions_table="bench_test_ex"
        )
        reference = read_warehouse_training_set(wh, "bench_test_training")
        data = pandas_pit.read_tables(wh, cfg, catalog)
    finally:
        wh.close()
    assert cfg.dataset.as_of is not None
    built = pandas_pit.build_training_frame(
        data, catalog, cfg.dataset.as_of, cfg.dataset.label_window_days
    )
    return sql, reference, built, catalog


def test_pandas_baseline_equals_warehouse_build(both_builds) -> None:  # type: ignore[no-untyped-def]
    sql, reference, built, catalog = both_builds
    assert len(reference) == sql.n_rows > 100
    assert list(built.frame.columns) == list(reference.columns)
    assert set(pandas_pit.covered_features(catalog)) <= set(built.frame.columns)
    columns = [c for c in reference.columns if c != "lead_id"]
    comparison = compare_frames(built.frame, reference, columns)
    assert comparison.n_rows_only_left == comparison.n_rows_only_right == 0
    assert comparison.mismatches_by_column == {}
    assert comparison.n_mismatches == 0
    assert built.frame["lead_id"].tolist() == reference["lead_id"].astype(str).tolist()
    assert int(built.frame["target"].sum()) == sql.n_positives
    expected = {**sql.excluded, "negative_days": sql.n_negative_days}
    expected["right_censored"] = sql.n_censored
    assert built.excluded == {k: v for k, v in expected.items() if v}


def test_comparison_notices_a_changed_value(both_builds) -> None:  # type: ignore[no-untyped-def]
    _, reference, built, _ = both_builds
    changed = built.frame.copy()
    changed.loc[0, "AUM_per_Client"] = 1e6
    changed = changed.drop(index=1)
    comparison = compare_frames(changed, reference, ["AUM_per_Client"])
    assert comparison.n_rows_only_right == 1
    assert comparison.mismatches_by_column == {"AUM_per_Client": 1}


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    ("contact", "expected_quarter"),
    [
        ("2024-05-15", "2024-04-01"),  # tie on available_at: the later snapshot quarter wins
        ("2024-05-14 23:59", "2024-01-01"),  # just before the tie: the earlier vintage
        ("2024-02-15", None),  # before any vintage was available: no match
    ],
)
def test_as_of_join_ties_and_exact_matches(contact: str, expected_quarter: str | None) -> None:
    left = pd.DataFrame({"lead_id": ["a"], "RepCRD": pd.array([7], "Int64")})
    left["contact_ts"] = _ts(contact)
    right = pd.DataFrame(
        {
            "RepCRD": pd.array([7, 7, 7, 8], "Int64"),
            "snapshot_quarter": pd.to_datetime(
                ["2024-01-01", "2024-04-01", "2023-10-01", "2024-04-01"]
            ),
            "available_at": [
                _ts(t) for t in ("2024-03-01", "2024-05-15", "2024-05-15", "2024-01-01")
            ],
        }
    )
    joined = pandas_pit._as_of(left, right, "RepCRD", "reps")
    if expected_quarter is None:
        assert joined.empty
    else:
        assert joined["reps_snapshot_quarter"].tolist() == [pd.Timestamp(expected_quarter)]
