"""The ``leadscore`` command line: one thin command per stage, plus ``run`` and ``demo``.

Each command loads ``leadscore.toml`` from the current folder (or ``--config``), calls one
library function, and prints a short summary. An expected failure prints one line on stderr and
exits with its code (1 bad input, 2 failed gate, 3 warehouse busy, 4 model bundle refused,
5 permission); ``--debug`` adds the traceback (``leadscore.errors``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from leadscore.config import CONFIG_FILE, Settings, load_settings
from leadscore.errors import DEBUG_ENV, expected_failures
from leadscore.experiment.cli import app as experiment_app

if TYPE_CHECKING:
    from leadscore.dataset import JoinMode
    from leadscore.synthetic.truth import Signal as SignalName

app = typer.Typer(
    help="Point-in-time lead scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
app.add_typer(experiment_app, name="experiment")


class Signal(StrEnum):
    """How strongly the synthetic world's features drive conversion."""

    default = "default"
    weak = "weak"


class Join(StrEnum):
    """How the training set joins vendor vintages to leads."""

    asof = "asof"
    quarter = "quarter"


_SIGNALS: dict[Signal, SignalName] = {Signal.default: "default", Signal.weak: "weak"}
_JOINS: dict[Join, JoinMode] = {Join.asof: "asof", Join.quarter: "quarter"}


ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default ./leadscore.toml).")
]
DriftOpt = Annotated[
    str | None,
    typer.Option(help="Plant a change in the future: aum_shift | columns_dropped | "
                 "conversion_drop (recorded in truth/drift.json)."),
]  # fmt: skip
DriftDayOpt = Annotated[
    int, typer.Option(min=0, help="Days after the world's as_of the drift starts.")
]
OverrideOpt = Annotated[
    str | None, typer.Option(help="Ship despite failed model gates; the reason is recorded.")
]
RAW_HELP = "Raw delivery folder: vendor/ snapshots and crm/ exports (Lead.csv, Task.csv)."
ScaleOpt = Annotated[
    float,
    typer.Option(min=0.0005, max=4.0, help="World size; 1.0 is the seed scale (79,000 leads)."),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of every random step.")]
SignalOpt = Annotated[
    Signal, typer.Option(help="Strength of the planted signal (weak: a model that fails gates).")
]


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of failures.")] = False,
) -> None:
    """Point-in-time lead scoring. Exit codes: docs/failures.md."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


def _settings(config: Path | None) -> Settings:
    with _fail_loudly():
        if config is None and not (Path.cwd() / CONFIG_FILE).exists():
            cfg = load_settings(None)
            typer.echo(
                f"note: no {CONFIG_FILE} in {Path.cwd()}; using defaults "
                f"(warehouse {cfg.warehouse.path})",
                err=True,
            )
            return cfg
        return load_settings(config)


@contextmanager
def _fail_loudly() -> Iterator[None]:
    """Turn the library's expected failures into one stderr line and their exit code."""
    with expected_failures():
        yield


def _parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2025-11-01T00:00:00Z")
    return ts


def _call(fn: Callable[[], object]) -> object:
    with _fail_loudly():
        return fn()


@app.command()
def synth(
    raw: Annotated[Path, typer.Option(help="Raw delivery folder to write (created).")] = Path(
        "raw"
    ),
    scale: ScaleOpt = 1.0,
    seed: SeedOpt = 42,
    signal: SignalOpt = Signal.default,
    future_days: Annotated[
        int, typer.Option(min=0, help="Daily delivery folders after the world's as_of.")
    ] = 120,
    drift: DriftOpt = None,
    drift_day: DriftDayOpt = 0,
) -> None:
    """Generate a synthetic world: vendor snapshots, CRM exports, the truth file and a future
    of daily deliveries after its as_of."""
    from leadscore.pipeline import stage_synth

    _call(
        lambda: stage_synth(
            raw, scale=scale, seed=seed, signal=_SIGNALS[signal], console=console,
            future_days=future_days, drift=drift, drift_day=drift_day,
        )
    )  # fmt: skip


@app.command()
def ingest(
    raw: Annotated[Path, typer.Option(help=RAW_HELP)] = Path("raw"),
    config: ConfigOpt = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Load vendor files that differ from a loaded quarter (backed up)."
        ),
    ] = False,
) -> None:
    """Load vendor snapshots and CRM exports into the warehouse."""
    from leadscore.pipeline import stage_ingest

    cfg = _settings(config)
    _call(lambda: stage_ingest(cfg, raw, console=console, replace=replace))


@app.command()
def build(
    join: Annotated[
        Join | None,
        typer.Option(
            help="asof: vintages available by contact time (correct). quarter: the contact "
            "quarter's vintage (leaks; for comparison). Default: the config's dataset.join."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Build the point-in-time training set and run the validation gates."""
    from leadscore.pipeline import stage_build

    cfg = _settings(config)
    chosen = _JOINS[join] if join is not None else cfg.dataset.join
    _call(lambda: stage_build(cfg, join=chosen, console=console))


@app.command()
def validate(config: ConfigOpt = None) -> None:
    """Re-run the validation gates on the current training set."""
    from leadscore.pipeline import stage_validate

    cfg = _settings(config)
    _call(lambda: stage_validate(cfg, console=console))


@app.command()
def train(
    override: OverrideOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Train, calibrate and evaluate; write a versioned model bundle."""
    from leadscore.pipeline import stage_train

    cfg = _settings(config)
    _call(lambda: stage_train(cfg, override_reason=override, console=console))


@app.command()
def explain(
    reference: Annotated[
        Path | None,
        typer.Option(
            help="CSV of a previous model's ranking (rank,feature,gain). Default: "
            "the config's project.reference_importance, else the packaged m5 ranking."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Global drivers, comparison with a reference model, cohorts."""
    from leadscore.pipeline import stage_explain

    cfg = _settings(config)
    _call(lambda: stage_explain(cfg, reference_csv=reference, console=console))


@app.command()
def score(
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of",
            help="Score leads contacted up to this time (with a zone: 2025-11-01T00:00:00Z).",
        ),
    ],
    config: ConfigOpt = None,
) -> None:
    """Score new contacted leads: warehouse table, Salesforce upsert file, rejects."""
    from leadscore.pipeline import stage_score

    cfg = _settings(config)
    _call(lambda: stage_score(cfg, as_of=_parse_ts(as_of), console=console))


@app.command()
def run(
    raw: Annotated[
        Path | None,
        typer.Option(help=RAW_HELP + " Ingested first; leave out to reuse the tables."),
    ] = None,
    override: OverrideOpt = None,
    config: ConfigOpt = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Run on a CRM export described by this mapping file.")
    ] = None,
) -> None:
    """The whole pipeline: ingest, build, validate, train, explain, score, report."""
    from leadscore.pipeline import run_pipeline

    cfg = _settings(config)
    if mapping is not None:
        from leadscore.generic.cli import run_mapping

        _call(lambda: run_mapping(mapping, cfg, override, console))
        return
    _call(lambda: run_pipeline(cfg, raw_dir=raw, console=console, override_reason=override))


@app.command()
def init(
    source: Annotated[Path, typer.Option("--from", help="CRM export (CSV or Parquet).")],
    out: Annotated[Path, typer.Option(help="Mapping file to write.")] = Path("mapping.toml"),
) -> None:
    """Inspect a CRM export and write a starter mapping with its guesses marked for review."""
    from leadscore.generic.cli import init_from

    _call(lambda: init_from(source, out, console))


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option(help="Working folder (created): raw/, data/, models/, reports/.")
    ] = Path("demo"),
    scale: ScaleOpt = 1.0,
    seed: SeedOpt = 42,
    signal: SignalOpt = Signal.default,
    override: OverrideOpt = None,
    days: Annotated[
        int, typer.Option(min=0, help="Then run `daily` over this many days of the future.")
    ] = 0,
) -> None:
    """Generate a synthetic world in WORKDIR and run the whole pipeline on it (then N days)."""
    from leadscore.pipeline import run_demo

    _call(
        lambda: run_demo(
            workdir,
            scale=scale,
            seed=seed,
            signal=_SIGNALS[signal],
            console=console,
            override_reason=override,
            days=days,
        )
    )


@app.command()
def report(config: ConfigOpt = None) -> None:
    """Render the one-page HTML report from the stages' results."""
    from leadscore.pipeline import stage_report

    cfg = _settings(config)
    _call(lambda: stage_report(cfg, console=console))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on ([serve] host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port ([serve] port).")] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without bearer tokens (local use only).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Score leads over HTTP (FastAPI on uvicorn) with the champion model."""
    from leadscore.pipeline import run_server

    cfg = _settings(config)
    tokens = tuple(t.strip() for t in os.environ.get("LEADSCORE_API_TOKENS", "").split(",") if t)
    if not tokens and not no_auth:
        console.print(
            "[bold red]error:[/bold red] set LEADSCORE_API_TOKENS (comma-separated bearer "
            "tokens) or pass --no-auth for local use"
        )
        raise typer.Exit(1)
    _call(lambda: run_server(cfg, tokens, host=host, port=port))


@app.command()
def push(config: ConfigOpt = None) -> None:
    """Upsert pending scores into Salesforce (Bulk API 2.0; LEADSCORE_SF_* credentials)."""
    from leadscore.pipeline import stage_push

    cfg = _settings(config)
    _call(lambda: stage_push(cfg, console=console))


@app.command()
def enablement(
    model: Annotated[
        str | None, typer.Option("--model", help="Model version (default: the latest).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """SGA guide, cheat sheet, playbook, Salesforce mapping and UI spec, runbook for a model."""
    from leadscore.pipeline import stage_enablement

    cfg = _settings(config)
    commands = tuple(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    _call(lambda: stage_enablement(cfg, model, commands, console=console))


from leadscore.registry.cli import models_app, refresh_cmd  # noqa: E402

app.add_typer(models_app, name="models")
app.command("refresh")(refresh_cmd)


def main() -> None:
    """Console entry point.

    XGBoost's OpenMP threads spin while they wait; on a busy 2-core machine that turned a 6 s
    fit into 90 s (measured). Passive waiting costs nothing when the machine is idle. It must be
    set before OpenMP loads, which is why the stages import their modules lazily.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()


def _register_daily() -> None:
    from leadscore.daily.cli import register

    register(app)


_register_daily()


def _register_monitor() -> None:
    from leadscore.monitor.cli import register

    register(app)


_register_monitor()
