"""Serve stage: the features of one lead, read through the point-in-time SQL of training.

Reads the warehouse (read-only); writes nothing. A lead is found by its id in ``crm_leads``,
or described by a CRD and a contact time, which become a one-row lead spine for the same
generated SQL, so the API, batch scoring and training see identical features.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from leadscore.catalog import Catalog
from leadscore.config import Settings
from leadscore.dataset import PitContext, pit_sql
from leadscore.warehouse import Warehouse
from leadscore.warehouse.sql import text as _lit


def _adhoc_spine(cfg: Settings, lead_id: str, crd: int, contact_ts: datetime) -> str:
    """A one-lead stand-in for ``crm_leads``: the columns the spine reads, nothing else."""
    crm = cfg.crm
    ts = contact_ts.astimezone(UTC).isoformat()
    return (
        f'(SELECT {_lit(lead_id)} AS "{crm.lead_id_col}", CAST({int(crd)} AS BIGINT) AS'
        f' "RepCRD", \'ok\' AS crd_status, CAST(NULL AS VARCHAR) AS "{crm.owner_col}",'
        f" CAST('{ts}' AS TIMESTAMPTZ) AS \"{crm.contacted_ts_col}\","
        f' CAST(NULL AS TIMESTAMPTZ) AS "{crm.converted_ts_col}")'
    )


def lead_features(
    wh: Warehouse, cfg: Settings, catalog: Catalog, lead_id: str, as_of: datetime
) -> pd.DataFrame:
    """The lead's scoring-set row (zero rows when no such lead), with its ``pit_status``."""
    ctx = PitContext.from_settings(
        cfg, join=cfg.dataset.join, training=False, as_of=as_of, lead_ids=(lead_id,)
    )
    return wh.query(pit_sql(ctx, catalog)).to_pandas()


def crd_features(
    wh: Warehouse,
    cfg: Settings,
    catalog: Catalog,
    crd: int,
    contact_ts: datetime,
    lead_id: str | None = None,
) -> pd.DataFrame:
    """The scoring-set row of an advisor contacted at ``contact_ts`` (not yet in the CRM)."""
    label = lead_id or f"crd:{crd}"
    ctx = PitContext.from_settings(
        cfg,
        join=cfg.dataset.join,
        training=False,
        as_of=contact_ts,
        lead_ids=(label,),
        leads_table=_adhoc_spine(cfg, label, crd, contact_ts),
    )
    return wh.query(pit_sql(ctx, catalog)).to_pandas()
