"""CLI commands of the monitoring stage: ``monitor`` and ``monitor-scenario``. Registered on
the main app by :func:`register` (one line in ``cli.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.daily.cli import AsOfOpt, ConfigOpt


def register(app: typer.Typer) -> None:
    """Add the monitoring commands to ``app``."""
    app.command()(monitor)
    app.command("monitor-scenario")(monitor_scenario)
    app.command()(stress)
    app.command()(readiness)


def monitor(as_of: AsOfOpt, config: ConfigOpt = None) -> None:
    """Health, PSI, positive rate, label-free vs realized performance; open/close alerts."""
    from leadscore.cli import _call, _parse_ts, _settings, console
    from leadscore.monitor.commands import stage_monitor

    cfg = _settings(config)
    _call(lambda: stage_monitor(cfg, _parse_ts(as_of), console))


def monitor_scenario(
    workdir: Annotated[Path, typer.Option(help="Working folder (created).")] = Path("scenario"),
    scale: Annotated[float, typer.Option(min=0.0005, max=4.0)] = 0.05,
    days: Annotated[int, typer.Option(min=1)] = 60,
    drift: Annotated[
        str | None, typer.Option(help="aum_shift | columns_dropped | conversion_drop")
    ] = None,
    drift_day: Annotated[int, typer.Option(min=0)] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the world and the pipeline.")] = 42,
) -> None:
    """Synthetic world (optionally drifting), whole pipeline, N days; which alerts fired when."""
    from leadscore.cli import _call, console
    from leadscore.monitor.scenarios import run_scenario

    _call(
        lambda: console.print(
            run_scenario(workdir, scale, days, drift, drift_day, seed, console=console)
        )
    )


def stress(
    raw: Annotated[Path, typer.Option(help="The world folder holding future/ and manifest.json.")],
    days: Annotated[int, typer.Option(min=1)] = 7,
    test: Annotated[
        list[str] | None, typer.Option(help="volume_2x | missing_features | class_shift")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Stress tests on copies of the project: 2x volume, missing features, class shift."""
    from leadscore.cli import _call, _settings, console
    from leadscore.monitor.stress import run_stress

    cfg = _settings(config)

    def go() -> None:
        out = run_stress(cfg, raw, days, only=tuple(test or ()))
        for r in out["tests"]:
            verdict = "passed" if r["passed"] else "FAILED"
            console.print(
                f"{r['test']}: {verdict} ({r['days']} days, completed {r['completed']}, "
                f"rejects without reason {r['rejects_without_reason']}, alerts "
                f"{sorted({a['rule'] for a in r['alerts']})}, expected {r['expected_rules']})"
            )
        if not out["passed"]:
            raise SystemExit(1)

    _call(go)


def readiness(
    scenario: Annotated[
        list[Path] | None, typer.Option(help="A scenario's summary.json (its alerts count).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Production-readiness checklist from facts (shadow days, stress, alerts, gates, bundle)."""
    from leadscore.cli import _call, _settings, console
    from leadscore.monitor.checklist import readiness as build

    cfg = _settings(config)

    def go() -> None:
        out = build(cfg, tuple(scenario or ()))
        for i in out["items"]:
            console.print(f"[{'x' if i['passed'] else ' '}] {i['item']}: {i['evidence']}")
        console.print(f"ready: {out['ready']}")

    _call(go)
