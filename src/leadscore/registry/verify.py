"""Registry stage: what a bundle says about itself, and its re-verification before use.

Reads a model bundle folder (manifest, metrics, gates, folds, config, provenance); writes
nothing. A bundle whose files or manifest changed after registration may not be used.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.bundle import MANIFEST, Bundle, BundleError, load_bundle, verify_bundle
from leadscore.config import Settings
from leadscore.io import sha256_file
from leadscore.registry.identity import model_config_hash
from leadscore.registry.records import ModelRecord, TamperedBundle

_HEADLINE = ("aucpr", "aucpr_ci95", "aucroc", "ece", "brier", "precision_at_10pct")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def bundle_facts(bundle_path: Path) -> dict[str, Any]:
    """What the registry records from a verified bundle folder (no warehouse needed)."""
    path = Path(bundle_path).resolve()
    try:
        manifest = verify_bundle(path)
    except BundleError as exc:
        raise TamperedBundle(str(exc)) from None
    config = Settings.model_validate(_read_json(path / "config.json"))
    folds = _read_json(path / "folds.json") or {}
    gates = _read_json(path / "gates.json") or {}
    metrics = _read_json(path / "metrics.json") or {}
    catalog_file = next((n for n in manifest["files"] if n.startswith("catalog.")), None)
    headline = {k: metrics.get("holdout", {}).get(k) for k in _HEADLINE}
    headline["cv_aucpr_mean"] = metrics.get("cv_aucpr_mean")
    headline["oracle_aucpr"] = (metrics.get("oracle") or {}).get("aucpr")
    return {
        "version": str(manifest["version"]),
        "config": config,
        "train_start_ts": _ts(folds.get("data_start")),
        "train_end_ts": _ts(folds.get("data_end")),
        "data_fingerprint": str((_read_json(path / "data_fingerprint.json") or {}).get("sha256")),
        "config_hash": model_config_hash(config),
        "catalog_hash": manifest["files"].get(catalog_file, "") if catalog_file else "",
        "code_version": str((_read_json(path / "provenance.json") or {}).get("code_version")),
        "bundle_path": str(path),
        "manifest_sha256": sha256_file(path / MANIFEST),
        "metrics": headline,
        "gates": list(gates.get("gates", [])),
        "gates_passed": bool(gates.get("all_passed", False)),
        "override_reason": gates.get("override_reason"),
    }


def _ts(value: str | None) -> datetime | None:
    return None if value is None else pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def bundle_folder(record: ModelRecord, models_dir: Path | None = None) -> Path:
    """Where the bundle of ``record`` is: the folder recorded at registration, or, when that
    no longer exists (the project was moved), the folder of the same name in ``models_dir``.
    Either way :func:`verify_for_use` checks its files against the registration."""
    path = record.bundle_path
    if not path.exists() and models_dir is not None and (models_dir / path.name).is_dir():
        return models_dir / path.name
    return path


def verify_for_use(record: ModelRecord, models_dir: Path | None = None) -> Path:
    """Re-verify a registered bundle: every file against its manifest, and the manifest
    against the checksum taken at registration. Returns the bundle folder.

    Args:
        models_dir: the project's models folder, searched when the registered folder is gone.

    Raises:
        TamperedBundle: anything changed since registration (the message names it).
    """
    path = bundle_folder(record, models_dir)
    try:
        verify_bundle(path)
    except BundleError as exc:
        raise TamperedBundle(f"model {record.version} may not be used: {exc}") from None
    if sha256_file(path / MANIFEST) != record.manifest_sha256:
        raise TamperedBundle(
            f"model {record.version} may not be used: {path / MANIFEST} changed after registration"
        )
    return path


def load_verified(record: ModelRecord, models_dir: Path | None = None) -> Bundle:
    """The bundle of a registered model, after :func:`verify_for_use`."""
    return load_bundle(verify_for_use(record, models_dir))
