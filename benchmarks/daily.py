"""Daily-run benchmark: wall time of ``leadscore daily`` on one day's delivery, as a scheduler
would run it (a fresh process: start-up, imports, bundle load, merge, score, export, record).

Run it on a project that has run ``leadscore demo --days N`` (the world carries 120 future days):
it runs the next ``--days`` days after the last daily run, each in its own process under GNU
time, writes ``<workdir>/logs/daily_bench.json`` and regenerates the daily section of
``BENCHMARKS.md``. Target: <= 10 s wall per day.

    python -m benchmarks.daily --workdir demo --days 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.report import describe_machine, load_average
from benchmarks.run import GNU_TIME, _leadscore, _peak_mib
from leadscore.io import write_json, write_text

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 10.0
START, END = "<!-- daily:start -->", "<!-- daily:end -->"


def _last_as_of(workdir: Path) -> datetime:
    records = sorted((workdir / "reports" / "daily").glob("daily_run_*.json"))
    stamps = [json.loads(p.read_text())["as_of"] for p in records]
    if not stamps:
        raise SystemExit(f"{workdir}: no daily runs yet; run `leadscore demo --days N` first")
    return max(datetime.fromisoformat(s) for s in stamps).astimezone(UTC)


def bench_day(workdir: Path, as_of: datetime) -> dict[str, Any]:
    """One ``daily`` run on the delivery of the day before ``as_of``, in its own process."""
    folder = workdir / "raw" / "future" / (as_of - timedelta(days=1)).date().isoformat()
    rss = workdir / "logs" / "daily_bench.maxrss"
    rss.parent.mkdir(parents=True, exist_ok=True)
    command = [*_leadscore(), "daily", "--as-of", as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "--raw", str(folder)]  # fmt: skip
    wrapped = (
        [str(GNU_TIME), "-f", "%M", "-o", str(rss), *command] if GNU_TIME.exists() else command
    )
    load = load_average()
    start = time.perf_counter()
    done = subprocess.run(wrapped, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    record = json.loads(
        sorted((workdir / "reports" / "daily").glob(f"daily_run_daily-{as_of:%Y%m%d}*.json"))[
            -1
        ].read_text()
    )
    return {
        "as_of": as_of.isoformat(),
        "exit_code": done.returncode,
        "wall_s": round(wall, 2),
        "in_process_s": round(record["wall_seconds"], 2),
        "step_seconds": record["step_seconds"],
        "n_considered": record["n_considered"],
        "n_scored": record["n_scored"],
        "vintage_delivered": any((folder / "vendor").glob("*.csv")),
        "peak_mib": _peak_mib(rss),
        "load_before": load,
    }


def render(results: dict[str, Any]) -> str:
    """The Markdown section for BENCHMARKS.md."""
    lines = [
        f"Measured {results['measured']}, `python -m benchmarks.daily --workdir "
        f"{results['workdir']} --days {len(results['days'])}` on a seed-scale demo project "
        f"(scale {results['scale']}). Target: <= {TARGET_S:.0f} s wall per day.",
        "",
        "| as_of | wall s | in-process s | merge / score / export s | leads "
        "considered | scored | vintage delivered | peak MiB | load before |",
        "|---|---:|---:|---|---:|---:|---|---:|---|",
    ]
    for d in results["days"]:
        s = d["step_seconds"]
        steps = " / ".join(f"{s.get(k, 0):.2f}" for k in ("merge", "score", "export"))
        lines.append(
            f"| {d['as_of'][:10]} | {d['wall_s']:.1f} | {d['in_process_s']:.1f} | {steps} | "
            f"{d['n_considered']} | {d['n_scored']} | {'yes' if d['vintage_delivered'] else 'no'}"
            f" | {d['peak_mib']} | {' / '.join(str(x) for x in d['load_before'])} |"
        )
    for v in results.get("vintage_days", []):
        lines.append(
            f"\nVintage delivery day {v['date']} (from the simulation's record, in-process, "
            f"no process start-up): {v['seconds']:.1f} s; the merge ingests the new reps "
            "and firms files, which dominates that day."
        )
    return "\n".join(lines)


def vintage_days(workdir: Path) -> list[dict[str, Any]]:
    """The simulation's days on which a vendor vintage was delivered (their in-process time)."""
    path = workdir / "reports" / "daily" / "simulation.json"
    if not path.exists():
        return []
    out = []
    for day in json.loads(path.read_text())["daily"]:
        delivered = datetime.fromisoformat(day["date"]).date() - timedelta(days=1)
        if any((workdir / "raw" / "future" / delivered.isoformat() / "vendor").glob("*.csv")):
            out.append({"date": day["date"], "seconds": day["seconds"]})
    return out


def update_markdown(path: Path, section: str) -> None:
    """Replace (or append) the daily section of BENCHMARKS.md."""
    text = path.read_text()
    block = f"{START}\n## Daily run (one day's delivery)\n\n{section}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text(path, text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("demo"))
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    first = _last_as_of(workdir) + timedelta(days=1)
    days = [bench_day(workdir, first + timedelta(days=k)) for k in range(args.days)]
    manifest = json.loads((workdir / "raw" / "manifest.json").read_text())
    results = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),  # a record, not an input
        "workdir": str(args.workdir),
        "scale": manifest["scale"],
        "machine": describe_machine(),
        "days": days,
        "vintage_days": vintage_days(workdir),
    }
    write_json(workdir / "logs" / "daily_bench.json", results)
    update_markdown(REPO / "BENCHMARKS.md", render(results))
    print(render(results))
    sys.exit(0 if all(d["exit_code"] == 0 for d in days) else 1)


if __name__ == "__main__":
    main()
