"""Every statement the BigQuery warehouse would send, analyzed by GoogleSQL (ZetaSQL).

How it works (details in ``bigquery_shadow.py`` and ``googlesql.py``): each *workload* below drives
real stage functions on a :class:`ShadowWarehouse` over the small synthetic world. The shadow runs
every call on a real DuckDB warehouse (so the stages get real answers and take their real paths)
and on the real :class:`BigQueryWarehouse` over a recording client, which keeps each query script
and load job BigQuery would receive. The recorded stream is then replayed, in order, through
Google's ZetaSQL analyzer against a catalog that grows as BigQuery's dataset would (load jobs and
``CREATE`` statements add tables, ``DROP`` removes them). A refused statement fails
``test_every_statement_analyzes`` with the analyzer's message and the statement.

**Every new SQL statement goes through this test.** When a stage sends new SQL to the
warehouse (a new table, query, MERGE, a wave-two package such as ``daily``, ``monitor``,
``registry`` or ``experiment``), register a workload that calls the stage's real function with
``wh`` (a ``ShadowWarehouse``; ``wh.dialect == "bigquery"``)::

    @workload("monitor")
    def _monitor(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
        compute_health(wh, ctx.cfg, as_of=ctx.as_of)

Workloads run in registration order and share one warehouse, so a workload may read tables an
earlier one created. SQL that no small-world run reaches (an option, an error path) can be
sent with ``wh.execute(generator(...))`` from a workload, or checked with
``googlesql.analyze(sql)`` in a test of its own. If the new code declares a table schema, add
it to ``_declared`` so the table BigQuery would create is compared with the declaration.

What this cannot see is left to the recording-client tests in ``test_warehouse.py``: job
configuration, dataset qualification, load-job formats, transaction scripting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bigquery_shadow import ShadowWarehouse
from conftest import SMALL_SCALE, SmallWorld
from googlesql import GoogleSql, Verdict
from leadscore.catalog import SQL_TYPES, Catalog, load_catalog
from leadscore.config import Settings, load_settings
from leadscore.dataset import (
    KEY_COLUMNS,
    LABEL_COLUMNS,
    VINTAGE_COLUMNS,
    PitContext,
    build_scoring_set,
    build_training_set,
    pit_sql,
    resolve_as_of,
)
from leadscore.ingest import schema
from leadscore.ingest.load import ingest_directory
from leadscore.pipeline import read_dials, read_training_frame
from leadscore.score import tables as score_tables
from leadscore.score.batch import score_leads
from leadscore.validate.run import validate_training_set
from leadscore.warehouse import tables, transpile


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class WorkloadContext:
    """What a workload may use: the small world's settings, catalog, raw files and a folder."""

    cfg: Settings
    catalog: Catalog
    world: SmallWorld
    out_dir: Path
    trained: Path  # a project folder the session's pipeline run trained (its bundle, registry)

    @property
    def as_of(self) -> datetime:
        return datetime.fromisoformat(self.world.manifest["as_of"]).astimezone(UTC)


Workload = Callable[[ShadowWarehouse, WorkloadContext], None]
#: name -> workload, in the order they run. Every stage that sends SQL has one.
WORKLOADS: dict[str, Workload] = {}
#: Future days the ``daily`` workload's world has: enough to reach its first new vintage.
FUTURE_DAYS = 17


def workload(name: str) -> Callable[[Workload], Workload]:
    """Register a workload (see the module docstring)."""

    def register(fn: Workload) -> Workload:
        if name in WORKLOADS:
            raise ValueError(f"workload {name!r} registered twice")
        WORKLOADS[name] = fn
        return fn

    return register


@workload("ingest")
def _ingest(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """Staging load jobs, the typed cast pass, profile, dedup + load, ingest_log, views."""
    ingest_directory(wh, ctx.world.raw, ctx.cfg)


@workload("build")
def _build(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """Point-in-time training sets, as-of and the plan's quarter join, with their counts."""
    build_training_set(wh, ctx.cfg, ctx.catalog, join="quarter")
    build_training_set(wh, ctx.cfg, ctx.catalog, join="asof")
    resolve_as_of(wh, ctx.cfg.model_copy(update={"dataset": ctx.cfg.dataset.model_copy(
        update={"as_of": None})}), None)  # fmt: skip


@workload("validate")
def _validate(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """The validation gates read the training set from the warehouse."""
    validate_training_set(wh, ctx.cfg, ctx.catalog)


@workload("readers")
def _readers(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """What training reads: the training frame and dials per lead."""
    read_training_frame(wh)
    read_dials(wh, ctx.cfg)


@workload("scoring set")
def _scoring_set(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """The scoring builder for chosen leads and for every lead contacted by as_of."""
    ids = wh.duckdb.query(f"SELECT Id FROM {tables.LEADS} ORDER BY Id LIMIT 5")
    build_scoring_set(wh, ctx.cfg, ctx.catalog, ids.column("Id").to_pylist(), as_of=ctx.as_of)
    build_scoring_set(wh, ctx.cfg, ctx.catalog, as_of=ctx.as_of, join="quarter")


@workload("score")
def _score(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """Batch scoring with a real bundle: tables, candidates, staged upserts, rejects,
    export marking and the run record; twice, so the second run upserts over the first."""
    from test_score import make_bundle

    df = wh.duckdb.query(f"SELECT * FROM {tables.TRAINING_SET}").to_pandas()
    features = ctx.catalog.model_features()
    y = df["target"].to_numpy()
    if y.min() == y.max():  # a tiny world may lack one class; the bundle needs both
        y = (np.arange(len(df)) % 2).astype(int)
    bundle = make_bundle(df, features, ctx.catalog.feature_types(), y, ctx.out_dir)
    later = ctx.as_of + timedelta(days=1)
    for as_of in (ctx.as_of - timedelta(days=60), later):
        score_leads(wh, ctx.cfg, bundle, as_of, ctx.catalog, out_dir=ctx.out_dir, batch_size=400)
    score_tables.export_pending(wh, str(bundle.version))


@workload("experiment")
def _experiment(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """The A/B test: the plan's KPI query, assignment of new leads, arms per lead, monitor."""
    from leadscore.experiment.assign import assign_new, lead_arms
    from leadscore.experiment.run import plan_from_warehouse

    cfg = ctx.cfg.model_copy(update={"experiment": ctx.cfg.experiment.model_copy(
        update={"start": ctx.as_of - timedelta(days=60)})})  # fmt: skip
    plan_from_warehouse(wh, cfg, ctx.as_of)
    assign_new(wh, cfg, ctx.as_of)
    lead_arms(wh, cfg)


@workload("registry")
def _registry(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """The model registry: register a real bundle, promote it, list, shadows, triggers."""
    from leadscore.pipeline import latest_bundle_path
    from leadscore.registry.lifecycle import promote, refresh_due
    from leadscore.registry.store import list_models, register, shadow_models

    bundle = latest_bundle_path(load_settings(ctx.trained / "leadscore.toml"))
    record = register(wh, bundle, ctx.as_of)
    promote(wh, ctx.cfg, record.version, ctx.as_of, override_reason="analyzer workload")
    list_models(wh)
    shadow_models(wh)
    refresh_due(wh, ctx.cfg, ctx.as_of + timedelta(days=200))


@workload("push")
def _push(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """The Salesforce push's bookkeeping tables and its pending-scores query."""
    from leadscore.push.run import ensure_push_tables, pending_scores

    ensure_push_tables(wh)
    pending_scores(wh)


@workload("generic")
def _generic(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """Any CRM export: the lead and enrichment loads, their cleaning, the level counts and the
    point-in-time spine of `leadscore generic`."""
    from leadscore.generic.build import GenericContext, build_spine, level_counts, load_source
    from leadscore.generic.catalog import catalog_from_mapping
    from leadscore.generic.mapping import load_mapping
    from leadscore.generic.synth import AS_OF, generate_crm_tables

    crm = generate_crm_tables(ctx.out_dir / "generic", n_leads=400, seed=7)
    mapping = load_mapping(crm.mapping)
    load_source(wh, mapping)
    catalog = catalog_from_mapping(mapping, level_counts(wh, mapping, None))
    build_spine(wh, GenericContext(mapping, AS_OF, True), catalog)


def _reports_in(ctx: WorkloadContext) -> Settings:
    """The world's settings with reports written under the workload's folder."""
    project = ctx.cfg.project.model_copy(update={"reports_dir": ctx.out_dir / "reports"})
    return ctx.cfg.model_copy(update={"project": project})


@workload("daily")
def _daily(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """The daily job on the world's future: a CRM delta day, then the day a new vintage
    arrives (ingest merge, scoring set, main and fallback scores, rejects, events, export,
    run records, the monitoring hook), then the same day in shadow mode; the fallback is
    trained from the history the warehouse holds."""
    from leadscore.bundle import load_bundle
    from leadscore.daily.fallback import read_history, train_fallback
    from leadscore.daily.run import DailyContext, run_daily
    from leadscore.daily.scoring import Models
    from leadscore.daily.simulate import day_folders
    from leadscore.pipeline import latest_bundle_path
    from leadscore.synthetic import generate_world

    # the same world with a future: its history files are the ones already ingested
    raw = ctx.out_dir / "future_world"
    generate_world(raw, scale=SMALL_SCALE, seed=42, future_days=FUTURE_DAYS)
    days = day_folders(raw, FUTURE_DAYS)
    vintage_day = next(d for d in days if (d[0] / "vendor").is_dir())
    cfg = _reports_in(ctx)
    bundle = load_bundle(latest_bundle_path(load_settings(ctx.trained / "leadscore.toml")))
    fallback = train_fallback(read_history(wh), cfg, str(bundle.version))
    for (folder, as_of), shadow in ((days[0], False), (vintage_day, False), (vintage_day, True)):
        # a shadow pass labels its fallback rows apart, as `leadscore daily` does
        version = f"{fallback.version}@shadow" if shadow else fallback.version
        models = Models(bundle, replace(fallback, version=version), ctx.catalog)
        day = DailyContext(wh, cfg, models, as_of, ctx.out_dir / "daily", shadow)
        run_daily(day, raw=None if shadow else folder, backfill=shadow)


@workload("monitor")
def _monitor(wh: ShadowWarehouse, ctx: WorkloadContext) -> None:
    """`leadscore monitor` after the daily runs: drift (PSI) over the bins, positive rate,
    estimates, and the alerts table's upkeep (an alert opened, seen again, closed)."""
    from leadscore.daily.store import last_as_of
    from leadscore.monitor.run import load_reference, run_monitor
    from leadscore.pipeline import latest_bundle_path

    path = latest_bundle_path(load_settings(ctx.trained / "leadscore.toml"))
    reference = load_reference(path)
    assert reference is not None, f"{path}: the bundle has no monitoring reference"
    cfg = _reports_in(ctx)
    # a one-day freshness limit raises an alert (INSERT), the next day sees it again
    # (UPDATE last_seen); back at the default limit, `clear_runs` quiet days close it
    # (UPDATE closed_at)
    strict = cfg.model_copy(update={"monitor": cfg.monitor.model_copy(
        update={"vintage_max_age_days": 1})})  # fmt: skip
    last = last_as_of(wh.duckdb)
    assert last is not None, "the daily workload ran no day"
    quiet = [(2 + k, cfg) for k in range(cfg.monitor.clear_runs)]
    for days, settings in [(0, strict), (1, strict), *quiet]:
        run_monitor(wh, settings, reference, path.name, last + timedelta(days=days))
    alerts = wh.duckdb.query("SELECT * FROM monitor_alerts WHERE rule = 'data_freshness'")
    assert alerts.num_rows == 1 and alerts.column("closed_at")[0].is_valid, alerts.to_pylist()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def googlesql() -> GoogleSql:
    """One ZetaSQL analyzer per test session (starting it takes tens of seconds)."""
    pytest.importorskip("zetasql")
    return GoogleSql()


@dataclass(frozen=True)
class Replay:
    """What the workloads sent, the analyzer's verdicts, and the shadow's own findings."""

    shadow: ShadowWarehouse
    verdicts: list[Verdict]
    analyzer: GoogleSql


@pytest.fixture(scope="session")
def replay(
    small_world: SmallWorld,
    finished_run: Path,
    googlesql: GoogleSql,
    tmp_path_factory: pytest.TempPathFactory,
) -> Replay:
    root = tmp_path_factory.mktemp("bigquery")
    cfg = load_settings(small_world.project / "leadscore.toml")
    ctx = WorkloadContext(cfg, load_catalog(), small_world, root / "out", finished_run)
    shadow = ShadowWarehouse(root / "shadow.duckdb")
    for name, fn in WORKLOADS.items():
        with shadow.labelled(name):
            fn(shadow, ctx)
    googlesql.tables.clear()
    verdicts = googlesql.replay(shadow.client.sent)
    return Replay(shadow, verdicts, googlesql)


# ----------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_statement_analyzes(replay: Replay, name: str) -> None:
    mine = [v for v in replay.verdicts if v.label == name]
    assert mine, f"workload {name!r} sent no SQL to BigQuery"
    refused = [f"{v.error}\n--- statement:\n{v.sql}" for v in mine if not v.ok]
    assert not refused, f"GoogleSQL refused {len(refused)} statement(s):\n" + "\n\n".join(refused)


def test_the_stream_covers_every_kind_of_statement(replay: Replay) -> None:
    kinds = {v.kind for v in replay.verdicts}
    expected = {
        "ResolvedQueryStmt",
        "ResolvedCreateTableAsSelectStmt",
        "ResolvedCreateTableStmt",
        "ResolvedCreateViewStmt",
        "ResolvedInsertStmt",
        "ResolvedDeleteStmt",
        "ResolvedUpdateStmt",
        "ResolvedDropStmt",
        "ResolvedBeginStmt",
        "ResolvedCommitStmt",
    }
    assert expected <= kinds, f"missing: {sorted(expected - kinds)}"
    loads = [s for s in replay.shadow.client.sent if s.load_schema is not None]
    assert {s.load_table for s in loads} >= {
        "LeadScoring._ingest_stage",
        f"LeadScoring._stage_{tables.LEAD_SCORES}",
        f"LeadScoring._stage_{tables.SCORE_REJECTS}",
        f"LeadScoring._stage_{tables.SCORING_RUNS}",
    }


def test_no_query_waits_inside_a_transaction(replay: Replay) -> None:
    # BigQuery runs a transaction as one script at COMMIT; a query inside it would get no rows
    assert replay.shadow.problems == []


def test_no_table_is_created_or_dropped_inside_a_transaction(replay: Replay) -> None:
    # BigQuery allows only DML and temporary-table DDL in a transaction (leadscore.warehouse.swap)
    ddl = [f"[{v.label}] {v.sql.splitlines()[0]}" for v in replay.verdicts
           if v.in_transaction and v.is_ddl]  # fmt: skip
    assert not ddl, "DDL inside a transaction:\n" + "\n".join(sorted(set(ddl)))


def _declared(catalog: Catalog) -> dict[str, dict[str, str]]:
    """Tables whose schema the project declares, as GoogleSQL types."""
    logical = {"int": "TYPE_INT64", "float": "TYPE_DOUBLE", "bool": "TYPE_BOOL", "date":
               "TYPE_DATE", "timestamp": "TYPE_TIMESTAMP", "str": "TYPE_STRING"}  # fmt: skip
    sql = {"DOUBLE": "TYPE_DOUBLE", "BIGINT": "TYPE_INT64", "BOOLEAN": "TYPE_BOOL",
           "VARCHAR": "TYPE_STRING"}  # fmt: skip
    lineage = {"_source_file": "TYPE_STRING", "_source_row": "TYPE_INT64"}
    vintage = {"snapshot_quarter": "TYPE_DATE", "available_at": "TYPE_TIMESTAMP"}

    def typed(columns: Mapping[str, str]) -> dict[str, str]:
        return {c: logical[t] for c, t in columns.items()}

    leads = {**typed(schema.LEAD_COLUMNS), "RepCRD": "TYPE_INT64", "crd_status": "TYPE_STRING"}
    training = {
        **dict.fromkeys(KEY_COLUMNS, "TYPE_STRING"),
        "RepCRD": "TYPE_INT64",
        "contact_ts": "TYPE_TIMESTAMP",
        **dict(zip(LABEL_COLUMNS, ["TYPE_TIMESTAMP", "TYPE_INT64", "TYPE_INT64"], strict=True)),
        **dict(zip(VINTAGE_COLUMNS, ["TYPE_DATE", "TYPE_TIMESTAMP"] * 2, strict=True)),
        **{s.name: "TYPE_STRING" for s in catalog.segments},
        **{f: sql[SQL_TYPES[catalog.feature(f).dtype]] for f in catalog.model_features()},
    }
    arrow = GoogleSql.arrow_kinds
    return {
        "snapshot_reps_": {**typed(schema.REPS_COLUMNS), **vintage, **lineage},
        "snapshot_firms_": {**typed(schema.FIRMS_COLUMNS), **vintage, **lineage},
        tables.LEADS: {**leads, **lineage},
        tables.TASKS: {**typed(schema.TASK_COLUMNS), **lineage},
        tables.TRAINING_SET: training,
        tables.LEAD_SCORES: {
            **arrow(score_tables.SCORE_SCHEMA),
            "sf_export_run_id": "TYPE_STRING",
        },
        tables.SCORE_REJECTS: arrow(score_tables.REJECT_SCHEMA),
        tables.SCORING_RUNS: arrow(score_tables.RUN_SCHEMA),
    }


def test_tables_bigquery_would_create_match_their_declared_schemas(replay: Replay) -> None:
    declared = _declared(load_catalog())
    created = {name: replay.analyzer.columns(name) for name in replay.analyzer.table_names()}
    matched = set()
    for name, columns in created.items():
        prefix = next((p for p in declared if name.startswith(p)), None)
        if prefix is None or name.endswith("_spine"):  # the build's scratch table
            continue
        spec = declared[prefix]
        assert columns == spec, f"{name}: BigQuery would create {columns}, declared {spec}"
        matched.add(prefix)
    assert matched == set(declared), f"never created: {sorted(set(declared) - matched)}"


# ----------------------------------------------------------------------------- it bites
def _pit(cfg_join: str = "asof") -> str:
    ctx = PitContext(join=cfg_join, training=True, as_of=datetime(2024, 6, 1, tzinfo=UTC),  # type: ignore[arg-type]
                     label_window_days=30)  # fmt: skip
    (sql,) = transpile(pit_sql(ctx, load_catalog()), "bigquery", dataset="LeadScoring")
    return sql


@pytest.mark.parametrize("join", ["asof", "quarter"])
def test_the_point_in_time_sql_analyzes_and_a_misspelt_column_is_refused(
    replay: Replay, join: str
) -> None:
    analyzer = replay.analyzer
    good = _pit(join)
    assert analyzer.analyze(good).ok, analyzer.analyze(good).error
    # the first mention is unqualified (the vintage candidates), the second qualified (r.)
    unqualified = analyzer.analyze(good.replace("available_at", "availabl_at", 1))
    assert "Unrecognized name: availabl_at; Did you mean available_at?" in unqualified.error
    qualified = analyzer.analyze(good.replace("r.reps_available_at", "r.reps_availabl_at", 1))
    assert qualified.error == "Name reps_availabl_at not found inside r"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT ISODOW(contact_ts) FROM LeadScoring.training_set", "Function not found: ISODOW"),
        # sqlglot passes an unknown DuckDB function through unchanged
        (transpile("SELECT epoch_ns(contact_ts) FROM training_set", "bigquery", "LeadScoring")[0],
         "Function not found: EPOCH_NS"),
        ("SELECT lead_id FROM LeadScoring.training_set WHERE contact_ts = 'soon'",
         "Could not cast literal"),
        ("INSERT INTO LeadScoring.lead_scores (lead_id, score) SELECT lead_id, 0.5 "
         "FROM LeadScoring.training_set", "cannot be inserted into column score"),
        ("SELECT * FROM LeadScoring.no_such_table", "Table not found"),
    ],
)  # fmt: skip
def test_what_bigquery_would_refuse_is_refused(replay: Replay, sql: str, message: str) -> None:
    verdict = replay.analyzer.analyze(sql)
    assert not verdict.ok
    assert message.lower() in verdict.error.lower(), verdict.error


def test_a_load_through_pandas_would_have_broken_the_score_upsert(replay: Replay) -> None:
    # An INT64 column holding a NULL becomes FLOAT64 through pandas; loaded that way, the staged
    # scores cannot be inserted into lead_scores. Load jobs now send Parquet with Arrow types.
    staged = pa.table({"RepCRD": pa.array([1, None], pa.int64())})
    assert str(pa.Schema.from_pandas(staged.to_pandas()).field("RepCRD").type) == "double"
    analyzer = replay.analyzer
    saved = dict(analyzer.tables)
    try:
        analyzer.add_arrow_table("_stage_probe", pa.schema([("RepCRD", pa.float64())]))
        verdict = analyzer.analyze(
            "INSERT INTO LeadScoring.lead_scores (RepCRD) "
            "SELECT RepCRD FROM LeadScoring._stage_probe"
        )
    finally:
        analyzer.tables = saved
    assert not verdict.ok and "RepCRD" in verdict.error
