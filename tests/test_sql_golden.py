"""The generated point-in-time SQL, compared with checked-in golden files.

A change to the SQL shows up in review as a diff of ``tests/golden/*.sql``. After an intended
change, regenerate them and review the diff:

    LEADSCORE_UPDATE_GOLDEN=1 python -m pytest -q tests/test_sql_golden.py
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadscore.catalog import load_catalog
from leadscore.config import Settings
from leadscore.dataset import JoinMode, PitContext, _wrapped, pit_sql
from leadscore.warehouse import transpile

GOLDEN = Path(__file__).parent / "golden"
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
CASES: dict[str, tuple[JoinMode, bool]] = {
    "pit_training_asof": ("asof", True),
    "pit_scoring_asof": ("asof", False),
    "pit_training_quarter": ("quarter", True),
}


def generated(join: JoinMode, training: bool) -> str:
    ctx = PitContext.from_settings(Settings(), join=join, training=training, as_of=AS_OF)
    return pit_sql(ctx, load_catalog()) + "\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_sql_matches_golden_file(name: str) -> None:
    sql = generated(*CASES[name])
    path = GOLDEN / f"{name}.sql"
    if os.environ.get("LEADSCORE_UPDATE_GOLDEN") == "1":
        path.write_text(sql, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with LEADSCORE_UPDATE_GOLDEN=1"
    assert sql == path.read_text(encoding="utf-8"), (
        f"generated SQL differs from {path.name}; if intended, regenerate with "
        "LEADSCORE_UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_sql_is_readable(name: str) -> None:
    """One item per line, no line past 99 columns, every step commented."""
    sql = generated(*CASES[name])
    assert max(len(line) for line in sql.splitlines()) <= 99
    for step in ("-- 1.", "-- 2.", "-- 3.", "-- 4.", "-- 5.", "-- 6."):
        assert step in sql
    # Each vintage column is named once: in its restrict step, nowhere else.
    assert (
        sql.count('"DateBecameRep"') == 1
        and sql.count('"Number_Investment_Advisory_Clients"') == 1
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_sql_transpiles_to_bigquery(name: str) -> None:
    (bq,) = transpile(generated(*CASES[name]), "bigquery", dataset="LeadScoring")
    assert "EXCEPT (lead_id, `RepCRD`)" in bq and "QUALIFY" in bq


def test_wrapping_changes_only_whitespace() -> None:
    catalog = load_catalog()
    names = [s.name for s in catalog.segments] + catalog.model_features()
    wrapped = 0
    for name in names:
        item = catalog.select_sql(name)
        out = _wrapped(item)
        assert out.replace("\n  ", " ") == item, name
        wrapped += "\n" in out
    assert wrapped > 0
    # Quoted text is never split, even when it holds spaces.
    literal = "CASE WHEN x = '" + "a b " * 40 + "' THEN 1 END"
    assert "'" + "a b " * 40 + "'" in _wrapped(literal)
