"""Registry stage: the records the registry keeps (plain dataclasses, no I/O).

Reads and writes nothing; :mod:`leadscore.registry.store` maps these to warehouse rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

Status = Literal["candidate", "shadow", "champion", "retired", "rejected"]
STATUSES: tuple[Status, ...] = ("candidate", "shadow", "champion", "retired", "rejected")


class RegistryError(ValueError):
    """A registry operation that cannot be done; the message says why in one line."""


class TamperedBundle(RegistryError):
    """A bundle whose files differ from what was registered: it may not be promoted or used."""


@dataclass(frozen=True)
class TrainingLineage:
    """What the training data was: extraction time and the vendor vintages its rows joined."""

    as_of: datetime
    vintages: dict[str, list[str]] = field(default_factory=dict)
    n_rows: int = 0


@dataclass(frozen=True)
class StatusEvent:
    """One status change of one model version."""

    version: str
    seq: int
    at: datetime
    from_status: str | None
    to_status: str
    reason: str


@dataclass(frozen=True)
class ModelRecord:
    """One row of ``model_registry``."""

    version: str
    status: Status
    registered_at: datetime
    status_changed_at: datetime
    shadow_since: datetime | None
    as_of: datetime
    train_start_ts: datetime | None
    train_end_ts: datetime | None
    n_training_rows: int
    vintages: dict[str, list[str]]
    data_fingerprint: str
    config_hash: str
    catalog_hash: str
    code_version: str
    bundle_path: Path
    manifest_sha256: str
    metrics: dict[str, Any]
    gates: list[dict[str, Any]]
    gates_passed: bool
    override_reason: str | None
    comparison: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO timestamps, paths as text)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def status_of(value: str) -> Status:
    """Check a status name given on the command line."""
    if value not in STATUSES:
        raise RegistryError(f"status is one of {', '.join(STATUSES)}; got {value!r}")
    return cast(Status, value)
