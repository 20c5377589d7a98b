"""Serve stage: every contacted lead's point-in-time features, read once per warehouse state.

Reads the warehouse (read-only): one run of the point-in-time SQL for every lead contacted up
to the build time, and the ids of every CRM lead; writes nothing. A request by lead id is then
answered from memory instead of running that SQL for one lead.

When the index answers (:meth:`LeadIndex.answers`): the warehouse is the DuckDB file and the
file (with its write-ahead log) is byte-for-byte the state the index was read from, checked by
its size, modification time and inode on every request; and the request's clock is not before
the build time. Then, for a lead contacted at or before the build time, the one-lead SQL would
read the same rows at the same point in time (its contact time, as ``min(contact, as_of)`` is
the contact for any later ``as_of``) and return the row held here; a lead id absent from the
CRM would return no row. Any other case (another backend, a changed file, a lead never
contacted or contacted after the build) goes to the one-lead SQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from leadscore.catalog import Catalog
from leadscore.config import Settings
from leadscore.dataset import PitContext, pit_sql
from leadscore.warehouse import Warehouse, tables

Stamp = tuple[tuple[int, int, int] | None, ...]
#: Columns of the scoring-set row an answer needs besides the features and segments.
_KEEP = ("lead_id", "pit_status", "reps_snapshot_quarter", "firms_snapshot_quarter")


def warehouse_stamp(cfg: Settings) -> Stamp | None:
    """The DuckDB file's state (size, modification time, inode of it and of its write-ahead
    log); None when there is no local file to watch (BigQuery, in-memory)."""
    if cfg.warehouse.backend != "duckdb" or str(cfg.warehouse.path) == ":memory:":
        return None
    path = Path(cfg.warehouse.path)
    return tuple(_stat(p) for p in (path, path.with_name(path.name + ".wal")))


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


@dataclass(frozen=True)
class LeadIndex:
    """The scoring-set rows of every lead contacted at or before ``as_of``."""

    stamp: Stamp
    as_of: datetime
    positions: dict[str, int]
    known: frozenset[str]
    columns: dict[str, np.ndarray]
    seconds: float

    def __len__(self) -> int:
        return len(self.positions)

    def answers(self, stamp: Stamp | None, now: datetime) -> bool:
        """Whether the index holds what the one-lead SQL would read now (module docstring)."""
        return stamp is not None and stamp == self.stamp and now >= self.as_of

    def row(self, lead_id: str) -> dict[str, object] | None:
        """The lead's scoring-set row as plain values, or None when it is not indexed."""
        at = self.positions.get(lead_id)
        if at is None:
            return None
        return {name: values[at] for name, values in self.columns.items()}


def build_index(
    wh: Warehouse, cfg: Settings, catalog: Catalog, as_of: datetime, stamp: Stamp
) -> LeadIndex:
    """Read every contacted lead's row through the point-in-time SQL of batch scoring.

    ``stamp`` is the warehouse state taken while ``wh`` is open (no writer can change the
    file while a reader holds it).
    """
    import time

    started = time.perf_counter()
    ctx = PitContext.from_settings(cfg, join=cfg.dataset.join, training=False, as_of=as_of)
    keep = list(dict.fromkeys([*_KEEP, *(s.name for s in catalog.segments),
                               *catalog.model_features()]))  # fmt: skip
    chosen = ", ".join(f'"{c}"' for c in keep)
    frame = wh.query(f"SELECT {chosen} FROM (\n{pit_sql(ctx, catalog)}\n)").to_pandas()
    ids = wh.query(
        f'SELECT DISTINCT CAST("{cfg.crm.lead_id_col}" AS VARCHAR) AS i FROM {tables.LEADS}'
    ).column("i")
    columns = {c: frame[c].to_numpy() for c in keep}
    lead_ids = [str(i) for i in frame["lead_id"].tolist()]
    return LeadIndex(
        stamp=stamp,
        as_of=as_of,
        positions={lead: k for k, lead in enumerate(lead_ids)},
        known=frozenset(str(i) for i in ids.to_pylist() if i is not None),
        columns=columns,
        seconds=time.perf_counter() - started,
    )
