"""The warehouse: where every table lives. DuckDB is the embedded default, BigQuery production."""

from __future__ import annotations

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


@contextmanager
def warehouse_session(cfg: Settings) -> Iterator[Warehouse]:
    """The project's warehouse for a ``with`` block, closed afterwards."""
    wh = open_warehouse(cfg.warehouse)
    try:
        yield wh
    finally:
        wh.close()


__all__ = [
    "Warehouse",
    "WarehouseBusy",
    "WarehouseError",
    "open_warehouse",
    "transpile",
    "warehouse_session",
]
