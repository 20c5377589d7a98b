"""``leadscore experiment plan | assign | monitor | analyze | simulate``: thin typer commands.

Each command loads the settings, calls one function of :mod:`leadscore.experiment.run` and
prints a short summary; errors are one line and a non-zero exit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from leadscore.config import ConfigError, Settings, load_settings

app = typer.Typer(help="The A/B test of score-ordered calling.", no_args_is_help=True)
console = Console()
T = TypeVar("T")
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="UTC time (default: the dataset's as_of).")
]


def _run(fn: Callable[[], T]) -> T:
    from leadscore.warehouse import WarehouseError

    try:
        return fn()
    except (ConfigError, FileNotFoundError, ValueError, KeyError, WarehouseError) as exc:
        # a config error names each bad key on its own line; others: the first line only
        text = str(exc) if isinstance(exc, ConfigError) else str(exc).splitlines()[0]
        console.print(f"[bold red]error:[/bold red] {text}")
        raise typer.Exit(1) from None


def _settings(config: Path | None) -> Settings:
    return _run(lambda: load_settings(config))


def _as_of(value: str | None, cfg: Settings) -> datetime:
    if value is None:
        if cfg.dataset.as_of is None:
            raise typer.BadParameter("give --as-of or set dataset.as_of")
        return cfg.dataset.as_of
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2025-11-01T00:00:00Z")
    return ts


@app.command()
def plan(
    as_of: AsOfOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Sample size and duration, measured from the warehouse."""
    from leadscore.experiment.run import stage_plan

    cfg = _settings(config)
    result = _run(lambda: stage_plan(cfg, _as_of(as_of, cfg)))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console.print(
        f"baseline {result.baseline_rate:.2%} MQL rate, {result.baseline_mqls_per_100_dials:.3f}"
        f" MQLs/100 dials; {result.weekly_leads:,.0f} contacted leads/week; ICC {result.icc:.4f}"
    )
    for d in result.designs:
        console.print(
            f"  {d.unit:4s} adoption {d.adoption:.0%}: {d.leads_per_arm or '—'} leads/arm,"
            f" {d.weeks if d.weeks is not None else '—'} weeks"
        )
    console.print(result.verdict)


@app.command()
def assign(as_of: AsOfOpt = None, config: ConfigOpt = None) -> None:
    """Assign every unit contacted by AS_OF that has no arm yet (ab_assignments)."""
    from leadscore.experiment.run import stage_assign

    cfg = _settings(config)
    result = _run(lambda: stage_assign(cfg, _as_of(as_of, cfg)))
    console.print(
        f"{result.experiment_id} ({result.unit}): {result.n_new:,} new, {result.n_total:,} total"
        f" {result.by_arm}"
    )


@app.command()
def monitor(as_of: AsOfOpt = None, config: ConfigOpt = None) -> None:
    """Daily figures: KPI per arm, sample-ratio mismatch, balance, adoption."""
    from leadscore.experiment.run import stage_monitor

    cfg = _settings(config)
    result = _run(lambda: stage_monitor(cfg, _as_of(as_of, cfg)))
    for a in result.arms:
        console.print(
            f"  {a.arm:9s} {a.leads:,} leads ({a.matured_leads:,} matured), {a.dials:,} dials,"
            f" {a.mqls} MQLs, {a.mqls_per_100_dials:.3f}/100 dials"
            f" [{a.ci_low:.3f}, {a.ci_high:.3f}]"
        )
    flagged = [b["covariate"] for b in result.balance if b["flagged"]]
    console.print(
        f"SRM p = {result.srm.p_value:.3g}{' MISMATCH' if result.srm.flagged else ''};"
        f" imbalanced: {flagged or 'none'}; adoption {result.adoption}"
    )


@app.command()
def analyze(as_of: AsOfOpt = None, config: ConfigOpt = None) -> None:
    """Interim looks (alpha spending) and the final analysis; writes the report page."""
    from leadscore.experiment.run import stage_analyze

    cfg = _settings(config)
    result, page = _run(lambda: stage_analyze(cfg, _as_of(as_of, cfg)))
    console.print(result.verdict)
    console.print(f"report: {page}")


@app.command()
def simulate(
    runs: Annotated[int, typer.Option(help="A/B runs (coverage).", min=0)] = 20,
    aa_runs: Annotated[int, typer.Option(help="A/A runs (false positives).", min=0)] = 100,
    adoption: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.6,
    weeks: Annotated[int, typer.Option(min=1)] = 8,
    unit: Annotated[str, typer.Option(help="lead | sga: the unit of assignment.")] = "lead",
    seed: Annotated[int | None, typer.Option(help="Default: project.global_seed.")] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Truth CSV to draw probabilities from.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Simulated tests with a known true lift: interval coverage and A/A false positives."""
    from leadscore.experiment.run import stage_simulate
    from leadscore.experiment.simulate import SimConfig

    cfg = _settings(config)
    if unit not in ("lead", "sga"):
        raise typer.BadParameter("unit is 'lead' or 'sga'")
    sim = SimConfig(
        adoption=adoption, weeks=weeks, unit=unit,  # type: ignore[arg-type]
        seed=cfg.project.global_seed if seed is None else seed,
    )  # fmt: skip
    summary = _run(lambda: stage_simulate(cfg, sim, runs, aa_runs, truth))
    if summary.n_ab:
        console.print(
            f"coverage {summary.coverage:.0%} of {summary.n_ab} A/B runs (mean true lift"
            f" {summary.mean_true_lift:+.1%}); adoption measured {summary.mean_adoption_rho:.2f}"
        )
    if summary.n_aa:
        console.print(
            f"A/A significant in {summary.aa_false_positive_rate:.0%} of {summary.n_aa} runs"
            " (interim looks included)"
        )


__all__ = ["app"]
