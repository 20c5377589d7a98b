"""Push stage runner: pending scores -> Bulk API 2.0 upsert jobs, crash-safe and exactly once.

Reads ``lead_scores``; writes ``sf_push_jobs`` and ``sf_push_rows``. Order of a chunk: open
the job, *record* the job and its rows as ``sent``, upload, close, poll, record each row's
result. A crash anywhere leaves a recorded job that the next push reconciles from
Salesforce's own job state, so a row that Salesforce accepted is never sent again, and a row
it never processed is sent again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pandas as pd
import pyarrow as pa

from leadscore.config import PushConfig, Settings
from leadscore.experiment.export import export_view
from leadscore.push.bulk import FINAL_STATES, BulkClient, BulkError
from leadscore.score.salesforce import render_upsert_csv
from leadscore.warehouse import Warehouse, tables
from leadscore.warehouse.sql import text as _lit
from leadscore.warehouse.sql import timestamp as _ts

_T = TypeVar("_T")
JOBS = "sf_push_jobs"
ROWS = "sf_push_rows"
_STAGE = "_stage_sf_push_rows"
_TS = pa.timestamp("us", tz="UTC")
ROW_SCHEMA = pa.schema(
    [("lead_id", pa.string()), ("model_version", pa.string()), ("run_id", pa.string()),
     ("job_id", pa.string()), ("status", pa.string()), ("error", pa.string()),
     ("updated_at", _TS)]
)  # fmt: skip
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {JOBS} (job_id VARCHAR, created_at TIMESTAMPTZ,"
    " state VARCHAR, n_rows BIGINT, n_accepted BIGINT, n_failed BIGINT,"
    " updated_at TIMESTAMPTZ)",
    f"CREATE TABLE IF NOT EXISTS {ROWS} (lead_id VARCHAR, model_version VARCHAR,"
    " run_id VARCHAR, job_id VARCHAR, status VARCHAR, error VARCHAR, updated_at TIMESTAMPTZ)",
)


@dataclass
class PushResult:
    """What one push did."""

    n_pending: int = 0
    n_jobs: int = 0
    n_accepted: int = 0
    n_failed: int = 0
    n_reconciled: int = 0
    retries: int = 0
    failed_reasons: dict[str, int] = field(default_factory=dict)
    left_in_flight: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Env:
    wh: Warehouse
    client: BulkClient
    cfg: PushConfig
    settings: Settings
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]


def ensure_push_tables(wh: Warehouse) -> None:
    """Create the push bookkeeping tables when missing."""
    for ddl in _DDL:
        wh.execute(ddl)


def pending_scores(wh: Warehouse) -> pd.DataFrame:
    """The newest score of each lead (shadow scores never leave), unless that score is
    already accepted or in flight."""
    sql = f"""
WITH newest AS (
  SELECT *
  FROM {tables.LEAD_SCORES}
  WHERE shadow IS NULL OR NOT shadow
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY lead_id ORDER BY scored_at DESC, model_version DESC
  ) = 1
)
SELECT n.*
FROM newest AS n
WHERE NOT EXISTS (
  SELECT 1 FROM {ROWS} AS p
  WHERE p.lead_id = n.lead_id AND p.model_version = n.model_version
    AND p.run_id = n.run_id AND p.status IN ('accepted', 'sent')
)
ORDER BY n.lead_id"""
    return wh.query(sql).to_pandas()


def push_pending(
    wh: Warehouse,
    client: BulkClient,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Reconcile unfinished jobs, then upsert every pending score in chunks.

    Invariant: a score row is in at most one job whose row status is ``accepted``; rows
    Salesforce failed are recorded with its error and are pending again on the next push.
    """
    cfg = settings.push
    env = _Env(wh, client, cfg, settings, clock, sleep)
    ensure_push_tables(wh)
    result = PushResult()
    result.n_reconciled = _reconcile(env, result)
    pending = pending_scores(wh)
    result.n_pending = len(pending)
    for start in range(0, len(pending), cfg.chunk_size):
        _push_chunk(env, pending.iloc[start : start + cfg.chunk_size], result)
    return result


def _push_chunk(env: _Env, rows: pd.DataFrame, result: PushResult) -> None:
    job_id = _retry(env, result, lambda: env.client.create_upsert_job(env.cfg.external_id_field))
    _record_job(env, job_id, rows)
    result.n_jobs += 1
    try:
        view, fields = export_view(env.wh, env.settings, rows)  # control leads: arm only
        env.client.upload(job_id, render_upsert_csv(view, fields))
        _retry(env, result, lambda: env.client.close(job_id))
    except BulkError:
        # An upload that may not have arrived whole is never closed: abort, send again later.
        _retry(env, result, lambda: env.client.abort(job_id))
        _settle(env, job_id, {"state": "Aborted"}, result)
        return
    _finish(env, job_id, result)


def _finish(env: _Env, job_id: str, result: PushResult) -> None:
    """Poll until the job is final (or give up for now), then record its rows' results."""
    deadline = time.monotonic() + env.cfg.poll_timeout_seconds
    while True:
        info = _retry(env, result, lambda: env.client.state(job_id))
        if info["state"] in FINAL_STATES:
            _settle(env, job_id, info, result)
            return
        if time.monotonic() >= deadline:
            result.left_in_flight.append(job_id)
            return
        env.sleep(env.cfg.poll_seconds)


def _settle(env: _Env, job_id: str, info: dict[str, object], result: PushResult) -> None:
    """Write each row's outcome; rows of an aborted or failed job become pending again."""
    state = str(info["state"])
    outcome: dict[str, tuple[str, str | None]] = {}
    if state == "JobComplete":
        for row in _retry(env, result, lambda: env.client.results(job_id, "successfulResults")):
            outcome[row["Id"]] = ("accepted", None)
        for row in _retry(env, result, lambda: env.client.results(job_id, "failedResults")):
            outcome[row["Id"]] = ("failed", row.get("sf__Error") or "unknown error")
    _apply_outcome(env, job_id, state, outcome, result)


def _apply_outcome(
    env: _Env,
    job_id: str,
    state: str,
    outcome: dict[str, tuple[str, str | None]],
    result: PushResult,
) -> None:
    sent = env.wh.query(f"SELECT * FROM {ROWS} WHERE job_id = {_lit(job_id)}").to_pandas()
    now = env.clock()
    statuses = [
        outcome.get(lead, ("failed", f"job {state}: not processed")) for lead in sent.lead_id
    ]
    sent["status"] = [s for s, _ in statuses]
    sent["error"] = [e for _, e in statuses]
    sent["updated_at"] = pd.Timestamp(now)
    counts = Counter(sent["status"])
    result.n_accepted += counts["accepted"]
    result.n_failed += counts["failed"]
    for error in sent.loc[sent.status == "failed", "error"]:
        code = str(error).split(":")[0]
        result.failed_reasons[code] = result.failed_reasons.get(code, 0) + 1
    env.wh.load_arrow(_STAGE, pa.Table.from_pandas(sent[ROW_SCHEMA.names], schema=ROW_SCHEMA,
                                                    preserve_index=False))  # fmt: skip
    with env.wh.transaction():
        env.wh.execute(f"DELETE FROM {ROWS} WHERE job_id = {_lit(job_id)}")
        env.wh.execute(f"INSERT INTO {ROWS} SELECT * FROM {_STAGE}")
        env.wh.execute(
            f"UPDATE {JOBS} SET state = {_lit(state)}, n_accepted = {counts['accepted']},"
            f" n_failed = {counts['failed']}, updated_at = {_ts(now)}"
            f" WHERE job_id = {_lit(job_id)}"
        )
    env.wh.execute(f"DROP TABLE IF EXISTS {_STAGE}")


def _record_job(env: _Env, job_id: str, rows: pd.DataFrame) -> None:
    """Record the job and its rows as ``sent`` *before* any data leaves."""
    now = env.clock()
    sent = pd.DataFrame(
        {
            "lead_id": rows["lead_id"].astype(str).to_numpy(),
            "model_version": rows["model_version"].astype(str).to_numpy(),
            "run_id": rows["run_id"].astype(str).to_numpy(),
            "job_id": job_id,
            "status": "sent",
            "error": None,
            "updated_at": pd.Timestamp(now),
        }
    )
    env.wh.load_arrow(_STAGE, pa.Table.from_pandas(sent, schema=ROW_SCHEMA, preserve_index=False))
    with env.wh.transaction():
        env.wh.execute(
            f"INSERT INTO {JOBS} VALUES ({_lit(job_id)}, {_ts(now)}, 'Open', {len(rows)},"
            f" 0, 0, {_ts(now)})"
        )
        env.wh.execute(f"INSERT INTO {ROWS} SELECT * FROM {_STAGE}")
    env.wh.execute(f"DROP TABLE IF EXISTS {_STAGE}")


def _reconcile(env: _Env, result: PushResult) -> int:
    """Settle jobs a previous push left unfinished (crash, timeout)."""
    open_jobs = env.wh.query(
        f"SELECT job_id FROM {JOBS} WHERE state NOT IN ('JobComplete', 'Failed', 'Aborted')"
        " ORDER BY created_at"
    ).column("job_id")
    for job_id in (str(j) for j in open_jobs.to_pylist()):
        info = _retry(env, result, lambda j=job_id: env.client.state(j))  # type: ignore[misc]
        if info["state"] == "Open":
            # Never closed, so never processed: abort and let its rows be sent again.
            _retry(env, result, lambda j=job_id: env.client.abort(j))  # type: ignore[misc]
            info = {"state": "Aborted"}
        if info["state"] in FINAL_STATES:
            _settle(env, job_id, info, result)
        else:
            _finish(env, job_id, result)
    return len(open_jobs)


def _retry(env: _Env, result: PushResult, call: Callable[[], _T]) -> _T:
    """Run ``call``, retrying transient failures with exponential backoff."""
    for attempt in range(env.cfg.max_retries + 1):
        try:
            return call()
        except BulkError as exc:
            if not exc.transient or attempt == env.cfg.max_retries:
                raise
            result.retries += 1
            env.sleep(env.cfg.backoff_seconds * 2**attempt)
    raise AssertionError("unreachable")
