"""Contact times after ``as_of`` are counted under their own reason, kept out and warned."""

from __future__ import annotations

import contextlib

from rich.console import Console

from leadscore.config import Settings
from leadscore.dataset import build_training_set
from leadscore.score.tables import count_contacted_after
from leadscore.warehouse import tables
from test_dataset import AS_OF, CATALOG, FIRMS, LEADS, REPS, cfg, lead, load_world, wh

__all__ = ["cfg", "wh"]  # fixtures shared with test_dataset

FUTURE = [lead("F01", 1, "2031-03-02T10:00:00"), lead("F02", None, "2025-01-01T00:00:01")]


def test_future_contacts_are_counted_kept_out_and_not_censored(wh, cfg: Settings) -> None:
    load_world(wh, REPS, FIRMS, [*LEADS, *FUTURE])
    result = build_training_set(wh, cfg, CATALOG)
    reasons = {
        r["lead_id"]: r["reason"]
        for r in wh.query(f"SELECT * FROM {tables.BUILD_EXCLUSIONS}").to_pylist()
    }
    assert reasons["F01"] == reasons["F02"] == "future_contact"
    assert result.n_future_contacts == 2
    assert (result.n_censored, result.n_rows, result.n_contacted) == (1, 9, 17)
    total = result.n_rows + sum(result.excluded.values()) + result.n_negative_days
    assert total + result.n_censored + result.n_future_contacts == result.n_contacted
    assert count_contacted_after(wh, cfg, AS_OF) == 2


def test_build_stage_warns_about_future_contacts(tmp_path) -> None:
    from leadscore import pipeline
    from leadscore.gates import GateFailed
    from leadscore.warehouse.duckdb import DuckDBWarehouse

    with DuckDBWarehouse(tmp_path / "data" / "leadscore.duckdb") as warehouse:
        load_world(warehouse, REPS, FIRMS, [*LEADS, *FUTURE])
    cfg = Settings.model_validate({"dataset": {"as_of": "2025-01-01T00:00:00Z"}})
    console = Console(record=True, width=300)
    # the 9-row training set may fail a data gate; the warning comes before the gates
    with contextlib.suppress(GateFailed):
        pipeline.stage_build(cfg.resolve(tmp_path), console=console)
    text = console.export_text()
    assert "warning: 2 lead(s) entered Contacting after as_of 2025-01-01T00:00:00+00:00" in text
