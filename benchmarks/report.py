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
        f"best of {s['repeats']} (a path slower than 20 s runs once):",
        "",
        "| path | seconds | scores/s | × floor |",
        "|---|---:|---:|---:|",
    ]
    for row in s["paths"]:
        lines.append(
            f"| {row['path']} | {row['seconds']:.4f} | {_fmt(row['scores_per_second'], 0)} "
            f"| {_fmt(row['ratio_to_floor'], 2)} |"
        )
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
        "(the machine was shared with other jobs).",
        "",
        "### Stages (each in its own process; peak RSS from GNU time)",
        "",
        *_stage_table(results),
        "",
        "### Point-in-time build: warehouse vs pandas",
        "",
        *_pandas_lines(results.get("pandas_baseline")),
        "",
        "### Scoring throughput",
        "",
        *_scoring_lines(results.get("scoring"), results.get("score_run")),
        "",
        "### Model quality vs the oracle",
        "",
        *_oracle_lines(results.get("oracle")),
    ]
    return "\n".join(lines)


def update_markdown(path: Path, results: dict[str, Any]) -> None:
    """Replace the text between the markers of ``path`` with the rendered results."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{render_results(results)}\n{END}{tail}")
