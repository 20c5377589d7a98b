"""leadscore: point-in-time lead scoring for wealth-management sales teams.

The notebook API, imported lazily (``import leadscore`` loads nothing heavy)::

    import leadscore as ls
    cfg = ls.load_settings()
    wh = ls.open_warehouse(cfg.warehouse)
    result = ls.run_train(wh, cfg)          # a TrainResult; nothing written
    scores = result.score_frame(ls.training_frame(wh).tail(5))

One function per stage (``run_ingest``, ``run_build``, ``run_validate``, ``run_train``,
``run_explain``, ``run_score``; named ``run_*`` so they never clash with the stage packages);
writing reports and the bundle are the explicit ``write_reports`` and ``publish``. See
``docs/notebook.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS = {
    "load_settings": "leadscore.config",
    "Settings": "leadscore.config",
    "open_warehouse": "leadscore.warehouse",
    "generate_world": "leadscore.synthetic",
    "load_catalog": "leadscore.catalog",
    "load_bundle": "leadscore.bundle",
    "world_settings": "leadscore.api",
    "run_ingest": "leadscore.api",
    "run_build": "leadscore.api",
    "run_validate": "leadscore.api",
    "training_frame": "leadscore.api",
    "run_train": "leadscore.api",
    "write_reports": "leadscore.api",
    "publish": "leadscore.api",
    "run_explain": "leadscore.api",
    "run_score": "leadscore.api",
    "render_report": "leadscore.api",
}

__all__ = [
    "Settings",
    "__version__",
    "generate_world",
    "load_bundle",
    "load_catalog",
    "load_settings",
    "open_warehouse",
    "publish",
    "render_report",
    "run_build",
    "run_explain",
    "run_ingest",
    "run_score",
    "run_train",
    "run_validate",
    "training_frame",
    "world_settings",
    "write_reports",
]

if TYPE_CHECKING:
    from leadscore.api import (
        publish,
        render_report,
        run_build,
        run_explain,
        run_ingest,
        run_score,
        run_train,
        run_validate,
        training_frame,
        world_settings,
        write_reports,
    )
    from leadscore.bundle import load_bundle
    from leadscore.catalog import load_catalog
    from leadscore.config import Settings, load_settings
    from leadscore.synthetic import generate_world
    from leadscore.warehouse import open_warehouse


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'leadscore' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
