"""Experiment stage, Salesforce side: control leads are scored and stored but never shown.

Pure functions over score rows (``lead_scores`` columns) and lead arms. The upsert file of a
running experiment carries one more field, the arm; a control lead's row has the arm and empty
score fields, so the SGA's screen shows nothing to sort by. The warehouse keeps every score.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from leadscore.config import Settings
from leadscore.score.salesforce import LEAD_SCORE_FIELDS, SalesforceField
from leadscore.warehouse import Warehouse

ARM_FIELD = SalesforceField(
    "ab_arm", "Lead_Score_AB_Arm__c", "picklist", length=20, values=("treatment", "control"),
    required=False, description="A/B test arm; control leads carry no score",
)  # fmt: skip
#: Columns that a control lead's upsert row leaves empty.
HIDDEN_COLUMNS = ("score", "probability", "bucket", "tier", "drivers_text")


def experiment_fields() -> tuple[SalesforceField, ...]:
    """The upsert file's fields while an experiment runs: the score fields, optional, plus arm."""
    fields = tuple(
        replace(f, required=False) if f.column in HIDDEN_COLUMNS else f for f in LEAD_SCORE_FIELDS
    )
    return (*fields, ARM_FIELD)


def blank_control_rows(rows: pd.DataFrame, arms: pd.DataFrame) -> pd.DataFrame:
    """Score rows with ``ab_arm`` added and the score fields emptied for control leads.

    Args:
        rows: score rows with ``lead_id`` (e.g. from ``lead_scores``); not modified.
        arms: ``lead_id`` and ``arm`` of the experiment's leads.

    Returns one row per input row, same order. Leads outside the experiment keep their score
    and get an empty arm.
    """
    arm_of = arms.drop_duplicates("lead_id").set_index("lead_id")["arm"]
    out = rows.copy()
    out["ab_arm"] = out["lead_id"].map(arm_of)
    control = (out["ab_arm"] == "control").to_numpy()
    for col in HIDDEN_COLUMNS:
        if col in out.columns:
            out[col] = out[col].astype(object)
            out.loc[control, col] = None
    return out


def export_view(
    wh: Warehouse, cfg: Settings, rows: pd.DataFrame
) -> tuple[pd.DataFrame, tuple[SalesforceField, ...]]:
    """The rows and fields an upsert (file or push) sends: unchanged when no experiment has
    assigned leads; else with the arm, and control leads' scores emptied."""
    from leadscore.experiment.assign import lead_arms

    arms = lead_arms(wh, cfg)
    if arms.empty:
        return rows, LEAD_SCORE_FIELDS
    return blank_control_rows(rows, arms), experiment_fields()
