"""CLI commands of the daily stage: ``fallback``, ``daily``, ``calls``, ``simulate``,
``shadow-report``. Registered on the main app by :func:`register` (one line in ``cli.py``).

Each command loads the config, calls one runner, prints its summary; failures exit non-zero
with one line (via the main CLI's error handling).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

AsOfOpt = Annotated[
    str, typer.Option("--as-of", help="The run's time (UTC), e.g. 2025-11-02T00:00:00Z.")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default ./leadscore.toml).")
]


def register(app: typer.Typer) -> None:
    """Add the daily commands to ``app``."""
    app.command()(fallback)
    app.command()(daily)
    app.command()(calls)
    app.command()(simulate)
    app.command("shadow-report")(shadow_report)


def fallback(config: ConfigOpt = None) -> None:
    """Train the fallback model (contact-time features only) beside the latest bundle."""
    from leadscore.cli import _call, _settings, console
    from leadscore.daily.commands import stage_fallback

    cfg = _settings(config)
    _call(lambda: stage_fallback(cfg, console))


def daily(
    as_of: AsOfOpt,
    raw: Annotated[
        Path | None, typer.Option(help="The day's delivery folder (crm/ deltas, vendor/ files).")
    ] = None,
    shadow: Annotated[
        bool, typer.Option(help="Score and store flagged shadow; export nothing.")
    ] = False,
    backfill: Annotated[bool, typer.Option(help="Allow an as_of before the last run's.")] = False,
    config: ConfigOpt = None,
) -> None:
    """The daily job: merge the day's delivery, score new open leads, export, record."""
    from leadscore.score.runtime import import_xgboost_without_sklearn

    import_xgboost_without_sklearn()  # first: the daily job scores, it never fits XGBoost
    from leadscore.cli import _call, _parse_ts, _settings, console
    from leadscore.daily.commands import stage_daily

    cfg = _settings(config)
    _call(lambda: stage_daily(cfg, _parse_ts(as_of), raw, shadow, backfill, console))


def calls(
    as_of: AsOfOpt,
    owner: Annotated[str | None, typer.Option(help="Only this SGA's leads (OwnerId).")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Rows to print.")] = 25,
    config: ConfigOpt = None,
) -> None:
    """The SGA call list: open leads in call order (tier, score, drivers)."""
    from leadscore.cli import _call, _parse_ts, _settings, console
    from leadscore.daily.commands import stage_calls

    cfg = _settings(config)
    _call(lambda: stage_calls(cfg, _parse_ts(as_of), owner, limit, console))


def simulate(
    days: Annotated[int, typer.Option(min=1, help="Days of the synthetic future to run.")] = 30,
    raw: Annotated[
        Path | None, typer.Option(help="The world folder holding future/ (default <project>/raw).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run `daily` over the synthetic future, day by day; write summary.json's `daily`."""
    from leadscore.cli import _call, _settings, console
    from leadscore.daily.simulate import stage_simulate

    cfg = _settings(config)
    _call(lambda: stage_simulate(cfg, days, raw, console))


def shadow_report(
    days: Annotated[int, typer.Option(min=1, help="Daily runs to cover.")] = 7,
    config: ConfigOpt = None,
) -> None:
    """Report the last N daily runs (shadow runs if any): success, scores, latency, gate."""
    from leadscore.cli import _call, _settings, console
    from leadscore.daily.shadow import stage_shadow_report

    cfg = _settings(config)
    _call(lambda: stage_shadow_report(cfg, days, console))
