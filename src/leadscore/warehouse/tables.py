"""Warehouse table names: one place, so every stage agrees on them.

Names are bare; a backend qualifies them (BigQuery: ``LeadScoring.<name>``).
"""

from __future__ import annotations

from typing import Final, Literal

VendorKind = Literal["reps", "firms"]

#: Union of every ingested vintage, with ``snapshot_quarter`` (DATE), ``snapshot_as_of`` (DATE),
#: ``processed_at`` (TIMESTAMPTZ, may be NULL) and ``available_at`` (TIMESTAMPTZ: processed_at,
#: or snapshot_as_of + vendor.delivery_lag_days when processed_at is absent).
REPS_ALL_VINTAGES: Final = "v_discovery_reps_all_vintages"
FIRMS_ALL_VINTAGES: Final = "v_discovery_firms_all_vintages"
#: Salesforce Lead, cast, one row per Id, plus ``RepCRD`` (BIGINT parsed from FA_CRD__c) and
#: ``crd_status`` ('ok' | 'missing' | 'malformed').
LEADS: Final = "crm_leads"
#: Salesforce Task, cast: one row per dial.
TASKS: Final = "crm_tasks"
#: Output of ``build``: one row per eligible contacted lead, features and label.
TRAINING_SET: Final = "training_set"
#: Output of ``build`` for scoring: one row per lead asked for, features only.
SCORING_SET: Final = "scoring_set"
#: Leads kept out of the training set, with their reason.
BUILD_EXCLUSIONS: Final = "build_exclusions"
LEAD_SCORES: Final = "lead_scores"
SCORE_REJECTS: Final = "score_rejects"
SCORING_RUNS: Final = "scoring_runs"


def snapshot_table(kind: VendorKind, year: int, quarter: int) -> str:
    """Dated snapshot table of one vintage, e.g. ``snapshot_reps_2024_q1``."""
    if not 1 <= quarter <= 4:
        raise ValueError(f"quarter must be 1..4, got {quarter}")
    return f"snapshot_{kind}_{year}_q{quarter}"
