"""ingest: a CRM delivery (a daily Lead/Task delta) is merged by Id, never replaces the table."""

from __future__ import annotations

import shutil
from pathlib import Path

from leadscore.config import Settings
from leadscore.ingest import schema
from leadscore.ingest.load import ingest_directory
from leadscore.warehouse.duckdb import DuckDBWarehouse
from test_ingest import _write, lead, rows, write_crm


def _delta(root: Path, leads: list[dict[str, str]], tasks: list[dict[str, str]]) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    _write(root / "crm" / "Lead.csv", list(schema.LEAD_COLUMNS), leads)
    _write(root / "crm" / "Task.csv", list(schema.TASK_COLUMNS), tasks)
    return root


def _task(task_id: str, who: str, disposition: str) -> dict[str, str]:
    return {"Id": task_id, "WhoId": who, "OwnerId": "005A", "Type": "Call", "Subject": "Dial",
            "CallDisposition": disposition, "CallDurationInSeconds": "60",
            "ActivityDate": "2024-03-06", "CreatedDate": "2024-03-06T10:00:00+0000"}  # fmt: skip


def test_a_delta_adds_and_updates_leads_and_never_deletes(tmp_path: Path) -> None:
    cfg = Settings().resolve(tmp_path)
    full = tmp_path / "full"
    write_crm(full)  # L1, L2, L3 and task T1
    with DuckDBWarehouse(tmp_path / "wh.duckdb") as wh:
        ingest_directory(wh, full, cfg)
        newer = lead("L2", "42", modified="2024-03-09T00:00:00.000+0000")
        stale = lead("L1", "77", modified="2024-03-01T00:00:00.000+0000")  # older than stored
        new = lead("L4", "5", modified="2024-03-09T00:00:00.000+0000")
        delta = _delta(tmp_path / "day1", [newer, stale, new], [_task("T2", "L4", "Busy")])
        result = ingest_directory(wh, delta, cfg)
        assert {f.action for f in result.files} == {"merged"}
        assert "2 merged by Id" in result.summary()
        leads = {r["Id"]: r for r in rows(wh, "SELECT * FROM crm_leads")}
        assert sorted(leads) == ["L1", "L2", "L3", "L4"]  # nothing deleted, L4 added
        assert leads["L2"]["FA_CRD__c"] == "42" and leads["L2"]["crd_status"] == "ok"
        assert leads["L1"]["FA_CRD__c"] == "1"  # the stale delivered row lost to the stored one
        assert [r["Id"] for r in rows(wh, "SELECT Id FROM crm_tasks ORDER BY Id")] == ["T1", "T2"]
        # the same delivery again is skipped (unchanged file); a re-sent task updates its row
        assert ingest_directory(wh, delta, cfg).skipped
        again = _delta(tmp_path / "day2", [newer], [_task("T2", "L4", "Connected")])
        ingest_directory(wh, again, cfg)
        tasks = rows(wh, "SELECT Id, CallDisposition FROM crm_tasks ORDER BY Id")
        assert tasks == [
            {"Id": "T1", "CallDisposition": "Connected"},
            {"Id": "T2", "CallDisposition": "Connected"},
        ]
        assert rows(wh, "SELECT count(*) AS n FROM crm_leads") == [{"n": 4}]
        assert not [t for t in wh.list_tables() if t.startswith("_ingest")]
