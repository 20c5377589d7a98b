"""Pipeline runner: each stage with its I/O, progress and timing; `run` and `demo` chain them.

The stage functions here are the only place (besides the CLI) that opens the warehouse, reads
results of earlier stages from disk and prints. Library functions stay pure. ``run`` stops at
the first failed gate: :class:`~leadscore.gates.GateFailed` propagates to the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pandas as pd
from rich.console import Console
from rich.table import Table

from leadscore.config import CONFIG_FILE, Settings, load_settings
from leadscore.io import provenance, write_json
from leadscore.progress import ProgressFn, progress_bar
from leadscore.warehouse import Warehouse, tables, warehouse_session

if TYPE_CHECKING:
    from leadscore.dataset import BuildResult
    from leadscore.enablement.run import EnablementResult
    from leadscore.explain.shap import ExplainResult
    from leadscore.ingest.load import IngestResult
    from leadscore.score.batch import ScoringRun
    from leadscore.synthetic.world import WorldManifest
    from leadscore.train.fit import TrainResult
    from leadscore.validate.run import ValidationResult

T = TypeVar("T")
SUMMARY_FILE = "summary.json"
LATEST_MODEL = "LATEST"
TRAIN_SUMMARY = "latest.json"
#: Days of synthetic future the demo's world carries (daily runs can go this far).
DEMO_FUTURE_DAYS = 120


def _console(console: Console | None) -> Console:
    return console or Console(quiet=True)


_warehouse = warehouse_session  # the project's warehouse for a ``with`` block


def _with_bar(title: str, console: Console, fn: Callable[[ProgressFn], T]) -> T:
    with progress_bar(title, console) as bar:
        return fn(bar)


# --- stages ----------------------------------------------------------------------------------


def stage_synth(
    out: Path,
    scale: float = 1.0,
    seed: int = 42,
    signal: Literal["default", "weak"] = "default",
    console: Console | None = None,
    future_days: int = 0,
    drift: str | None = None,
    drift_day: int = 0,
) -> WorldManifest:
    """Generate the synthetic world into ``out`` (with ``future_days`` of daily deliveries
    after its ``as_of`` and, optionally, a planted drift from ``drift_day``)."""
    from leadscore.synthetic import generate_world
    from leadscore.synthetic.future import parse_drift

    con = _console(console)
    planted = parse_drift(drift, drift_day)
    manifest = _with_bar(
        "synth",
        con,
        lambda bar: generate_world(
            out,
            scale=scale,
            seed=seed,
            signal=signal,
            progress=bar,
            future_days=future_days,
            drift=planted,
        ),
    )
    con.print(f"synthetic world ({signal}, scale {scale}, seed {seed}) written to {out}")
    return manifest


def stage_ingest(
    cfg: Settings, src: Path, console: Console | None = None, replace: bool = False
) -> IngestResult:
    """Load a delivery folder into the warehouse and write the data quality report.

    ``replace``: load vendor files that differ from a quarter already loaded (the old table
    is kept as a dated backup); without it they are refused.
    """
    from leadscore.ingest.load import ingest_directory

    con = _console(console)
    with _warehouse(cfg) as wh:
        result = _with_bar(
            "ingest",
            con,
            lambda bar: ingest_directory(wh, src, cfg, bar, replace_quarters=replace),
        )
    for line in result.warnings:
        con.print(f"[yellow]warning:[/yellow] {line}", soft_wrap=True)
    for change in result.replacements:
        con.print(
            f"replaced {change['file']}: {change['rows_before']:,} -> {change['rows_after']:,}"
            f" rows ({change['keys_added']:,} keys added, {change['keys_removed']:,} removed,"
            f" {change['keys_changed']:,} changed); old table kept as {change['backup']}",
            soft_wrap=True,
        )
    con.print(result.summary())
    return result


def stage_build(
    cfg: Settings, join: Literal["asof", "quarter"] = "asof", console: Console | None = None
) -> tuple[BuildResult, ValidationResult]:
    """Build the point-in-time training set, then run the validation gates on it."""
    from leadscore.catalog import load_catalog
    from leadscore.dataset import build_training_set
    from leadscore.validate.run import validate_training_set

    con = _console(console)
    catalog = load_catalog()
    with _warehouse(cfg) as wh:
        with con.status(f"building the {join} training set"):
            build = build_training_set(wh, cfg, catalog, join=join)
        con.print(
            f"training set ({join} join): {build.n_rows:,} rows, {build.n_positives:,} positives;"
            f" excluded {sum(build.excluded.values()):,} by CRD/snapshot, "
            f"{build.n_negative_days:,} negative days, {build.n_censored:,} right-censored"
        )
        if build.n_future_contacts:
            con.print(
                f"[yellow]warning:[/yellow] {build.n_future_contacts:,} lead(s) entered "
                f"Contacting after as_of {build.as_of.isoformat()}; kept out of the training set"
                " (reason future_contact)",
                soft_wrap=True,
            )
        write_json(cfg.project.reports_dir / "build" / f"build_{join}.json", build.to_dict())
        with con.status("validating"):
            validation = validate_training_set(wh, cfg, catalog, build, join=join)
    con.print(f"validation: {len(validation.gates)} gates passed")
    return build, validation


def stage_quarter_comparison(cfg: Settings, console: Console | None = None) -> dict[str, Any]:
    """Build the legacy quarter-join set beside the real one and count how much it leaks.

    Writes ``reports/build/build_quarter.json``; the as-of training set is not touched.
    """
    from leadscore.catalog import load_catalog
    from leadscore.dataset import build_training_set
    from leadscore.validate.checks import check_leakage

    with _warehouse(cfg) as wh:
        build = build_training_set(wh, cfg, load_catalog(), join="quarter")
        df = wh.query(f"SELECT * FROM {build.table}").to_pandas()
    figures = check_leakage(df, "quarter", build.n_contacted).figures
    out = {**build.to_dict(), **{k: v for k, v in figures.items() if k != "examples"}}
    write_json(cfg.project.reports_dir / "build" / "build_quarter.json", out)
    _console(console).print(
        f"the legacy quarter join would leak: {figures['leakage_records_matched']:,} of "
        f"{figures['matched_records']:,} matched leads see a snapshot delivered after contact"
    )
    return out


def stage_validate(cfg: Settings, console: Console | None = None) -> ValidationResult:
    """Re-run the validation gates on the current training set."""
    from leadscore.catalog import load_catalog
    from leadscore.validate.run import validate_training_set

    con = _console(console)
    with _warehouse(cfg) as wh:
        validation = validate_training_set(wh, cfg, load_catalog())
    con.print(f"validation: {len(validation.gates)} gates passed")
    return validation


def read_training_frame(wh: Warehouse) -> pd.DataFrame:
    """The training table as pandas (UTC-aware timestamps)."""
    return wh.query(
        f"SELECT * FROM {tables.TRAINING_SET} ORDER BY contact_ts, lead_id"
    ).to_pandas()


def read_dials(wh: Warehouse, cfg: Settings) -> pd.Series:
    """Dials per training lead within its label window (lead id -> number of calls).

    A dial counts when ``contact_ts <= dial time <= contact_ts + label_window_days`` and not
    after the lead's MQL (the KPI is MQLs per 100 dials within the window); dials before
    contact, after the MQL or after the window are left out. Leads without a counted dial
    get 0.
    """
    c = cfg.crm
    window = f"INTERVAL {int(cfg.dataset.label_window_days)} DAY"
    df = wh.query(
        f'SELECT t.lead_id, count(d."{c.task_lead_col}") AS n_dials\n'
        f"FROM {tables.TRAINING_SET} AS t\n"
        f"LEFT JOIN {tables.TASKS} AS d\n"
        f'  ON d."{c.task_lead_col}" = t.lead_id\n'
        f"  AND d.\"{c.task_type_col}\" = '{c.dial_type}'\n"
        f'  AND d."{c.task_ts_col}" >= t.contact_ts\n'
        f'  AND d."{c.task_ts_col}" <= t.contact_ts + {window}\n'
        f"  AND (t.converted_ts IS NULL OR t.converted_ts < t.contact_ts\n"
        f'       OR d."{c.task_ts_col}" <= t.converted_ts)\n'
        "GROUP BY 1"
    ).to_pandas()
    return df.set_index("lead_id")["n_dials"]


def read_truth(cfg: Settings) -> pd.Series | None:
    """Oracle probabilities (synthetic world only), or None."""
    path = cfg.project.truth_file
    if path is None:
        return None
    truth = pd.read_csv(path, usecols=["Id", "true_probability"], dtype={"Id": str})
    return truth.set_index("Id")["true_probability"]


def reference_importance(cfg: Settings) -> Path:
    """The previous model's ranking to compare with (m5's unless configured)."""
    if cfg.project.reference_importance is not None:
        return cfg.project.reference_importance
    return Path(str(resources.files("leadscore") / "reference" / "m5_importance.csv"))


def stage_train(
    cfg: Settings, override_reason: str | None = None, console: Console | None = None
) -> Path:
    """Train, calibrate, evaluate; write reports and (gates permitting) the model bundle."""
    from leadscore.bundle import publish_model
    from leadscore.catalog import default_catalog_path, load_catalog
    from leadscore.registry.runner import register_trained
    from leadscore.train.fit import train_model

    con = _console(console)
    catalog = load_catalog()
    with _warehouse(cfg) as wh:
        df = read_training_frame(wh)
        dials = read_dials(wh, cfg)
    result = _with_bar(
        "train",
        con,
        lambda bar: train_model(
            df,
            catalog.feature_types(),
            cfg,
            dials=dials,
            true_probability=read_truth(cfg),
            progress=bar,
            override_reason=override_reason,
            catalog_fingerprint=catalog.fingerprint,
        ),
    )
    write_json(cfg.project.reports_dir / "train" / TRAIN_SUMMARY, train_summary(result))
    contract = cfg.project.reports_dir / "validate" / "schema_contract.json"
    from leadscore.monitor.reference import REFERENCE_FILE, build_reference

    reference = build_reference(
        df, result.feature_types, result.predictions, result.metrics.get("holdout", {})
    )  # monitoring: the frozen reference, written into the bundle (checksummed)
    path = publish_model(
        result, cfg.project.models_dir, default_catalog_path(), contract,
        extra={REFERENCE_FILE: reference},
    )  # fmt: skip
    con.print(f"model {result.version} written to {path}")
    register_trained(cfg, path, df, con)  # the registry decides the champion; LATEST mirrors it
    return path


def train_summary(result: TrainResult) -> dict[str, Any]:
    """What the last training run measured, kept even when its gates stop the bundle."""
    return {
        "version": result.version,
        "report_dir": str(result.report_dir),
        "strategy": result.strategy,
        "features": result.features,
        "metrics": result.metrics,
        "gates": [g.to_dict() for g in result.gates],
        "override_reason": result.override_reason,
        "steps": result.steps,
        "data_fingerprint": result.data_fingerprint,
        "provenance": provenance(
            result.config.config_hash(),
            result.config.project.global_seed,
            str(result.data_fingerprint.get("sha256")),
        ),
    }


def latest_bundle_path(cfg: Settings, read_only: bool = False) -> Path:
    """Folder of the champion in the model registry, its checksums re-verified."""
    from leadscore.registry.runner import champion_path

    return champion_path(cfg, read_only)


def run_server(
    cfg: Settings, tokens: tuple[str, ...], host: str | None = None, port: int | None = None
) -> None:
    """Run the HTTP scoring service until interrupted (uvicorn, one process)."""
    import uvicorn

    from leadscore.serve import create_app
    from leadscore.serve.source import ModelSource

    models = ModelSource(
        lambda: latest_bundle_path(cfg, read_only=True),
        cfg.serve.model_check_seconds,
        background=True,  # a refresher thread follows the champion; requests never wait
    )
    models.current()  # fail at start, not at the first request, when there is no model
    app = create_app(cfg, models, tokens=tokens)
    uvicorn.run(app, host=host or cfg.serve.host, port=port or cfg.serve.port, log_level="info")


def stage_push(cfg: Settings, console: Console | None = None) -> Any:
    """Upsert every pending score into Salesforce and say what happened."""
    from leadscore.push import SalesforceSettings, connect, push_pending

    con = _console(console)
    client = connect(SalesforceSettings.from_env(), cfg.push.object_name)
    with _warehouse(cfg) as wh:
        result = push_pending(wh, client, cfg)
    con.print(
        f"pushed {result.n_pending:,} pending scores in {result.n_jobs} jobs: "
        f"{result.n_accepted:,} accepted, {result.n_failed:,} failed {result.failed_reasons}; "
        f"{result.retries} retries; {result.n_reconciled} earlier jobs reconciled"
    )
    if result.left_in_flight:
        con.print(f"still processing at Salesforce (settled next push): {result.left_in_flight}")
    return result


def stage_explain(
    cfg: Settings, reference_csv: Path | None = None, console: Console | None = None
) -> ExplainResult:
    """Global drivers, comparison with the reference model, cohort analysis."""
    from leadscore.bundle import load_bundle
    from leadscore.catalog import load_catalog
    from leadscore.explain.shap import explain_model

    con = _console(console)
    bundle = load_bundle(latest_bundle_path(cfg))
    with _warehouse(cfg) as wh:
        df = read_training_frame(wh)
    result = _with_bar(
        "explain",
        con,
        lambda bar: explain_model(
            bundle,
            df,
            load_catalog(),
            reference_csv or reference_importance(cfg),
            cfg.project.reports_dir / "explain",
            score_cfg=cfg.score,
            progress=bar,
        ),
    )
    con.print(
        f"explained {result.n_rows:,} leads; max |additivity error| "
        f"{result.max_additivity_error:.2e}"
    )
    return result


def stage_score(cfg: Settings, as_of: datetime, console: Console | None = None) -> ScoringRun:
    """Score every lead contacted up to ``as_of`` that this model has not scored yet."""
    from leadscore.bundle import load_bundle
    from leadscore.catalog import load_catalog
    from leadscore.score.batch import score_leads
    from leadscore.score.tables import count_contacted_after

    con = _console(console)
    bundle = load_bundle(latest_bundle_path(cfg))
    with _warehouse(cfg) as wh:
        n_future = count_contacted_after(wh, cfg, as_of)
        run = _with_bar(
            "score",
            con,
            lambda bar: score_leads(
                wh,
                cfg,
                bundle,
                as_of,
                load_catalog(),
                bar,
                out_dir=cfg.project.reports_dir / "score",
            ),
        )
    con.print(
        f"scored {run.n_scored:,}, rejected {run.n_rejected:,} {run.rejected_by_reason}; "
        f"Salesforce file {run.salesforce_csv}; run record {run.record_path}"
    )
    if n_future:
        con.print(
            f"[yellow]warning:[/yellow] {n_future:,} lead(s) entered Contacting after as_of "
            f"{as_of.isoformat()}; not scored in this run",
            soft_wrap=True,
        )
    return run


def stage_report(cfg: Settings, console: Console | None = None) -> Path:
    """Render the one-page HTML report from the stages' results on disk."""
    from leadscore.report.html import render_report

    path = render_report(cfg)
    _console(console).print(f"report: {path}")
    return path


def stage_enablement(
    cfg: Settings,
    version: str | None = None,
    available_commands: tuple[str, ...] = (),
    console: Console | None = None,
) -> EnablementResult:
    """SGA and operations documents for a model (default: the latest) from its holdout."""
    from leadscore.bundle import load_bundle
    from leadscore.catalog import load_catalog
    from leadscore.enablement.run import write_enablement

    path = cfg.project.models_dir / version if version else latest_bundle_path(cfg)
    if not (path / "manifest.json").exists():
        raise FileNotFoundError(f"no model {version!r} in {cfg.project.models_dir}")
    bundle = load_bundle(path)
    with _warehouse(cfg) as wh:
        df = read_training_frame(wh)
    out = cfg.project.reports_dir / "enablement" / bundle.version
    con = _console(console)
    with con.status(f"enablement documents for {bundle.version}"):
        result = write_enablement(bundle, df, load_catalog(), cfg.score, out, available_commands)
    con.print(
        f"enablement for {result.version}: {result.n_holdout:,} holdout leads, "
        f"{result.n_recommendations} playbook recommendation(s); written to {out}"
    )
    return result


# --- the whole pipeline ----------------------------------------------------------------------


def run_pipeline(
    cfg: Settings,
    raw_dir: Path | None = None,
    console: Console | None = None,
    override_reason: str | None = None,
) -> dict[str, Any]:
    """ingest -> build -> validate -> train -> explain -> score -> report; writes summary.json.

    ``summary.json`` goes into the project folder (the parent of ``data_dir``).

    Stops at the first failed gate (the exception propagates) after writing what it has, so
    the report still renders and says why.
    """
    from leadscore.report.html import load_model_figures

    con = _console(console)
    as_of = cfg.dataset.as_of
    if as_of is None:
        raise ValueError("set [dataset] as_of in leadscore.toml (the data's extraction time)")
    summary: dict[str, Any] = {"as_of": as_of.isoformat(), "stage_seconds": {}}

    def timed(name: str, fn: Callable[[], T]) -> T:
        con.rule(f"[bold]{name}")
        start = time.perf_counter()
        try:
            return fn()
        finally:
            summary["stage_seconds"][name] = round(time.perf_counter() - start, 2)

    try:
        if raw_dir is not None:
            timed("ingest", lambda: stage_ingest(cfg, raw_dir, con))
        build, _ = timed("build+validate", lambda: stage_build(cfg, "asof", con))
        summary.update(n_training_rows=build.n_rows, n_positives=build.n_positives)
        quarter = timed("quarter-join comparison", lambda: stage_quarter_comparison(cfg, con))
        summary["quarter_join_leakage_records_matched"] = quarter["leakage_records_matched"]
        timed("train", lambda: stage_train(cfg, override_reason, con))
        summary["fallback"] = timed("fallback", lambda: _fallback(cfg, con))
        timed("explain", lambda: stage_explain(cfg, None, con))
        run = timed("score", lambda: stage_score(cfg, as_of, con))
        summary.update({"n_scored": run.n_scored, "n_rejected": run.n_rejected})
    finally:
        summary.update(load_model_figures(cfg))
        summary["report_path"] = str(_try_report(cfg, con))
        write_json(cfg.project.data_dir.parent / SUMMARY_FILE, summary)
        print_summary(summary, con)
    return summary


def _fallback(cfg: Settings, con: Console) -> dict[str, Any]:
    """Train the fallback model of the bundle just published (daily scoring needs it)."""
    from leadscore.daily.commands import stage_fallback

    model = stage_fallback(cfg, con)
    keys = ("holdout_aucpr", "holdout_ece", "holdout_auc", "n_rows", "n_unmatched_rows")
    return {"version": model.version, **{k: model.metrics[k] for k in keys}}


def _try_report(cfg: Settings, con: Console) -> Path | None:
    try:
        return stage_report(cfg, con)
    except Exception as exc:  # the report must never hide the original failure
        con.print(f"[yellow]report not rendered: {exc}[/yellow]")
        return None


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """The short end-of-run table."""
    table = Table(title="leadscore summary", show_header=False)
    rows = [
        ("training rows", summary.get("n_training_rows")),
        ("positives", summary.get("n_positives")),
        ("leakage records (matched)", summary.get("leakage_records_matched")),
        ("holdout AUC-PR", summary.get("holdout_aucpr")),
        ("oracle AUC-PR", summary.get("oracle_aucpr")),
        ("ECE overall", summary.get("ece_overall")),
        ("gates passed", _gates_line(summary.get("gates"))),
        ("leads scored / rejected", f"{summary.get('n_scored')} / {summary.get('n_rejected')}"),
        ("report", summary.get("report_path")),
    ]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    console.print(table)


def _gates_line(gates: dict[str, bool] | None) -> str:
    if not gates:
        return "-"
    failed = [name for name, ok in gates.items() if not ok]
    return f"{len(gates) - len(failed)}/{len(gates)}" + (
        f" (failed: {', '.join(failed)})" if failed else ""
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


# --- demo ------------------------------------------------------------------------------------


def write_demo_config(workdir: Path, manifest: WorldManifest, seed: int) -> Path:
    """The demo folder's leadscore.toml: its own warehouse, the world's as_of and truth file."""
    text = (
        "# Written by `leadscore demo`: this folder's warehouse, models and reports.\n"
        "[project]\n"
        f"global_seed = {seed}\n"
        'truth_file = "raw/truth/lead_truth.csv"\n\n'
        "[vendor]\n"
        f"delivery_lag_days = {manifest.delivery_lag_days}\n\n"
        "[dataset]\n"
        f'as_of = "{manifest.as_of}"\n'
        f"label_window_days = {manifest.label_window_days}\n"
    )
    path = workdir / CONFIG_FILE
    path.write_text(text)
    return path


def run_demo(
    workdir: Path,
    scale: float = 1.0,
    seed: int = 42,
    signal: Literal["default", "weak"] = "default",
    console: Console | None = None,
    override_reason: str | None = None,
    days: int = 0,
) -> dict[str, Any]:
    """Generate a synthetic world in ``workdir`` and run the whole pipeline on it, then
    ``days`` days of daily operation over the world's future."""
    con = _console(console)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    manifest = stage_synth(
        workdir / "raw", scale, seed, signal, con, future_days=max(days, DEMO_FUTURE_DAYS)
    )
    synth_seconds = round(time.perf_counter() - start, 2)
    cfg = load_settings(write_demo_config(workdir, manifest, seed))
    simulate_seconds = None
    try:
        summary = run_pipeline(
            cfg, raw_dir=workdir / "raw", console=con, override_reason=override_reason
        )
        if days:
            from leadscore.daily.simulate import stage_simulate

            start = time.perf_counter()
            con.rule(f"[bold]daily x {days}")
            summary.update(stage_simulate(cfg, days, workdir / "raw", con))
            from leadscore.monitor.scenarios import record_alerts

            summary.update(record_alerts(cfg))  # monitoring: summary.json gains `alerts`
            simulate_seconds = round(time.perf_counter() - start, 2)
    finally:
        _add_demo_figures(workdir, synth_seconds, scale, seed, signal, simulate_seconds)
    return summary


def _add_demo_figures(
    workdir: Path,
    synth_seconds: float,
    scale: float,
    seed: int,
    signal: str,
    simulate_seconds: float | None = None,
) -> None:
    import json

    path = workdir / SUMMARY_FILE
    if not path.exists():
        return
    summary = json.loads(path.read_text())
    summary["stage_seconds"] = {"synth": synth_seconds, **summary.get("stage_seconds", {})}
    if simulate_seconds is not None:
        summary["stage_seconds"]["daily_simulation"] = simulate_seconds
    summary["world"] = {"scale": scale, "seed": seed, "signal": signal}
    write_json(path, summary)
