"""The warehouse: where every table lives. DuckDB is the embedded default, BigQuery production."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from leadscore.config import Settings, WarehouseConfig
from leadscore.warehouse.base import Warehouse, WarehouseBusy, WarehouseError
from leadscore.warehouse.dialect import transpile


def open_warehouse(cfg: WarehouseConfig, *, read_only: bool = False) -> Warehouse:
    """Open the warehouse named by the config (``read_only`` for readers such as ``serve``)."""
    if cfg.backend == "duckdb":
        from leadscore.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(
            cfg.path, threads=cfg.threads, memory_limit=cfg.memory_limit, read_only=read_only
        )
    from leadscore.warehouse.bigquery import BigQueryWarehouse

    return BigQueryWarehouse(project=cfg.project, dataset=cfg.dataset, location=cfg.location)


def open_waiting(cfg: WarehouseConfig, wait_seconds: float) -> Warehouse:
    """:func:`open_warehouse`, retried every second while another process holds the file
    (e.g. ``serve`` reading its lead index), for at most ``wait_seconds``; then the one-line
    :class:`WarehouseBusy` error."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return open_warehouse(cfg)
        except WarehouseBusy:
            if time.monotonic() + 1.0 > deadline:
                raise
            time.sleep(1.0)


@contextmanager
def warehouse_session(cfg: Settings, wait_seconds: float = 0.0) -> Iterator[Warehouse]:
    """The project's warehouse for a ``with`` block, closed afterwards (``wait_seconds``: see
    :func:`open_waiting`)."""
    wh = open_waiting(cfg.warehouse, wait_seconds)
    try:
        yield wh
    finally:
        wh.close()


__all__ = [
    "Warehouse",
    "WarehouseBusy",
    "WarehouseError",
    "open_waiting",
    "open_warehouse",
    "transpile",
    "warehouse_session",
]
