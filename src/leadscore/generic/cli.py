"""Generic source, command bodies for ``leadscore init --from`` and ``leadscore run --mapping``
(thin: load, call one library function, print a short summary)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from leadscore.config import Settings
from leadscore.generic.inspect import init_mapping
from leadscore.generic.mapping import load_mapping
from leadscore.generic.run import GenericRun, run_generic


def init_from(source: Path, out: Path, console: Console) -> Path:
    """Write the starter mapping and list the guesses."""
    path, guesses = init_mapping(source, out)
    for g in guesses:
        console.print(f"  {g.column!r}: {g.role}" + (f" ({g.kind}; {g.note})" if g.kind else ""))
    console.print(f"starter mapping written to {path}; review every guess before `run --mapping`")
    return path


def run_mapping(path: Path, cfg: Settings, override: str | None, console: Console) -> GenericRun:
    """Run the pipeline on a mapped export and print what was flagged and measured."""
    mapping = load_mapping(path)
    try:
        run = run_generic(mapping, cfg, override_reason=override)
    finally:
        console.print(f"report: {cfg.project.reports_dir / 'generic' / 'report.md'}")
    for line in run.warnings:
        console.print(f"[yellow]warning:[/yellow] {line}", soft_wrap=True)
    console.print(
        f"{run.n_rows:,} training rows ({run.n_positives:,} positives); flagged "
        f"{run.leakage.flagged() or 'none'}; calendar proxies kept "
        f"{run.leakage.calendar_proxies() or 'none'}"
    )
    ho, base = run.metrics.get("holdout", {}), run.metrics.get("baseline_holdout", {})
    if ho:
        console.print(
            f"holdout AUC-PR {ho['aucpr']:.3f} (logistic baseline {base['aucpr']:.3f}); "
            f"scored {run.n_scored:,} not-yet-matured leads; model {run.version}"
        )
    return run
