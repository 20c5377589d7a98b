"""Stage ``ingest``, CRM side: a Lead or Task delivery is merged into its table by Id.

Reads the delta table written by the load step (one row per Id already, by the file's own
duplicate rule); writes the CRM table. A delta adds and updates rows, never deletes: for leads
the row with the newest ``LastModifiedDate`` wins (a stale row in the delivery is ignored; on a
tie the delivery wins); for tasks the delivery wins. Rows whose Id is NULL are appended.
"""

from __future__ import annotations

from typing import Final

from leadscore.ingest.quality import q
from leadscore.ingest.sql import Source

#: Scratch table holding the cast, deduplicated delivery before it is merged.
DELTA: Final = "_ingest_delta"


def merges(source: Source, table_exists: bool) -> bool:
    """Whether ``source`` is merged (a CRM file whose table exists) rather than replacing it."""
    return source.zone_section == "crm" and table_exists


def merge_statements(source: Source, delta: str = DELTA) -> list[str]:
    """SQL that upserts ``delta`` into ``source.table`` by ``source.key_col``.

    Run inside one transaction. Steps: 1. drop delivered rows older than the stored row
    (leads only); 2. delete the stored rows the delivery replaces; 3. insert the delivery.
    """
    key, target, stage = q(source.key_col), q(source.table), q(delta)
    statements = []
    if source.latest_col:
        newest = q(source.latest_col)
        statements.append(
            f"DELETE FROM {stage} WHERE EXISTS (SELECT 1 FROM {target} AS t "
            f"WHERE t.{key} = {stage}.{key} AND t.{newest} IS NOT NULL AND "
            f"({stage}.{newest} IS NULL OR t.{newest} > {stage}.{newest}))"
        )
    statements += [
        f"DELETE FROM {target} WHERE {key} IN (SELECT {key} FROM {stage} WHERE {key} IS NOT NULL)",
        f"INSERT INTO {target} SELECT * FROM {stage}",
    ]
    return statements
