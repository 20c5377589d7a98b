"""Benchmark stages that are not CLI commands, each run in its own process by ``run``.

``python -m benchmarks.stage pandas --config C --out J``: pandas baseline vs the warehouse build.
``python -m benchmarks.stage scoring --config C --out J``: scoring throughput vs the floor.
``python -m benchmarks.stage ingest --config C --out J --folder F``: ingest of a delivery folder
vs DuckDB's own typed load of the same files.
Each reads the benchmark workdir's warehouse and bundle and writes its figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import pandas_pit
from benchmarks.compare import compare_frames, read_warehouse_training_set
from benchmarks.scoring import measure_explain, measure_throughput, ratios, scoring_frame
from leadscore.catalog import load_catalog
from leadscore.config import Settings, load_settings
from leadscore.dataset import build_training_set
from leadscore.io import write_json
from leadscore.warehouse import open_warehouse

BENCH_TABLE = "bench_training_set"
BENCH_EXCLUSIONS = "bench_build_exclusions"


def best_of(n: int, fn: Callable[[], Any], clock: Callable[[], float]) -> tuple[float, Any]:
    """Shortest wall time of ``n`` calls of ``fn`` (and the last result)."""
    best, result = float("inf"), None
    for _ in range(n):
        start = clock()
        result = fn()
        best = min(best, clock() - start)
    return best, result


def run_pandas(cfg: Settings, repeats: int = 3) -> dict[str, Any]:
    """Time the pandas baseline and the warehouse build (same process, best of ``repeats``),
    and check on this data that both give the same training set."""
    catalog = load_catalog()
    wh = open_warehouse(cfg.warehouse)
    try:
        as_of, window = cfg.dataset.as_of, cfg.dataset.label_window_days
        if as_of is None:
            raise ValueError("the benchmark config sets [dataset] as_of")
        start = time.perf_counter()
        data = pandas_pit.read_tables(wh, cfg, catalog)
        read_s = time.perf_counter() - start
        pandas_s, built = best_of(
            repeats,
            lambda: pandas_pit.build_training_frame(data, catalog, as_of, window),
            time.perf_counter,
        )
        warehouse_s, sql_build = best_of(
            repeats,
            lambda: build_training_set(
                wh, cfg, catalog, "asof", table=BENCH_TABLE, exclusions_table=BENCH_EXCLUSIONS
            ),
            time.perf_counter,
        )
        reference = read_warehouse_training_set(wh)
    finally:
        wh.close()
    covered = pandas_pit.covered_features(catalog)
    columns = [c for c in reference.columns if c != "lead_id"]
    comparison = compare_frames(built.frame, reference, columns)
    sql_excluded = {
        **sql_build.excluded,
        "negative_days": sql_build.n_negative_days,
        "right_censored": sql_build.n_censored,
    }
    return {
        "repeats": repeats,
        "n_rows": len(built.frame),
        "input_rows": {
            "leads": len(data.leads),
            "reps": len(data.reps),
            "firms": len(data.firms),
        },
        "read_tables_s": round(read_s, 4),
        "pandas_transform_s": round(pandas_s, 4),
        "warehouse_build_s": round(warehouse_s, 4),
        "warehouse_pit_join_s": round(sql_build.timing["pit_join_s"], 4),
        "ratio_pandas_to_warehouse": round(pandas_s / warehouse_s, 2),
        "n_catalog_features": len(catalog.model_features()),
        "n_covered_features": len(covered),
        "n_compared_columns": comparison.n_columns,
        "comparison": {**comparison.__dict__, "n_mismatches": comparison.n_mismatches},
        "exclusions_equal": {k: v for k, v in built.excluded.items() if v}
        == {k: v for k, v in sql_excluded.items() if v},
    }


def run_scoring(cfg: Settings, repeats: int = 3) -> dict[str, Any]:
    """Scores per second of the floor, of scoring without and with drivers; row checks;
    explain against TreeSHAP; the issue's targets as ratios from this one process."""
    from leadscore.bundle import load_bundle
    from leadscore.pipeline import latest_bundle_path, read_training_frame

    catalog = load_catalog()
    bundle = load_bundle(latest_bundle_path(cfg))
    if cfg.dataset.as_of is None:
        raise ValueError("the benchmark config sets [dataset] as_of")
    wh = open_warehouse(cfg.warehouse)
    try:
        start = time.perf_counter()
        built, df = scoring_frame(wh, cfg, catalog, bundle, cfg.dataset.as_of)
        build_s = time.perf_counter() - start
        training = read_training_frame(wh)
    finally:
        wh.close()
    scoring = measure_throughput(bundle, df, catalog, cfg, repeats, built)
    explain = measure_explain(bundle, training, catalog, cfg)
    return {
        "model_version": bundle.version,
        "scoring_set_build_and_check_s": round(build_s, 4),
        **scoring,
        "explain": explain,
        "targets": ratios(scoring, explain),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def run_ingest(cfg: Settings, repeats: int = 1, folder: Path | None = None) -> dict[str, Any]:
    """Ingest of ``folder`` against DuckDB's typed load of its files (fresh warehouses)."""
    from benchmarks.ingest import measure_ingest

    if folder is None:
        raise ValueError("the ingest stage needs --folder")
    return {**measure_ingest(folder.resolve(), cfg, repeats), "load_average": _load()}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    "pandas": run_pandas,
    "scoring": run_scoring,
    "ingest": run_ingest,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stage")
    parser.add_argument("name", choices=sorted(STAGES))
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, help="ingest: the delivery folder to ingest")
    args = parser.parse_args(argv)
    cfg = load_settings(args.config)
    if args.name == "ingest":
        result = run_ingest(cfg, args.repeats, args.folder)
    else:
        result = STAGES[args.name](cfg, args.repeats)
    write_json(args.out, result)
    print(json.dumps(result, indent=2, default=str)[:4000])


if __name__ == "__main__":
    main()
