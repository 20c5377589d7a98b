"""Registry stage: lineage of a model's training data and of its scores.

Reads the training table (vendor vintages its rows joined) and ``lead_scores`` (each score row's
model version and the vintages its features came from); writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from leadscore.registry.records import TrainingLineage
from leadscore.warehouse import Warehouse, tables

VINTAGE_COLUMNS = {"reps": "reps_snapshot_quarter", "firms": "firms_snapshot_quarter"}


def training_lineage(df: pd.DataFrame, as_of: datetime) -> TrainingLineage:
    """The vintages (snapshot quarters, ISO dates) the training rows joined, and the row count."""
    vintages = {}
    for kind, col in VINTAGE_COLUMNS.items():
        if col in df.columns:
            values = pd.to_datetime(df[col].dropna()).dt.strftime("%Y-%m-%d")
            vintages[kind] = sorted(set(values.tolist()))
    return TrainingLineage(as_of=as_of, vintages=vintages, n_rows=len(df))


def score_lineage(wh: Warehouse, version: str) -> list[dict[str, Any]]:
    """Scores of ``version`` per (reps vintage, firms vintage): how many, first and last contact.

    Every ``lead_scores`` row names its model version and the vintages its features came from.
    """
    if not wh.table_exists(tables.LEAD_SCORES):
        return []
    text = "'" + version.replace("'", "''") + "'"
    df = wh.query(
        "SELECT CAST(reps_snapshot_quarter AS VARCHAR) AS reps_vintage,"
        " CAST(firms_snapshot_quarter AS VARCHAR) AS firms_vintage,"
        " count(*) AS n_scores, min(contact_ts) AS first_contact,"
        " max(contact_ts) AS last_contact"
        f" FROM {tables.LEAD_SCORES} WHERE model_version = {text}"
        " GROUP BY 1, 2 ORDER BY 1, 2"
    ).to_pandas()
    for col in ("first_contact", "last_contact"):
        df[col] = pd.to_datetime(df[col], utc=True).map(lambda t: t.isoformat())
    return list(df.astype(object).where(df.notna(), None).to_dict("records"))
