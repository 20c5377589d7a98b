"""``leadscore models ...`` and ``leadscore refresh``: thin commands over the registry.

Each command loads the settings, calls one registry function and prints a short answer.
Refusals and changed bundles exit 2 with one line; other user errors exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from leadscore.registry.records import ModelRecord

T = TypeVar("T")
models_app = typer.Typer(
    help="Model registry: list, show, promote, reject, roll back.", no_args_is_help=True
)
console = Console()

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default ./leadscore.toml).")
]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Time of the change (default: the project's latest known time)."),
]


@contextmanager
def _registry_errors() -> Iterator[None]:
    from leadscore.registry.lifecycle import PromotionRefused
    from leadscore.registry.records import RegistryError, TamperedBundle

    try:
        yield
    except (PromotionRefused, TamperedBundle) as exc:
        console.print(f"[bold red]REFUSED[/bold red] {exc}")
        raise typer.Exit(2) from None
    except RegistryError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(1) from None


def _run(config: Path | None, fn: Callable[[Any, Any], T]) -> T:
    """Load settings, open the warehouse, call ``fn(cfg, wh)`` with loud, one-line errors."""
    from leadscore.cli import _fail_loudly, _settings
    from leadscore.registry.runner import opened

    cfg = _settings(config)
    with _fail_loudly(), _registry_errors(), opened(cfg) as wh:
        return fn(cfg, wh)


def _at(value: str | None, cfg: Any, wh: Any) -> datetime:
    from leadscore.cli import _parse_ts
    from leadscore.registry.runner import project_time

    return _parse_ts(value) if value else project_time(wh, cfg)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


@models_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Every registered model version with its status and headline figures."""
    from leadscore.registry.store import list_models

    records: list[ModelRecord] = _run(config, lambda cfg, wh: list_models(wh))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2, sort_keys=True))
        return
    table = Table(title="model registry")
    for col in ("version", "status", "as_of", "holdout AUC-PR", "ECE", "gates", "since"):
        table.add_column(col, no_wrap=col in ("version", "status"))
    for r in records:
        table.add_row(
            r.version, r.status, r.as_of.date().isoformat(), _fmt(r.metrics.get("aucpr")),
            _fmt(r.metrics.get("ece")), "passed" if r.gates_passed else "FAILED",
            r.status_changed_at.isoformat(),
        )  # fmt: skip
    console.print(table)


@models_app.command("show")
def show_cmd(
    version: Annotated[str, typer.Argument(help="Model version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """One model: lineage, hashes, figures, gates, comparison, status history, its scores."""
    from leadscore.registry.lineage import score_lineage
    from leadscore.registry.store import get_model, history

    def gather(cfg: Any, wh: Any) -> dict[str, Any]:
        return {
            **get_model(wh, version).to_dict(),
            "history": [{**e.__dict__, "at": e.at.isoformat()} for e in history(wh, version)],
            "scores_by_vintage": score_lineage(wh, version),
        }

    doc = _run(config, gather)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return
    for key in ("version", "status", "as_of", "train_start_ts", "train_end_ts",
                "n_training_rows", "vintages", "data_fingerprint", "config_hash",
                "catalog_hash", "code_version", "bundle_path", "gates_passed",
                "override_reason"):  # fmt: skip
        console.print(f"[bold]{key}[/bold]: {doc[key]}")
    console.print(f"[bold]metrics[/bold]: {json.dumps(doc['metrics'], default=str)}")
    if doc["comparison"]:
        c = doc["comparison"]
        console.print(
            f"[bold]vs champion {c['champion_version']}[/bold]: AUC-PR difference "
            f"{c['aucpr_diff']:+.4f} {c['aucpr_diff_ci']} on {c['n_leads']} leads; "
            + ("passed" if c["passed"] else "; ".join(c["reasons"]))
        )
    for e in doc["history"]:
        console.print(f"  {e['at']}  {e['from_status']} -> {e['to_status']}: {e['reason']}")
    for row in doc["scores_by_vintage"]:
        console.print(
            f"  scores: {row['n_scores']:,} with reps vintage {row['reps_vintage']}, "
            f"firms vintage {row['firms_vintage']} (contacts {row['first_contact']} .. "
            f"{row['last_contact']})"
        )


@models_app.command("promote")
def promote_cmd(
    version: Annotated[str, typer.Argument(help="Model version to make champion.")],
    override: Annotated[
        str | None, typer.Option(help="Promote despite the rules; the reason is recorded.")
    ] = None,
    at: AtOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Make a challenger the champion (gates, comparison and shadow period permitting)."""
    from leadscore.registry.lifecycle import promote
    from leadscore.registry.runner import mirror_latest

    def go(cfg: Any, wh: Any) -> Any:
        done = promote(wh, cfg, version, _at(at, cfg, wh), override)
        mirror_latest(cfg, done.champion)
        return done

    done = _run(config, go)
    console.print(f"champion: {done.champion} (was {done.previous}); {done.reason}")


@models_app.command("rollback")
def rollback_cmd(
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "rollback",
    at: AtOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Make the previous champion the champion again; the next scoring run uses it."""
    from leadscore.registry.lifecycle import rollback
    from leadscore.registry.runner import mirror_latest

    def go(cfg: Any, wh: Any) -> Any:
        done = rollback(wh, _at(at, cfg, wh), reason, cfg.project.models_dir)
        mirror_latest(cfg, done.champion)
        return done

    done = _run(config, go)
    console.print(f"champion: {done.champion} (rolled back from {done.previous})")


@models_app.command("reject")
def reject_cmd(
    version: Annotated[str, typer.Argument(help="Candidate or shadow model to reject.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    at: AtOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Reject a challenger: it stops shadowing and can never be promoted."""
    from leadscore.registry.lifecycle import reject

    done = _run(config, lambda cfg, wh: reject(wh, version, _at(at, cfg, wh), reason))
    console.print(f"model {done.version} rejected at {done.status_changed_at.isoformat()}")


@models_app.command("due")
def due_cmd(
    as_of: Annotated[str, typer.Option("--as-of", help="Check the triggers at this time.")],
    config: ConfigOpt = None,
) -> None:
    """Say whether a refresh is due (new vintage, model age) and why."""
    from leadscore.cli import _parse_ts
    from leadscore.registry.lifecycle import refresh_due

    reasons = _run(config, lambda cfg, wh: refresh_due(wh, cfg, _parse_ts(as_of)))
    console.print("refresh due: " + "; ".join(reasons) if reasons else "no refresh due")


def refresh_cmd(
    as_of: Annotated[str, typer.Option("--as-of", help="Extraction time of the new data.")],
    override: Annotated[
        str | None,
        typer.Option(help="Train the challenger despite failed model gates (recorded)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Rebuild the training set at AS_OF, train a challenger, compare it with the champion."""
    from leadscore.cli import _fail_loudly, _parse_ts, _settings
    from leadscore.registry.runner import stage_refresh

    cfg = _settings(config)
    with _fail_loudly(), _registry_errors():
        stage_refresh(cfg, _parse_ts(as_of), console=console, override_reason=override)
