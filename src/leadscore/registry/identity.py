"""Registry stage: content-addressed model version ids.

Reads settings, the training table's fingerprint, the catalog fingerprint and the code version;
writes nothing. The same data and settings give the same id in any folder: paths, the warehouse
location and registry-only settings are left out of the hash, and so is the wall clock.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from leadscore.config import Settings

#: ``project`` keys that only say where files live; they never change what a model learns.
PATH_KEYS = ("data_dir", "models_dir", "reports_dir", "truth_file", "reference_importance")
#: Sections that say where things are or how the registry behaves, not what the model learns.
NON_MODEL_SECTIONS = (
    "warehouse",
    "registry",
    "serve",
    "push",
    "experiment",
    "ingest",
    "monitor",
)


def model_settings(cfg: Settings) -> dict[str, Any]:
    """The settings that shape a model, as plain JSON (paths and warehouse removed)."""
    data: dict[str, Any] = cfg.model_dump(mode="json", by_alias=True)
    for section in NON_MODEL_SECTIONS:
        data.pop(section, None)
    data["project"] = {k: v for k, v in data["project"].items() if k not in PATH_KEYS}
    return data


def model_config_hash(cfg: Settings) -> str:
    """SHA-256 of :func:`model_settings` as canonical JSON (same in every folder)."""
    payload = json.dumps(model_settings(cfg), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def version_id(
    as_of: datetime,
    data_sha256: str,
    config_hash: str,
    catalog_hash: str,
    code: str,
) -> str:
    """``v<UTC date of as_of>-<first 10 hex of SHA-256 over the four inputs>``.

    Args:
        as_of: the training data's extraction time (UTC-aware).
        data_sha256: fingerprint of the training table (rows and columns, canonical Arrow).
        config_hash: :func:`model_config_hash` of the settings.
        catalog_hash: fingerprint of the feature catalog ("" when unknown).
        code: the code version (git commit, or the package version).
    """
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of!r} must carry a time zone")
    parts = {"data": data_sha256, "config": config_hash, "catalog": catalog_hash, "code": code}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return f"v{as_of.astimezone(UTC):%Y%m%d}-{digest[:10]}"
