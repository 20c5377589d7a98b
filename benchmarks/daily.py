"""Daily-run benchmark: wall time of ``leadscore daily`` on one day's delivery, as a scheduler
would run it (a fresh process: start-up, imports, bundle load, merge, score, export, record).

Run it on a ``leadscore demo`` folder (the world carries 120 future days): it runs the days
after the last daily run (from the world's first future day when there is none), each in its
own process under GNU time (wall, user + system CPU seconds, peak RSS), until it has measured
``--days`` ordinary days and, with ``--vintage`` (the default), the first day whose delivery
brings a vendor vintage (its ingest of ~480k rows dominates that day); the days before that
one run too, each measured. Writes ``<workdir>/logs/daily_bench.json`` and regenerates the daily
section of ``BENCHMARKS.md``. Target: <= 10 s wall per process, on every day.

    python -m benchmarks.daily --workdir demo --days 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.report import describe_machine, load_average, replace_section
from benchmarks.run import GNU_TIME, REPO, _leadscore
from leadscore.io import write_json

TARGET_S = 10.0


def _first_as_of(workdir: Path) -> datetime:
    """The as_of of the next daily run: the day after the last one, else the world's first
    future day's (its delivery is run at the next midnight)."""
    records = sorted((workdir / "reports" / "daily").glob("daily_run_*.json"))
    stamps = [json.loads(p.read_text())["as_of"] for p in records]
    if stamps:
        return max(datetime.fromisoformat(s) for s in stamps).astimezone(UTC) + timedelta(days=1)
    manifest = json.loads((workdir / "raw" / "manifest.json").read_text())
    start = datetime.fromisoformat(manifest["as_of"].replace("Z", "+00:00")).astimezone(UTC)
    return start + timedelta(days=1)


def _times(path: Path) -> dict[str, float | None]:
    """``/usr/bin/time -f "%e %U %S %M"``: wall, CPU (user + system) seconds, peak MiB."""
    try:
        wall, user, system, kib = path.read_text().strip().splitlines()[-1].split()
        return {"wall": float(wall), "cpu": float(user) + float(system), "mib": int(kib) / 1024}
    except (OSError, ValueError, IndexError):
        return {"wall": None, "cpu": None, "mib": None}


def bench_day(workdir: Path, as_of: datetime) -> dict[str, Any]:
    """One ``daily`` run on the delivery of the day before ``as_of``, in its own process."""
    folder = workdir / "raw" / "future" / (as_of - timedelta(days=1)).date().isoformat()
    rss = workdir / "logs" / "daily_bench.maxrss"
    rss.parent.mkdir(parents=True, exist_ok=True)
    command = [*_leadscore(), "daily", "--as-of", as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "--raw", str(folder)]  # fmt: skip
    wrapped = (
        [str(GNU_TIME), "-f", "%e %U %S %M", "-o", str(rss), *command]
        if GNU_TIME.exists()
        else command
    )
    load = load_average()
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in _paths() if p)}
    done = subprocess.run(
        wrapped, cwd=workdir, capture_output=True, text=True, check=False, env=env
    )
    wall = time.perf_counter() - start
    times = _times(rss)
    record = json.loads(
        sorted((workdir / "reports" / "daily").glob(f"daily_run_daily-{as_of:%Y%m%d}*.json"))[
            -1
        ].read_text()
    )
    return {
        "as_of": as_of.isoformat(),
        "exit_code": done.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": None if times["cpu"] is None else round(times["cpu"], 2),
        "in_process_s": round(record["wall_seconds"], 2),
        "step_seconds": record["step_seconds"],
        "n_considered": record["n_considered"],
        "n_scored": record["n_scored"],
        "vintage_delivered": any((folder / "vendor").glob("*.csv")),
        "peak_mib": None if times["mib"] is None else round(times["mib"], 1),
        "load_before": load,
    }


def summarize(days: list[dict[str, Any]]) -> dict[str, Any]:
    """The slowest ordinary day and the vintage day, each against the 10 s target."""
    out: dict[str, Any] = {"target_s": TARGET_S}
    for kind, group in (
        ("ordinary", [d for d in days if not d["vintage_delivered"]]),
        ("vintage", [d for d in days if d["vintage_delivered"]]),
    ):
        if group:
            worst = max(group, key=lambda d: d["wall_s"])
            cpu = [d["cpu_s"] for d in group if d.get("cpu_s") is not None]
            out[kind] = {
                "n_days": len(group),
                "slowest_as_of": worst["as_of"],
                "max_wall_s": worst["wall_s"],
                "max_cpu_s": max(cpu) if cpu else None,
                "met_wall": worst["wall_s"] <= TARGET_S,
                "met_cpu": bool(cpu) and max(cpu) <= TARGET_S,
            }
    return out


def render(results: dict[str, Any]) -> str:
    """The Markdown section for BENCHMARKS.md."""
    lines = [
        f"Measured {results['measured']}, `{results['command']}` on a demo project (scale "
        f"{results['scale']}); each day is one `leadscore daily` process under GNU time (wall "
        "and user + system CPU seconds, start-up and imports included). Target: <= "
        f"{TARGET_S:.0f} s per process on every day, the vendor-vintage day included. The load "
        "average before each day is shown: on a loaded machine the CPU seconds are the figure "
        "that holds.",
        "",
    ]
    summary = results.get("summary") or {}
    if summary.get("ordinary") or summary.get("vintage"):
        lines += ["| day kind | days | slowest as_of | wall s | CPU s | met (wall / CPU)? |",
                  "|---|---:|---|---:|---:|---|"]  # fmt: skip
        for kind in ("ordinary", "vintage"):
            k = summary.get(kind)
            if k:
                lines.append(
                    f"| {kind} | {k['n_days']} | {k['slowest_as_of'][:10]} | "
                    f"{k['max_wall_s']:.1f} | {_num(k['max_cpu_s'])} | {_yes(k['met_wall'])} / "
                    f"{_yes(k['met_cpu'])} |"
                )
        lines.append("")
    lines += [
        "| as_of | wall s | CPU s | in-process s | merge / score / export s | leads "
        "considered | scored | vintage delivered | peak MiB | load before |",
        "|---|---:|---:|---:|---|---:|---:|---|---:|---|",
    ]
    for d in results["days"]:
        s = d["step_seconds"]
        steps = " / ".join(f"{s.get(k, 0):.2f}" for k in ("merge", "score", "export"))
        lines.append(
            f"| {d['as_of'][:10]} | {d['wall_s']:.1f} | {_num(d.get('cpu_s'))} | "
            f"{d['in_process_s']:.1f} | {steps} | {d['n_considered']} | {d['n_scored']} | "
            f"{'yes' if d['vintage_delivered'] else 'no'} | {d['peak_mib']} | "
            f"{' / '.join(str(x) for x in d['load_before'])} |"
        )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _paths() -> list[str]:
    """This checkout's code first (a venv may have another checkout installed)."""
    return [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]


def update_markdown(path: Path, section: str) -> None:
    """Replace (or append) the daily section of BENCHMARKS.md."""
    replace_section(path, "daily", f"## Daily run (one day's delivery)\n\n{section}")


def _has_vintage(workdir: Path, as_of: datetime) -> bool:
    folder = workdir / "raw" / "future" / (as_of - timedelta(days=1)).date().isoformat()
    return any((folder / "vendor").glob("*.csv"))


def bench_days(workdir: Path, n_ordinary: int, vintage: bool) -> list[dict[str, Any]]:
    """Run days in order until ``n_ordinary`` ordinary days (and, with ``vintage``, the first
    vintage day) are measured, or the world's future days run out."""
    manifest = json.loads((workdir / "raw" / "manifest.json").read_text())
    start = datetime.fromisoformat(manifest["as_of"].replace("Z", "+00:00")).astimezone(UTC)
    last = start + timedelta(days=int(manifest.get("future_days", 0)))
    as_of, days = _first_as_of(workdir), []
    while as_of <= last:
        n_done = sum(not d["vintage_delivered"] for d in days)
        vintage_done = any(d["vintage_delivered"] for d in days)
        if n_done >= n_ordinary and (vintage_done or not vintage):
            break
        days.append(bench_day(workdir, as_of))
        d = days[-1]
        kind = " (vintage)" if d["vintage_delivered"] else ""
        print(f"[daily] {d['as_of'][:10]}: {d['wall_s']:.1f} s wall, {d['cpu_s']} s CPU{kind}")
        as_of += timedelta(days=1)
    return days


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("demo"))
    parser.add_argument("--days", type=int, default=5, help="ordinary days to measure")
    parser.add_argument(
        "--vintage", action=argparse.BooleanOptionalAction, default=True,
        help="also run through the first day that delivers a vendor vintage",
    )  # fmt: skip
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    days = bench_days(workdir, args.days, args.vintage)
    manifest = json.loads((workdir / "raw" / "manifest.json").read_text())
    results = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),  # a record, not an input
        "command": " ".join(["python -m benchmarks.daily", *(argv or sys.argv[1:])]),
        "workdir": str(args.workdir),
        "scale": manifest["scale"],
        "machine": describe_machine(),
        "days": days,
        "summary": summarize(days),
    }
    write_json(workdir / "logs" / "daily_bench.json", results)
    update_markdown(args.markdown, render(results))
    print(render(results))
    sys.exit(0 if all(d["exit_code"] == 0 for d in days) else 1)


if __name__ == "__main__":
    main()
