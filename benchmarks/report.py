"""Benchmark results for people: the machine description and the results section of
``BENCHMARKS.md`` (regenerated between its markers from ``results.json``)."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

START, END = "<!-- results:start -->", "<!-- results:end -->"
PACKAGES = ("leadscore", "duckdb", "pandas", "numpy", "pyarrow", "xgboost-cpu", "scikit-learn")


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory, Python and key package versions, date, load average."""
    mem_kib = _proc_field("/proc/meminfo", "MemTotal")
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem_kib.split()[0]) / 2**20, 1) if mem_kib else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_start": load_average(),
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _load(values: list[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "–"


def _stage_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| stage | wall s | peak MiB | target | met? | load before (1/5/15 min) |",
        "|---|---:|---:|---|---|---|",
    ]
    for s in results["stages"]:
        status = "" if s["returncode"] == 0 else f" (exit {s['returncode']})"
        lines.append(
            f"| {s['name']}{status} | {_fmt(s['wall_s'])} | {_fmt(s['peak_mib'], 0)} "
            f"| {s.get('target') or ''} | {_fmt(s.get('met'))} | {_load(s['load_before'])} |"
        )
    demo = results.get("whole_demo")
    if demo:
        lines.append(
            f"| **whole demo** ({' + '.join(demo['stages'])}) | {_fmt(demo['wall_s'])} | "
            f"{_fmt(demo['peak_mib'], 0)} | {demo['target']} | {_fmt(demo['met'])} | |"
        )
    return lines


def _pandas_lines(p: dict[str, Any] | None) -> list[str]:
    if not p:
        return ["Pandas baseline: not run."]
    c = p["comparison"]
    return [
        f"Point-in-time build on {p['n_rows']:,} training rows ({p['input_rows']['leads']:,} "
        f"leads, {p['input_rows']['reps']:,} reps rows, {p['input_rows']['firms']:,} firms "
        f"rows), best of {p['repeats']} in one process:",
        "",
        "| build | seconds |",
        "|---|---:|",
        f"| warehouse `build_training_set` (DuckDB, without validate) "
        f"| {p['warehouse_build_s']:.3f} |",
        f"| pandas `merge_asof` by CRD + features (transform only) "
        f"| {p['pandas_transform_s']:.3f} |",
        f"| pandas: reading the three tables into pandas (not in the ratio) "
        f"| {p['read_tables_s']:.3f} |",
        "",
        f"**pandas / warehouse = {p['ratio_pandas_to_warehouse']:.2f}×** (above 1: the warehouse "
        "build is faster). The baseline covers "
        f"{p['n_covered_features']} of the catalog's {p['n_catalog_features']} features (and "
        f"both segments, the label and the vintage columns: {p['n_compared_columns']} columns "
        f"compared). Same answer: {c['n_mismatches']} mismatches ({c['n_rows_only_left']} rows "
        f"only in pandas, {c['n_rows_only_right']} only in the warehouse, "
        f"{c['n_mismatched_cells']} of {c['n_cells']:,} cells differ beyond 1e-9); exclusion "
        f"counts equal: {_fmt(p['exclusions_equal'])}.",
    ]


def _scoring_lines(s: dict[str, Any] | None, run: dict[str, Any] | None) -> list[str]:
    if not s:
        return ["Scoring throughput: not run."]
    lines = [
        f"{s['n_rows']:,} matched, checked leads, {s['n_features']} model features, "
        f"best of {s['repeats']} (a path slower than 20 s runs once); CPU seconds count every "
        "thread of the process:",
        "",
        "| path | rows | wall s | CPU s | rows/s (wall) | × floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in s["paths"]:
        lines.append(
            f"| {row['path']} | {_fmt(row.get('n_rows', s['n_rows']))} | {row['seconds']:.4f} "
            f"| {_fmt(row.get('cpu_seconds'), 4)} | {_fmt(row['scores_per_second'], 0)} "
            f"| {_fmt(row['ratio_to_floor'], 2)} |"
        )
    e = s.get("explain")
    if e:
        lines += [
            "",
            f"Explain on {e['n_rows']:,} training rows: `explain_model` (contributions, "
            "importance, plot, every row's drivers, cohorts, files) "
            f"{e['explain_s']:.2f} s wall / {e['explain_cpu_s']:.2f} s CPU, against TreeSHAP "
            f"alone (`compute_contributions`) {e['treeshap_s']:.2f} s wall / "
            f"{e['treeshap_cpu_s']:.2f} s CPU; best of {e.get('repeats', 3)} after "
            f"{e.get('warmup', 0)} untimed round(s), the two in turn.",
        ]
    if run:
        lines += [
            "",
            f"End to end, `score_leads` (build scoring set per batch, check, score, drivers, "
            f"warehouse writes, Salesforce CSV): {run['n_scored']:,} scored in "
            f"{run['wall_seconds']:.1f} s = **{run['scores_per_second']:,.0f} scores/s**.",
        ]
    return lines


def _oracle_lines(o: dict[str, Any] | None) -> list[str]:
    if not o:
        return ["Oracle comparison: not run."]
    failed = ", ".join(o.get("gates_failed") or []) or "none"
    return [
        f"Holdout AUC-PR {o['holdout_aucpr']:.4f} vs oracle (true probabilities) "
        f"{o['oracle_aucpr']:.4f}: **{o['fraction']:.1%} of the oracle**. "
        f"Model gates failed in this run: {failed}"
        + (
            " (trained with `--override` so the later stages could be measured)."
            if o.get("override")
            else "."
        ),
    ]


def _targets_lines(results: dict[str, Any]) -> list[str]:
    rows = list((results.get("scoring") or {}).get("targets") or [])
    demo = results.get("whole_demo") or results.get("demo_summary")
    if demo:
        total = demo.get("wall_s", demo.get("total_s"))
        source = (
            "" if results.get("whole_demo") else " (stage seconds in the folder's summary.json)"
        )
        rows.append({"name": f"whole seed-scale demo, s{source}", "figure": total,
                     "target": demo["target"], "met": demo["met"]})  # fmt: skip
    rows += _ingest_targets(results.get("ingest"))
    daily = results.get("daily")
    if daily and daily.get("days"):
        rows += _daily_targets(daily)
    if not rows:
        return ["No target measured in this run."]
    lines = ["| figure | measured | target | met? |", "|---|---:|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['name']} | {_fmt(r['figure'], 3)} | {r['target']} | {_fmt(r['met'])} |"
        )
    if not daily:
        lines += [
            "",
            "Daily job: no `logs/daily_bench.json` in the workdir (written by the daily-run "
            "benchmark once the `daily` command exists), so not measured here.",
        ]
    return lines


def _ingest_targets(ingest: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not ingest:
        return []
    return [
        {"name": f"ingest / DuckDB's typed load of the same files ({clock})",
         "figure": ingest[f"ratio_{key}"], "target": ingest["target"],
         "met": ingest[f"ratio_{key}"] is not None and ingest[f"ratio_{key}"] <= 2.0}
        for clock, key in (("wall", "wall"), ("CPU", "cpu"))
    ]  # fmt: skip


def _daily_targets(daily: dict[str, Any]) -> list[dict[str, Any]]:
    """Per process: the slowest ordinary day and the vintage day, wall and CPU seconds."""
    days, rows = daily["days"], []
    groups = {"ordinary day (slowest)": [d for d in days if not d.get("vintage_delivered")],
              "vendor-vintage day": [d for d in days if d.get("vintage_delivered")]}  # fmt: skip
    for label, group in groups.items():
        if not group:
            rows.append({"name": f"daily job per process, {label}, s", "figure": None,
                         "target": "<= 10", "met": None})  # fmt: skip
            continue
        for clock, key in (("wall", "wall_s"), ("CPU", "cpu_s")):
            values = [d[key] for d in group if d.get(key) is not None]
            worst = max(values) if values else None
            rows.append({"name": f"daily job per process, {label}, s ({clock})",
                         "figure": worst, "target": "<= 10",
                         "met": None if worst is None else worst <= 10})  # fmt: skip
    return rows


def _ingest_lines(ingest: dict[str, Any] | None) -> list[str]:
    if not ingest:
        return ["Ingest against DuckDB's typed load: not run."]
    return [
        f"`ingest_directory` on `{ingest['folder']}` ({ingest['n_files']} CSV files, "
        f"{ingest['bytes'] / 2**20:,.0f} MiB) into a fresh DuckDB file: "
        f"{ingest['ingest_s']:.2f} s wall / {ingest['ingest_cpu_s']:.2f} s CPU. DuckDB alone "
        "(`CREATE TABLE AS SELECT * FROM "
        f"read_csv(...)` per file, its own type sniffing, same threads): "
        f"{ingest['duckdb_typed_load_s']:.2f} s wall / {ingest['duckdb_typed_load_cpu_s']:.2f} s "
        f"CPU. Ratio {_fmt(ingest['ratio_wall'], 2)} (wall), {_fmt(ingest['ratio_cpu'], 2)} (CPU);"
        f" target {ingest['target']}. The round of least CPU of "
        f"{ingest.get('repeats', 1)} of each, the two in turn.",
    ]


def _demo_lines(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return []
    lines = [
        "### Demo stages (from the folder's `summary.json`, one `leadscore demo` process)",
        "",
        f"Model {d.get('model_version')}; total {d['total_s']:.1f} s (target {d['target']}).",
        "",
        "| stage | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in d["stage_seconds"].items()]
    return [*lines, ""]


#: The train steps in the order they run (the summary stores them with sorted keys).
TRAIN_ORDER = (
    "prepare", "cv: feature filters", "cv: imbalance strategies", "tuning", "cv: fold refits",
    "cv: logistic baseline", "refit", "calibration", "evaluation",
)  # fmt: skip


def _train_lines(steps: dict[str, Any] | None) -> list[str]:
    if not steps:
        return ["Train steps: not recorded (the folder's last `train` predates step timing)."]
    lines = [
        "| train step | wall s | RSS at start MiB | peak RSS MiB |",
        "|---|---:|---:|---:|",
    ]
    order = [s for s in TRAIN_ORDER if s in steps] + sorted(set(steps) - set(TRAIN_ORDER))
    for name in order:
        r = steps[name]
        lines.append(
            f"| {name} | {_fmt(r.get('seconds'), 2)} | {_fmt(r.get('start_rss_mib'), 0)} "
            f"| {_fmt(r.get('peak_rss_mib'), 0)} |"
        )
    total = sum(float(r.get("seconds") or 0) for r in steps.values())
    return [*lines, f"| **all steps** | {total:.2f} | | |"]


def _daily_lines(daily: dict[str, Any] | None) -> list[str]:
    if not daily or not daily.get("days"):
        return ["Daily job: not measured in this run."]
    lines = [
        f"From `logs/daily_bench.json` (`{daily.get('command', 'python -m benchmarks.daily')}`, "
        f"measured {daily.get('measured')}): one `leadscore daily` process per day under GNU "
        "time.",
        "",
        "| as_of | vintage delivered | wall s | CPU s | leads scored | peak MiB | load before |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for d in daily["days"]:
        lines.append(
            f"| {d['as_of'][:10]} | {'yes' if d.get('vintage_delivered') else 'no'} | "
            f"{d['wall_s']:.1f} | {_fmt(d.get('cpu_s'), 1)} | {d.get('n_scored')} "
            f"| {_fmt(d.get('peak_mib'), 0)} | {_load(d.get('load_before'))} |"
        )
    return lines


def render_results(results: dict[str, Any]) -> str:
    """The Markdown between the results markers."""
    m = results["machine"]
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines = [
        f"Measured {m['date']}, scale **{results['scale']}** (seed {results['seed']}), "
        f"`{results['command']}`.",
        "",
        f"Machine: {m['cpu_model']}, {m['nproc']} cores, {m['memory_gib']} GiB RAM, {m['os']}; "
        f"Python {m['python']}; {pkgs}. Load average (1/5/15 min) at start "
        f"{_load(m['load_average_start'])}, at end {_load(results.get('load_average_end'))} "
        f"on {m['nproc']} cores (a load above 0 at the start includes any job that ran just "
        "before).",
        "",
        "### Targets (ratios from one process, so the machine's load cancels out)",
        "",
        *_targets_lines(results),
        "",
        "### Stages (each in its own process; peak RSS from GNU time)",
        "",
        *_stage_table(results),
        "",
        *_demo_lines(results.get("demo_summary")),
        "### Train, per step (wall time and resident memory sampled every 50 ms)",
        "",
        *_train_lines(results.get("train_steps")),
        "",
        "### Point-in-time build: warehouse vs pandas",
        "",
        *_pandas_lines(results.get("pandas_baseline")),
        "",
        "### Scoring throughput",
        "",
        *_scoring_lines(results.get("scoring"), results.get("score_run")),
        "",
        "### Ingest vs DuckDB's typed load",
        "",
        *_ingest_lines(results.get("ingest")),
        "",
        "### Model quality vs the oracle",
        "",
        *_oracle_lines(results.get("oracle")),
        "",
        "### Daily job (one day's delivery)",
        "",
        *_daily_lines(results.get("daily")),
    ]
    return "\n".join(lines)


HEADER = """# Benchmarks

Generated by `python -m benchmarks.run` from its `results.json`; every figure below comes from
that run (edit `benchmarks/report.py`, not this file).

## How to reproduce

`make bench` (= `.venv/bin/python -m benchmarks.run`; options `--scale 1.0`,
`--workdir benchmarks/out`, `--skip-train`) generates the synthetic world into the workdir,
writes its `leadscore.toml` as `leadscore demo` does, then runs each stage in its own process
under GNU time (`/usr/bin/time -f %M`): `leadscore synth`, `ingest`, `build`, `train`
(with `--override`, so a failed model gate still lets the later stages be measured),
`explain`, `score --as-of <world as_of>`, `report`, then `python -m benchmarks.stage pandas`
(the pandas `merge_asof` baseline, timed against `build_training_set` in the same process)
and `python -m benchmarks.stage scoring` (throughput against `booster.predict` and
`pred_contribs` on the same matrix, row checks on the rows as built, `explain_model` against
TreeSHAP alone on the training rows; best of 3 (the explain pair: best of 5 after an
untimed round), the paths of a ratio run in turn, wall and CPU seconds), and
`python -m benchmarks.stage ingest` (`ingest_directory` on the delivery against
DuckDB's own typed load of the same files, each into a fresh DuckDB file; 5 rounds of the two
in turn, the round of least CPU of each kept). Wall times include each
process's start-up and imports. `python -m benchmarks.run --project DIR` runs only the
`scoring` and `ingest` stages on a finished `leadscore demo` folder (ingest on the first future
delivery that brings a vendor vintage) and adds the figures its runs recorded (`summary.json`
stage seconds, the train steps in `reports/train/latest.json`, and `logs/daily_bench.json`
from `python -m benchmarks.daily --workdir DIR`, which runs `leadscore daily` one process per
day through the vendor-vintage day and then ordinary days).

## Results
"""


def render_document(results: dict[str, Any]) -> str:
    """The whole of ``BENCHMARKS.md``."""
    return f"{HEADER}\n{START}\n{render_results(results)}\n{END}\n"


#: Sections other generators own (``benchmarks.daily``, ``benchmarks.experiment``,
#: ``benchmarks.serve_load``): kept as they are when this file is regenerated, each between its
#: ``<!-- NAME:start/end -->`` markers.
OWNED_SECTIONS = ("daily", "experiment", "serve")


def replace_section(path: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``
    with ``body`` (the markers are appended when missing): how the scripts that own a section
    (:data:`OWNED_SECTIONS`) write it."""
    from leadscore.io import write_text

    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start not in text or end not in text:
        text = text.rstrip() + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_text(path, f"{head}{start}\n{body.rstrip()}\n{end}{tail}")


def update_markdown(path: Path, results: dict[str, Any]) -> None:
    """Rewrite ``path`` from ``results`` (no hand-written part that could go stale), keeping
    the generated sections of the other benchmark scripts."""
    import re

    from leadscore.io import write_text

    old = path.read_text() if path.exists() else ""
    kept = []
    for name in OWNED_SECTIONS:
        found = re.search(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", old, flags=re.S)
        if found:
            kept.append(found.group(0))
    text = render_document(results).rstrip("\n")
    write_text(path, "\n\n".join([text, *kept]) + "\n")
