"""The pandas baseline of the benchmarks computes the same training set as the warehouse build.

A fair speed comparison needs the same answer: on the small world, every row, label, vintage
and catalog feature of ``benchmarks.pandas_pit`` must equal ``build_training_set``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


def test_benchmarks_page_is_generated_whole_from_results(tmp_path: Path) -> None:
    from benchmarks.report import update_markdown
    from benchmarks.scoring import ratios

    paths = [
        {"path": name, "n_rows": n, "seconds": s, "cpu_seconds": c,
         "scores_per_second": n / s, "ratio_to_floor": s / 0.1}
        for name, n, s, c in [
            ("booster.predict (floor)", 1000, 0.1, 0.1),
            ("booster.predict pred_contribs", 1000, 2.0, 3.0),
            ("check_rows (rows as built)", 1000, 0.004, 0.004),
            ("score_frame (with drivers)", 1000, 5.0, 5.0),
        ]
    ]  # fmt: skip
    explain = {"n_rows": 900, "explain_s": 3.0, "explain_cpu_s": 7.0, "treeshap_s": 2.0,
               "treeshap_cpu_s": 3.0}  # fmt: skip
    scoring = {"n_rows": 1000, "n_features": 3, "repeats": 3, "paths": paths, "explain": explain}
    scoring["targets"] = ratios(scoring, explain)
    results = {
        "scale": 1.0, "seed": 42, "command": "python -m benchmarks.run", "stages": [],
        "machine": {"date": "d", "cpu_model": "c", "nproc": 2, "memory_gib": 1, "os": "o",
                    "python": "3", "packages": {}, "load_average_start": [1.0, 2.0, 3.0]},
        "scoring": scoring, "train_steps": {"tuning": {"seconds": 1.5, "start_rss_mib": 10.0,
                                                       "peak_rss_mib": 12.0}},
    }  # fmt: skip
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\n## Notes on this run\n\nA stale hand-written figure.\n")
    update_markdown(page, results)
    text = page.read_text()
    assert "stale" not in text  # nothing survives that the results did not produce
    assert "| scoring with drivers / raw pred_contribs throughput (wall) | 0.400 | >= 0.50 " \
        "| **no** |" in text  # fmt: skip
    assert "| row checks, rows/s (wall) | 250,000.000 | >= 200,000 | yes |" in text
    assert "| row checks, rows/s (CPU) | 250,000.000 | >= 200,000 | yes |" in text
    assert "| explain / TreeSHAP time (CPU) | 2.333 | <= 2.0 | **no** |" in text
    assert "| tuning | 1.50 | 10 | 12 |" in text
    assert "Daily job: not measured in this run." in text


def test_ingest_benchmark_loads_the_same_files_and_leaves_the_project_alone(small_world) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.ingest import measure_ingest

    cfg = load_settings(small_world.project / "leadscore.toml")
    report = small_world.project / "reports" / "ingest" / "quality.json"
    before = report.read_bytes() if report.exists() else None
    result = measure_ingest(small_world.raw, cfg)
    delivered = [*small_world.raw.glob("vendor/*.csv"), *small_world.raw.glob("crm/*.csv")]
    assert result["n_files"] == len(delivered) > 2
    assert result["ingest_cpu_s"] > 0 and result["duckdb_typed_load_cpu_s"] > 0
    assert result["ratio_cpu"] == round(
        result["ingest_cpu_s"] / result["duckdb_typed_load_cpu_s"], 3
    )
    assert (report.read_bytes() if report.exists() else None) == before
    assert not list(small_world.raw.parent.glob("bench_*"))  # scratch warehouses removed


def test_daily_targets_name_the_ordinary_and_the_vintage_day() -> None:
    from benchmarks.daily import summarize
    from benchmarks.report import _targets_lines

    def day(as_of: str, wall: float, cpu: float, vintage: bool) -> dict[str, object]:
        return {"as_of": as_of, "wall_s": wall, "cpu_s": cpu, "vintage_delivered": vintage}

    days = [day("2025-11-02", 4.0, 3.0, False), day("2025-11-03", 12.0, 3.5, False),
            day("2025-11-17", 9.0, 8.0, True)]  # fmt: skip
    summary = summarize(days)  # type: ignore[arg-type]
    assert summary["ordinary"]["max_wall_s"] == 12.0 and not summary["ordinary"]["met_wall"]
    assert summary["ordinary"]["met_cpu"] and summary["vintage"]["met_wall"]
    text = "\n".join(_targets_lines({"daily": {"days": days}}))
    assert (
        "| daily job per process, ordinary day (slowest), s (wall) | 12.000 | <= 10 | **no** |"
        in text
    )
    assert "| daily job per process, vendor-vintage day, s (CPU) | 8.000 | <= 10 | yes |" in text


def test_best_times_leaves_the_warmup_rounds_untimed() -> None:
    import time

    from benchmarks.scoring import best_times

    calls: list[str] = []

    def path(name: str, first_sleep: float) -> tuple[Any, Any]:
        def run(_: object) -> None:
            calls.append(name)
            if calls.count(name) == 1:  # the first run of a path is slow
                time.sleep(first_sleep)

        return run, lambda: None

    times = best_times(2, {"a": path("a", 0.3), "b": path("b", 0.3)}, warmup=1)
    assert calls == ["a", "b", "a", "b", "a", "b"]  # a round of each in turn, warm-up first
    assert times["a"][0] < 0.3 and times["b"][0] < 0.3
