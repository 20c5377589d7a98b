"""The Salesforce push against a local Bulk API 2.0 stand-in: chunks, retries, row failures,
crashes between steps, and the rule that an accepted row is never sent again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.salesforce_standin import RunningStandIn

from leadscore.config import PushConfig, Settings
from leadscore.push import BulkClient, BulkError, SalesforceSettings, connect, push_pending
from leadscore.push.run import ROWS, pending_scores
from leadscore.score.tables import SCORE_SCHEMA, ensure_tables
from leadscore.warehouse import tables
from leadscore.warehouse.duckdb import DuckDBWarehouse

T0 = datetime(2025, 11, 1, tzinfo=UTC)
FAST = Settings(push=PushConfig(chunk_size=10, max_retries=3, backoff_seconds=0,
                                poll_seconds=0, poll_timeout_seconds=5))  # fmt: skip


def _lead_id(i: int) -> str:
    return f"00Q{i:015d}"


def _scores(n: int, version: str = "v1", run: str = "r1", at: datetime = T0) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    p = rng.uniform(0.001, 0.6, n)
    return pd.DataFrame({
        "lead_id": [_lead_id(i) for i in range(n)], "model_version": version, "run_id": run,
        "OwnerId": "005000000000001AAA", "RepCRD": np.arange(n) + 1000,
        "contact_ts": pd.Timestamp(T0 - timedelta(days=1)), "aum_tier": "Small",
        "probability": p, "margin": np.log(p / (1 - p)), "score": (p * 99).astype(int) + 1,
        "bucket": "Warm", "tier": "B", "drivers_text": "Small firm (+0.4)", "drivers_json": "{}",
        "reps_snapshot_quarter": pd.Timestamp("2025-07-01").date(),
        "firms_snapshot_quarter": pd.Timestamp("2025-07-01").date(), "scored_at": pd.Timestamp(at),
        "flag": None, "shadow": False,
    })  # fmt: skip


def _add_scores(wh: DuckDBWarehouse, frame: pd.DataFrame) -> None:
    ensure_tables(wh)
    data = pa.Table.from_pandas(frame, schema=SCORE_SCHEMA, preserve_index=False)
    wh.load_arrow(tables.LEAD_SCORES, data, "append")


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[RunningStandIn]:
    server = RunningStandIn(tmp_path)
    yield server
    server.stop()


def _client(server: RunningStandIn, timeout: float = 5.0) -> BulkClient:
    settings = SalesforceSettings(instance_url=server.url, access_token="standin-token",
                                  timeout_seconds=timeout, ca_bundle=str(server.cert))  # fmt: skip
    return connect(settings)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    yield warehouse
    warehouse.close()


def _row_status(wh: DuckDBWarehouse) -> dict[str, int]:
    rows = wh.query(f"SELECT status, COUNT(*) AS n FROM {ROWS} GROUP BY status").to_pylist()
    return {r["status"]: r["n"] for r in rows}


def _sent_once(server: RunningStandIn) -> bool:
    return all(len(rows) == 1 for rows in server.state.accepted.values())


def test_pending_scores_go_out_in_chunks_and_only_once(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    _add_scores(wh, _scores(25))
    first = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert (first.n_pending, first.n_jobs, first.n_accepted, first.n_failed) == (25, 3, 25, 0)
    assert len(standin.state.accepted) == 25 and _sent_once(standin)
    row = standin.state.accepted[_lead_id(3)][0]
    assert row["Lead_Score_Model_Version__c"] == "v1" and row["Lead_Score_Tier__c"] == "B"
    again = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert (again.n_pending, again.n_jobs) == (0, 0)
    assert _row_status(wh) == {"accepted": 25}


def test_row_failures_are_recorded_and_retried_on_the_next_push(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    _add_scores(wh, _scores(12))
    bad = {_lead_id(i): "FIELD_CUSTOM_VALIDATION_EXCEPTION:Score locked" for i in (1, 5, 7)}
    standin.state.faults.fail_ids.update(bad)
    first = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert (first.n_accepted, first.n_failed) == (9, 3)
    assert first.failed_reasons == {"FIELD_CUSTOM_VALIDATION_EXCEPTION": 3}
    standin.state.faults.fail_ids.clear()
    second = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert (second.n_pending, second.n_accepted) == (3, 3)
    assert len(standin.state.accepted) == 12 and _sent_once(standin)


def test_server_errors_and_timeouts_are_retried_with_backoff(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    _add_scores(wh, _scores(10))
    standin.state.faults.fail_next("create", 503, times=2)
    standin.state.faults.fail_next("state_change", 500)
    standin.state.faults.delay_next("get_job", 1.5)
    slept: list[float] = []
    slow = FAST.model_copy(update={"push": FAST.push.model_copy(update={"backoff_seconds": 0.25})})
    result = push_pending(wh, _client(standin, timeout=0.5), slow, sleep=slept.append)
    assert result.n_accepted == 10 and _sent_once(standin)
    assert result.retries == 4
    assert slept[:2] == [0.25, 0.5]  # exponential backoff


def test_persistent_server_errors_stop_the_push_loudly(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    _add_scores(wh, _scores(5))
    standin.state.faults.fail_next("create", 503, times=10)
    with pytest.raises(BulkError, match="HTTP 503"):
        push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert len(pending_scores(wh)) == 5  # nothing marked


def test_failed_upload_aborts_the_job_and_sends_the_rows_again(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    _add_scores(wh, _scores(6))
    standin.state.faults.fail_next("upload", 500)
    first = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert first.n_accepted == 0 and first.n_failed == 6
    assert [j.state for j in standin.state.jobs.values()] == ["Aborted"]
    second = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert second.n_accepted == 6 and _sent_once(standin)


class _Crash(BaseException):
    """Stands in for the process dying (not an Exception, so nothing catches it)."""


class _CrashingClient(BulkClient):
    def __init__(self, inner: BulkClient, at: str) -> None:
        self._client = inner._client
        self._at = at

    def upload(self, job_id: str, csv_text: str) -> None:
        if self._at == "before_upload":
            raise _Crash
        super().upload(job_id, csv_text)

    def close(self, job_id: str) -> None:
        super().close(job_id)
        if self._at == "after_close":
            raise _Crash


@pytest.mark.parametrize("at", ["before_upload", "after_close"])
def test_a_crash_between_steps_loses_nothing_and_sends_nothing_twice(
    wh: DuckDBWarehouse, standin: RunningStandIn, at: str
) -> None:
    _add_scores(wh, _scores(8))
    with pytest.raises(_Crash):
        push_pending(wh, _CrashingClient(_client(standin), at), FAST, sleep=lambda s: None)
    assert _row_status(wh) == {"sent": 8}
    after = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert after.n_reconciled == 1
    assert len(standin.state.accepted) == 8 and _sent_once(standin)
    assert _row_status(wh) == ({"accepted": 8} if at == "after_close"
                               else {"accepted": 8, "failed": 8})  # fmt: skip


def test_a_job_still_processing_is_settled_later_not_resent(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    _add_scores(wh, _scores(4))
    standin.state.faults.process_after_polls = 3
    cfg = FAST.model_copy(
        update={"push": FAST.push.model_copy(update={"poll_timeout_seconds": 1e-9})}
    )
    first = push_pending(wh, _client(standin), cfg, sleep=lambda s: None)
    assert first.left_in_flight and first.n_accepted == 0
    assert pending_scores(wh).empty  # in flight: not pending
    later = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert later.n_accepted == 4 and later.n_jobs == 0 and _sent_once(standin)


def test_a_newer_score_of_an_accepted_lead_is_pending_again(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    _add_scores(wh, _scores(3))
    push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    _add_scores(wh, _scores(3, version="v2", run="r2", at=T0 + timedelta(days=1)).iloc[:1])
    pending = pending_scores(wh)
    assert list(pending.lead_id) == [_lead_id(0)] and pending.model_version.iloc[0] == "v2"


def test_shadow_scores_never_leave(wh: DuckDBWarehouse, standin: RunningStandIn) -> None:
    _add_scores(wh, _scores(3))
    later = _scores(3, version="v-shadow", run="r-shadow", at=T0 + timedelta(days=1))
    _add_scores(wh, later.assign(shadow=True))
    result = push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    assert result.n_accepted == 3
    versions = {row[0]["Lead_Score_Model_Version__c"] for row in standin.state.accepted.values()}
    assert versions == {"v1"}


def test_control_leads_of_a_running_experiment_go_out_with_their_arm_and_no_score(
    wh: DuckDBWarehouse, standin: RunningStandIn
) -> None:
    from leadscore.config import ExperimentConfig
    from leadscore.experiment.assign import assign_units, save_assignments

    _add_scores(wh, _scores(12))
    units = pd.DataFrame({"unit_id": [_lead_id(i) for i in range(12)], "stratum": "Small"})
    exp = ExperimentConfig()
    assigned = assign_units(units, exp.salt, 42)
    save_assignments(wh, assigned, exp, T0)
    push_pending(wh, _client(standin), FAST, sleep=lambda s: None)
    arm = dict(zip(assigned["unit_id"], assigned["arm"], strict=True))
    assert {"control", "treatment"} == set(arm.values())
    for lead, rows in standin.state.accepted.items():
        row = rows[0]
        assert row["Lead_Score_AB_Arm__c"] == arm[lead]
        assert (row["Lead_Score__c"] == "") == (arm[lead] == "control")


def test_credentials_come_from_the_environment_only() -> None:
    with pytest.raises(ValueError, match="LEADSCORE_SF_INSTANCE_URL"):
        SalesforceSettings.from_env({})
    s = SalesforceSettings.from_env(
        {
            "LEADSCORE_SF_INSTANCE_URL": "https://x.my.salesforce.com",
            "LEADSCORE_SF_ACCESS_TOKEN": "t",
        }
    )
    assert s.instance_url == "https://x.my.salesforce.com" and s.access_token == "t"
