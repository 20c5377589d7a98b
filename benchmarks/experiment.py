"""Experiment benchmark: the simulator's coverage and A/A false-positive figures (and the plan).

``python -m benchmarks.experiment [--runs 20] [--aa-runs 100] [--seed 42] [--config TOML]``
runs the A/B and A/A simulations, optionally the power plan of a project's warehouse, and
writes ``benchmarks/out/experiment.json`` plus a Markdown section ready for BENCHMARKS.md;
``--update-benchmarks`` also replaces the text between the experiment markers of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.report import replace_section
from leadscore.config import load_settings
from leadscore.experiment.simulate import SimConfig, SimSummary, simulate_many
from leadscore.io import write_json, write_text

OUT = Path(__file__).resolve().parent / "out"
BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def update_section(path: Path, body: str) -> None:
    """Replace the text between the experiment markers (appended when they are missing)."""
    replace_section(path, "experiment", body)


def simulation_markdown(summary: SimSummary, seconds: float, command: str) -> list[str]:
    """Lines of the simulation part of the section."""
    cfg = summary.config
    return [
        f"Simulator ({cfg['unit']}-level assignment): {cfg['n_sgas']} SGAs,"
        f" {cfg['capacity']} dials per SGA-day,"
        f" {cfg['leads_per_week']} contacted leads/week for {cfg['weeks']} weeks,"
        f" adoption {cfg['adoption']:.0%}, looks at {list(summary.looks)} (boundaries"
        f" {list(summary.boundaries)}), seeds from {cfg['seed']}; `{command}` took"
        f" {seconds:.0f} s.",
        "",
        "| check | runs | result | required | met? |",
        "|---|---:|---:|---|---|",
        f"| 95% interval covers the true lift | {summary.n_ab} | {summary.coverage:.0%} | ≥ 90%"
        f" | {'yes' if summary.coverage >= 0.9 else 'NO'} |",
        f"| A/A declared significant (interim looks included) | {summary.n_aa}"
        f" | {summary.aa_false_positive_rate:.0%} | ≤ 10%"
        f" | {'yes' if summary.aa_false_positive_rate <= 0.10 else 'NO'} |",
        "",
        f"Mean true lift {summary.mean_true_lift:+.1%}, mean estimated lift"
        f" {summary.mean_lift:+.1%} (early stops overstate it), share of A/B runs significant"
        f" {summary.power:.0%}, measured adoption (mean per SGA-day rank correlation)"
        f" {summary.mean_adoption_rho:.2f}.",
    ]


def plan_markdown(config: Path, as_of: datetime | None) -> tuple[list[str], dict[str, Any]]:
    """Lines of the plan part, from a project's warehouse."""
    from leadscore.experiment.run import stage_plan

    cfg = load_settings(config)
    when = as_of or cfg.dataset.as_of
    if when is None:
        raise SystemExit("give --as-of or set dataset.as_of in the config")
    plan = stage_plan(cfg, when)
    lines = [
        f"Plan (`leadscore experiment plan --json`, as of {when.isoformat()}): baseline"
        f" {plan.baseline_rate:.2%} MQLs per lead, {plan.baseline_mqls_per_100_dials:.3f} MQLs"
        f" per 100 dials, {plan.weekly_leads:,.0f} contacted leads/week, ICC {plan.icc:.4f}.",
        "",
        "| unit | adoption | leads per arm | weeks of enrolment | design effect |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {d.unit} | {d.adoption:.0%} | {d.leads_per_arm or '—'} | {d.weeks or '—'}"
            f" | {d.design_effect} |"
            for d in plan.designs
        ],
        "",
        plan.verdict,
    ]
    return lines, plan.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--aa-runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--adoption", type=float, default=0.6)
    parser.add_argument("--unit", choices=("lead", "sga"), default="lead")
    parser.add_argument("--config", type=Path, help="Project config whose warehouse to plan on.")
    parser.add_argument("--as-of", type=datetime.fromisoformat)
    parser.add_argument("--update-benchmarks", action="store_true", help="Edit BENCHMARKS.md.")
    args = parser.parse_args()
    started = time.perf_counter()
    sim = SimConfig(seed=args.seed, adoption=args.adoption, unit=args.unit)
    summary = simulate_many(sim, args.runs, args.aa_runs)
    seconds = time.perf_counter() - started
    command = (
        f"python -m benchmarks.experiment --runs {args.runs} --aa-runs {args.aa_runs}"
        f" --seed {args.seed} --adoption {args.adoption} --unit {args.unit}"
    )
    lines = [
        "### Experiment: does the analysis recover a known lift?",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        *simulation_markdown(summary, seconds, command),
    ]
    results: dict[str, Any] = {"simulation": summary.to_dict(), "seconds": seconds}
    if args.config:
        plan_lines, results["plan"] = plan_markdown(args.config, args.as_of)
        lines += ["", *plan_lines]
    write_json(OUT / "experiment.json", results)
    write_text(OUT / "experiment.md", "\n".join(lines) + "\n")
    if args.update_benchmarks:
        update_section(BENCHMARKS_MD, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
