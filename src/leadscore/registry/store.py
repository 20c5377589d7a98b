"""Registry stage, warehouse side: the ``model_registry`` table and its status history.

Reads model bundles (manifest, metrics, gates, folds, config, provenance); writes one row per
model version to ``model_registry`` and one row per status change to ``model_registry_events``.
Every statement is one simple DuckDB-dialect statement that sqlglot carries to BigQuery.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore.config import Settings
from leadscore.registry.records import (
    ModelRecord,
    RegistryError,
    Status,
    StatusEvent,
    TamperedBundle,
    TrainingLineage,
)
from leadscore.registry.verify import bundle_facts
from leadscore.warehouse import Warehouse
from leadscore.warehouse.sql import ident as _q

MODEL_REGISTRY = "model_registry"
MODEL_REGISTRY_EVENTS = "model_registry_events"
#: Which status may follow which (promote/rollback go through these too).
TRANSITIONS: dict[str, frozenset[str]] = {
    "candidate": frozenset({"shadow", "champion", "rejected", "retired"}),
    "shadow": frozenset({"champion", "rejected", "retired"}),
    "champion": frozenset({"retired", "rejected"}),
    "retired": frozenset({"champion", "rejected"}),
    "rejected": frozenset(),
}
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("version", "VARCHAR"),
    ("status", "VARCHAR"),
    ("registered_at", "TIMESTAMPTZ"),
    ("status_changed_at", "TIMESTAMPTZ"),
    ("shadow_since", "TIMESTAMPTZ"),
    ("as_of", "TIMESTAMPTZ"),
    ("train_start_ts", "TIMESTAMPTZ"),
    ("train_end_ts", "TIMESTAMPTZ"),
    ("n_training_rows", "BIGINT"),
    ("vintages", "VARCHAR"),
    ("data_fingerprint", "VARCHAR"),
    ("config_hash", "VARCHAR"),
    ("catalog_hash", "VARCHAR"),
    ("code_version", "VARCHAR"),
    ("bundle_path", "VARCHAR"),
    ("manifest_sha256", "VARCHAR"),
    ("metrics", "VARCHAR"),
    ("gates", "VARCHAR"),
    ("gates_passed", "BOOLEAN"),
    ("override_reason", "VARCHAR"),
    ("comparison", "VARCHAR"),
)
_EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("version", "VARCHAR"),
    ("seq", "BIGINT"),
    ("at", "TIMESTAMPTZ"),
    ("from_status", "VARCHAR"),
    ("to_status", "VARCHAR"),
    ("reason", "VARCHAR"),
)
_JSON_COLUMNS = ("vintages", "metrics", "gates", "comparison")


# --------------------------------------------------------------------------- SQL helpers
def _lit(value: Any) -> str:
    """A SQL literal for a Python value (text, number, bool, UTC-aware timestamp, None)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"CAST('{_utc(value).isoformat()}' AS TIMESTAMPTZ)"
    return "'" + str(value).replace("'", "''") + "'"


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise RegistryError(f"timestamp {ts!r} must carry a time zone")
    return ts.astimezone(UTC)


def registry_ddl() -> list[str]:
    """The two CREATE TABLE statements (DuckDB dialect)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {_q(name)} ("
        + ", ".join(f"{_q(c)} {t}" for c, t in cols)
        + ")"
        for name, cols in ((MODEL_REGISTRY, _COLUMNS), (MODEL_REGISTRY_EVENTS, _EVENT_COLUMNS))
    ]


def ensure_registry(wh: Warehouse) -> None:
    """Create ``model_registry`` and ``model_registry_events`` when they do not exist."""
    for sql in registry_ddl():
        wh.execute(sql)


def _insert_sql(table: str, row: Mapping[str, Any]) -> str:
    cols = ", ".join(_q(c) for c in row)
    return f"INSERT INTO {_q(table)} ({cols}) VALUES ({', '.join(_lit(v) for v in row.values())})"


# --------------------------------------------------------------------------- reading
def _record(row: Mapping[str, Any]) -> ModelRecord:
    data = dict(row)
    for col in _JSON_COLUMNS:
        data[col] = json.loads(data[col]) if data[col] is not None else None
    data["vintages"] = data["vintages"] or {}
    data["metrics"] = data["metrics"] or {}
    data["gates"] = data["gates"] or []
    data["bundle_path"] = Path(data["bundle_path"])
    data["n_training_rows"] = int(data["n_training_rows"] or 0)
    for col in ("registered_at", "status_changed_at", "shadow_since", "as_of"):
        data[col] = _aware(data[col])
    for col in ("train_start_ts", "train_end_ts"):
        data[col] = _aware(data[col])
    return ModelRecord(**data)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def list_models(wh: Warehouse) -> list[ModelRecord]:
    """Every registered version, oldest registration first."""
    if not wh.table_exists(MODEL_REGISTRY):
        return []
    rows = wh.query(
        f"SELECT * FROM {_q(MODEL_REGISTRY)} ORDER BY registered_at, version"
    ).to_pylist()
    return [_record(r) for r in rows]


def get_model(wh: Warehouse, version: str) -> ModelRecord:
    """The record of ``version``. Raises :class:`RegistryError` when it is not registered."""
    for record in list_models(wh):
        if record.version == version:
            return record
    raise RegistryError(f"model {version} is not in the registry (`leadscore models list`)")


def find_model(wh: Warehouse, version: str) -> ModelRecord | None:
    """The record of ``version``, or None."""
    return next((r for r in list_models(wh) if r.version == version), None)


def champion(wh: Warehouse) -> ModelRecord:
    """The model that scores. Raises :class:`RegistryError` when there is none."""
    found = [r for r in list_models(wh) if r.status == "champion"]
    if not found:
        raise RegistryError("no champion in the model registry; run `leadscore train` first")
    if len(found) > 1:
        names = ", ".join(r.version for r in found)
        raise RegistryError(f"the registry has {len(found)} champions ({names}); fix by hand")
    return found[0]


def shadow_models(wh: Warehouse) -> list[ModelRecord]:
    """Challengers currently shadowing the champion (scored beside it, never exported)."""
    return [r for r in list_models(wh) if r.status == "shadow"]


def history(wh: Warehouse, version: str | None = None) -> list[StatusEvent]:
    """Status changes, in order (one version's, or all)."""
    if not wh.table_exists(MODEL_REGISTRY_EVENTS):
        return []
    where = f" WHERE version = {_lit(version)}" if version else ""
    rows = wh.query(f"SELECT * FROM {_q(MODEL_REGISTRY_EVENTS)}{where} ORDER BY seq").to_pylist()
    return [
        StatusEvent(
            version=r["version"],
            seq=int(r["seq"]),
            at=_aware(r["at"]),
            from_status=r["from_status"],
            to_status=r["to_status"],
            reason=r["reason"],
        )
        for r in rows
    ]


def latest_event_time(wh: Warehouse) -> datetime | None:
    """The time of the last status change (the registry's own clock), or None."""
    events = history(wh)
    return max((e.at for e in events), default=None)


# --------------------------------------------------------------------------- writing
def _next_seq(wh: Warehouse) -> int:
    row = wh.query(f"SELECT max(seq) AS m FROM {_q(MODEL_REGISTRY_EVENTS)}").to_pylist()[0]
    return int(row["m"] or 0) + 1


def _event_sql(seq: int, version: str, at: datetime, old: str | None, new: str, why: str) -> str:
    row = {"version": version, "seq": seq, "at": at, "from_status": old, "to_status": new}
    return _insert_sql(MODEL_REGISTRY_EVENTS, {**row, "reason": why})


def register(
    wh: Warehouse,
    bundle_path: Path,
    at: datetime,
    lineage: TrainingLineage | None = None,
    reason: str = "trained",
) -> ModelRecord:
    """Record a verified bundle as a ``candidate`` (idempotent for the same files).

    Raises:
        TamperedBundle: the bundle's files do not match its manifest, or the version is
            already registered with other files.
    """
    ensure_registry(wh)
    facts = bundle_facts(bundle_path)
    config: Settings = facts.pop("config")
    existing = find_model(wh, facts["version"])
    if existing is not None:
        if existing.manifest_sha256 != facts["manifest_sha256"]:
            raise TamperedBundle(
                f"model {facts['version']} is registered with other files "
                f"({existing.bundle_path}); a version id names exactly one bundle"
            )
        return existing
    as_of = lineage.as_of if lineage else config.dataset.as_of or facts["train_end_ts"]
    row = {
        "version": facts["version"],
        "status": "candidate",
        "registered_at": at,
        "status_changed_at": at,
        "shadow_since": None,
        "as_of": as_of,
        **{k: v for k, v in facts.items() if k != "version"},
        "vintages": json.dumps(lineage.vintages if lineage else {}, sort_keys=True),
        "n_training_rows": lineage.n_rows if lineage else 0,
        "comparison": None,
    }
    for col in ("metrics", "gates"):
        row[col] = json.dumps(row[col], sort_keys=True, default=str)
    row = {c: row[c] for c, _ in _COLUMNS}
    seq = _next_seq(wh)  # read before the transaction: BigQuery scripts return no rows
    with wh.transaction():
        wh.execute(_insert_sql(MODEL_REGISTRY, row))
        wh.execute(_event_sql(seq, row["version"], at, None, "candidate", reason))
    return get_model(wh, row["version"])


def set_status(wh: Warehouse, version: str, status: Status, reason: str, at: datetime) -> None:
    """Move ``version`` to ``status`` and record why and when (one transaction).

    Raises:
        RegistryError: unknown version, or a transition :data:`TRANSITIONS` does not allow.
    """
    apply_changes(wh, [(version, status)], reason, at)


def apply_changes(
    wh: Warehouse, changes: Sequence[tuple[str, Status]], reason: str, at: datetime
) -> None:
    """Several status changes in one transaction (e.g. champion out, challenger in).

    Raises:
        RegistryError: no reason, an unknown version, a transition :data:`TRANSITIONS` does
            not allow, or a result with more than one champion.
    """
    if not reason.strip():
        raise RegistryError("a status change needs a reason")
    current = {r.version: r.status for r in list_models(wh)}
    after = dict(current)
    for version, status in changes:
        if version not in current:
            raise RegistryError(f"model {version} is not in the registry")
        if status not in TRANSITIONS[after[version]]:
            raise RegistryError(f"model {version} cannot go from {after[version]} to {status}")
        after[version] = status
    if sum(s == "champion" for s in after.values()) > 1:
        raise RegistryError("there can be only one champion; use `leadscore models promote`")
    seq = _next_seq(wh)  # read before the transaction: BigQuery scripts return no rows
    with wh.transaction():
        for version, status in changes:
            shadow = f", shadow_since = {_lit(at)}" if status == "shadow" else ""
            wh.execute(
                f"UPDATE {_q(MODEL_REGISTRY)} SET status = {_lit(status)}, "
                f"status_changed_at = {_lit(at)}{shadow} WHERE version = {_lit(version)}"
            )
            wh.execute(_event_sql(seq, version, at, current[version], status, reason))
            current[version], seq = status, seq + 1


def record_comparison(wh: Warehouse, version: str, comparison: Mapping[str, Any]) -> None:
    """Store the champion/challenger comparison of ``version`` (JSON)."""
    text = json.dumps(dict(comparison), sort_keys=True, default=str)
    wh.execute(
        f"UPDATE {_q(MODEL_REGISTRY)} SET comparison = {_lit(text)} "
        f"WHERE version = {_lit(version)}"
    )
