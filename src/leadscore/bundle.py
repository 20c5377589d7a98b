"""Model bundle: write and load ``models/<version>/`` with a SHA-256 manifest (no pickle).

Reads a :class:`~leadscore.train.fit.TrainResult`; writes the booster in XGBoost's own JSON
format, preprocessing, calibrators, catalog, contract, config, folds, metrics and gates as
JSON, and ``manifest.json``. No pickle. Loading verifies every checksum first.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from leadscore.calibrate import SegmentCalibrator
from leadscore.config import DEFAULT_BUCKETS
from leadscore.evaluate import enforce_gates
from leadscore.io import provenance, sha256_file, write_json
from leadscore.train.cv import Splits
from leadscore.train.predict import ScoringMethods
from leadscore.train.preprocess import Preprocessor

if TYPE_CHECKING:  # the training stack is not imported to load a bundle for scoring
    from leadscore.train.fit import TrainResult

MANIFEST = "manifest.json"
MODEL_FILE = "model.json"
BUNDLE_FORMAT = 1


class BundleError(Exception):
    """A bundle that cannot be trusted: missing, extra or changed files (named)."""


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON copy: NumPy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


def _bundle_documents(
    result: TrainResult, catalog: Mapping[str, Any] | None, contract: Mapping[str, Any] | None
) -> dict[str, Any]:
    cfg = result.config
    docs: dict[str, Any] = {
        "preprocessing.json": {
            **result.preprocessor.to_dict(),
            "features": result.features,
            "selected_feature_types": result.feature_types,
        },
        "calibration.json": {
            "model": result.calibrator.to_dict(),
            "cutpoints": result.cutpoints,
            "score_edges": result.score_edges,
            "bucket_shares_from_top": DEFAULT_BUCKETS.shares_from_top,
            "tier_of_bucket": DEFAULT_BUCKETS.tier_of_bucket,
            "fitted_on": "out-of-fold CV margins (never the model's own training rows)",
        },
        "config.json": cfg.model_dump(mode="json", by_alias=True),
        "folds.json": result.splits.to_dict(),
        "metrics.json": result.metrics,
        "gates.json": {
            "gates": [asdict(g) for g in result.gates],
            "all_passed": all(g.passed for g in result.gates),
            "override_reason": result.override_reason,
        },
        "selection.json": result.selection,
        "training.json": {
            "version": result.version,
            "params": result.params,
            "strategy": result.strategy,
            "strategy_comparison": result.strategy_comparison,
            "tuning": result.tuning,
            "baseline_calibration": result.baseline_calibrator.to_dict(),
        },
        "data_fingerprint.json": result.data_fingerprint,
        "provenance.json": provenance(
            cfg.config_hash(), cfg.project.global_seed, result.data_fingerprint["sha256"]
        ),
    }
    if catalog is not None:
        docs["catalog.json"] = catalog
    if contract is not None:
        docs["contract.json"] = contract
    return {name: to_jsonable(doc) for name, doc in docs.items()}


def write_bundle(
    result: TrainResult,
    models_dir: Path,
    catalog: Mapping[str, Any] | Path | None = None,
    contract: Mapping[str, Any] | Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``models_dir/<version>/`` atomically and return its path.

    ``catalog`` / ``contract`` are the feature catalog and schema contract the model was
    trained with, as mappings (written as JSON) or paths (copied byte for byte). ``extra``:
    more JSON documents by file name (e.g. the monitoring reference, ``reference.json``),
    checksummed like the others. The same result gives byte-identical files; nothing here
    reads the clock.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / result.version
    tmp = Path(tempfile.mkdtemp(prefix=f".{result.version}.", dir=models_dir))
    try:
        docs = _bundle_documents(
            result,
            catalog if isinstance(catalog, Mapping) else None,
            contract if isinstance(contract, Mapping) else None,
        )
        docs.update({name: to_jsonable(doc) for name, doc in (extra or {}).items()})
        for name, doc in docs.items():
            write_json(tmp / name, doc)
        for stem, src in (("catalog", catalog), ("contract", contract)):
            if isinstance(src, str | Path):
                shutil.copyfile(src, tmp / f"{stem}{Path(src).suffix or '.txt'}")
        result.booster.save_model(str(tmp / MODEL_FILE))
        files = sorted(p.name for p in tmp.iterdir())
        write_json(
            tmp / MANIFEST,
            {
                "format": BUNDLE_FORMAT,
                "version": result.version,
                "files": {name: sha256_file(tmp / name) for name in files},
            },
        )
        _replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _replace_dir(new: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def verify_bundle(path: Path) -> dict[str, Any]:
    """Check the manifest against the files; return it. Raises :class:`BundleError`."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text())
        listed: dict[str, str] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{manifest_path}: unreadable manifest ({exc})") from None
    present = {p.name for p in path.iterdir() if p.is_file()} - {MANIFEST}
    extra = sorted(present - set(listed))
    if extra:
        raise BundleError(f"{path}: files not in the manifest: {extra}")
    for name, digest in sorted(listed.items()):
        file = path / name
        if not file.is_file():
            raise BundleError(f"{path}: {name} is listed in the manifest but missing")
        if sha256_file(file) != digest:
            raise BundleError(f"{path}: checksum mismatch in {name}; the bundle was changed")
    return dict(manifest)


@dataclass
class Bundle(ScoringMethods):
    """A verified model bundle, ready to score."""

    path: Path
    version: str
    booster: xgb.Booster
    preprocessor: Preprocessor
    features: list[str]
    feature_types: dict[str, str]
    calibrator: SegmentCalibrator
    cutpoints: dict[str, float]
    score_edges: list[float]
    metrics: dict[str, Any]
    gates: dict[str, Any]
    folds: Splits
    config: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def contract_path(self) -> Path:
        """The schema contract the model was trained with (``contract.json``)."""
        return self.path / "contract.json"


def _read(path: Path, name: str) -> Any:
    return json.loads((path / name).read_text())


def load_bundle(path: Path) -> Bundle:
    """Verify checksums, then load a bundle. Raises :class:`BundleError` on any change."""
    path = Path(path)
    manifest = verify_bundle(path)
    try:
        return _load_verified(path, manifest)
    except (KeyError, TypeError, ValueError, OSError, xgb.core.XGBoostError) as exc:
        # checksums match but a file does not parse: written by something else, or edited
        # with its checksum recomputed
        detail = one_line_error(exc)
        raise BundleError(f"{path}: not a usable model bundle ({detail})") from exc


def one_line_error(exc: BaseException) -> str:
    """The first line of an exception's message, with its type (for one-line refusals)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def _load_verified(path: Path, manifest: dict[str, Any]) -> Bundle:
    prep_doc = _read(path, "preprocessing.json")
    cal_doc = _read(path, "calibration.json")
    booster = xgb.Booster()
    booster.load_model(str(path / MODEL_FILE))
    booster.set_param({"nthread": 2})
    return Bundle(
        path=path,
        version=str(manifest["version"]),
        booster=booster,
        preprocessor=Preprocessor.from_dict(prep_doc),
        features=list(prep_doc["features"]),
        feature_types=dict(prep_doc["selected_feature_types"]),
        calibrator=SegmentCalibrator.from_dict(cal_doc["model"]),
        cutpoints={k: float(v) for k, v in cal_doc["cutpoints"].items()},
        score_edges=[float(v) for v in cal_doc["score_edges"]],
        metrics=_read(path, "metrics.json"),
        gates=_read(path, "gates.json"),
        folds=Splits.from_dict(_read(path, "folds.json")),
        config=_read(path, "config.json"),
        manifest=manifest,
    )


def publish_model(
    result: TrainResult,
    models_dir: Path,
    catalog: Mapping[str, Any] | Path | None = None,
    contract: Mapping[str, Any] | Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the reports, stop on a failed gate (unless overridden), then write the bundle.

    Raises:
        GateFailed: a gate failed and ``result.override_reason`` is empty; the reports are
            written first so the message's report path exists.
    """
    from leadscore.report.training import write_training_reports

    write_training_reports(result, result.report_dir)
    enforce_gates(result.gates, result.override_reason)
    return write_bundle(result, models_dir, catalog, contract, extra)
