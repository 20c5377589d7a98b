"""The world's manifest: what ``generate_world`` wrote (vintages, row counts, checksums).

Reads the written files (for their SHA-256); writes ``manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from leadscore import __version__
from leadscore.ingest.schema import CRM_DIR, TRUTH_DIR, VENDOR_DIR
from leadscore.io import sha256_file, write_json
from leadscore.synthetic import future
from leadscore.synthetic.timeline import (
    AS_OF,
    AS_OF_S,
    DAY_S,
    DELIVERY_LAG_DAYS,
    LABEL_WINDOW_DAYS,
    Vintage,
    iso_ts,
)

GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class VintageInfo:
    """One delivered vintage as recorded in the manifest."""

    snapshot_as_of: str
    processed_at: str | None
    available_at: str
    reps_file: str
    firms_file: str


@dataclass(frozen=True)
class WorldManifest:
    """What ``generate_world`` wrote; serialised (without ``out_dir``) as ``manifest.json``."""

    seed: int
    scale: float
    signal: str
    as_of: str
    delivery_lag_days: int
    label_window_days: int
    intercept: float
    vintages: tuple[VintageInfo, ...]
    row_counts: dict[str, int]
    sha256: dict[str, str]
    future_days: int = 0
    future_vintages: tuple[VintageInfo, ...] = ()
    drift: dict[str, Any] | None = None
    generator_version: str = GENERATOR_VERSION
    leadscore_version: str = __version__
    out_dir: Path = field(default=Path("."), compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths relative to ``out_dir``; ``out_dir`` itself omitted)."""
        d = {k: v for k, v in self.__dict__.items() if k != "out_dir"}
        d["vintages"] = [v.__dict__ for v in self.vintages]
        d["future_vintages"] = [v.__dict__ for v in self.future_vintages]
        return d


def write_manifest(
    out_dir: Path,
    seed: int,
    scale: float,
    signal: str,
    intercept: float,
    vintages: tuple[Vintage, ...],
    row_counts: dict[str, int],
) -> WorldManifest:
    files = sorted(
        p for d in (VENDOR_DIR, CRM_DIR, TRUTH_DIR) for p in (out_dir / d).iterdir() if p.is_file()
    )
    rel = [p.relative_to(out_dir).as_posix() for p in files if not p.name.startswith(".")]
    manifest = WorldManifest(
        seed=seed,
        scale=scale,
        signal=signal,
        as_of=iso_ts(int(AS_OF.timestamp())),
        delivery_lag_days=DELIVERY_LAG_DAYS,
        label_window_days=LABEL_WINDOW_DAYS,
        intercept=round(intercept, 6),
        vintages=tuple(vintage_info(v, VENDOR_DIR) for v in vintages),
        row_counts=dict(sorted(row_counts.items())),
        sha256={name: sha256_file(out_dir / name) for name in rel},
        out_dir=out_dir,
    )
    write_json(out_dir / "manifest.json", manifest.to_dict())
    return manifest


def with_future(
    out_dir: Path,
    manifest: WorldManifest,
    days: int,
    later: tuple[Vintage, ...],
    drift: future.Drift | None,
) -> WorldManifest:
    """The manifest with the future's days, vintages, drift and file checksums."""
    if not days:
        return manifest
    files = sorted(p for p in (out_dir / future.FUTURE_DIR).rglob("*.csv") if p.is_file())
    sha = {p.relative_to(out_dir).as_posix(): sha256_file(p) for p in files}
    manifest = replace(
        manifest,
        future_days=days,
        future_vintages=tuple(vintage_info(v, future.day_folder(
            (v.available_at_s - AS_OF_S) // DAY_S) + f"/{VENDOR_DIR}") for v in later),
        drift=None if drift is None else drift.to_dict(),
        sha256={**manifest.sha256, **sha},
    )  # fmt: skip
    write_json(out_dir / "manifest.json", manifest.to_dict())
    return manifest


def vintage_info(v: Vintage, folder: str) -> VintageInfo:
    return VintageInfo(
        snapshot_as_of=v.snapshot_as_of.isoformat(),
        processed_at=None if v.processed_at_s is None else iso_ts(v.processed_at_s),
        available_at=iso_ts(v.available_at_s),
        reps_file=f"{folder}/reps_{v.label}.csv",
        firms_file=f"{folder}/firms_{v.label}.csv",
    )
