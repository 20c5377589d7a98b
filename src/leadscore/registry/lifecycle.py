"""Registry stage: promote, roll back, and say when a refresh is due.

Reads ``model_registry`` (and the vendor all-vintages view for new deliveries); writes status
changes through :mod:`leadscore.registry.store`. Every change takes its time ``at`` as a
parameter: the registry never reads the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from leadscore.config import Settings
from leadscore.registry.records import ModelRecord, RegistryError
from leadscore.registry.store import apply_changes, find_model, get_model, history, list_models
from leadscore.registry.verify import verify_for_use
from leadscore.warehouse import Warehouse, tables


class PromotionRefused(RegistryError):
    """Promotion would break a rule; ``reasons`` lists each (``--override`` records a reason)."""

    def __init__(self, version: str, reasons: list[str]) -> None:
        self.version = version
        self.reasons = list(reasons)
        super().__init__(f"model {version} not promoted: " + "; ".join(reasons))


@dataclass(frozen=True)
class Promotion:
    """What a promotion or rollback did."""

    champion: str
    previous: str | None
    at: datetime
    reason: str
    overridden: list[str]


def current_champion(wh: Warehouse) -> ModelRecord | None:
    """The champion, or None when the registry has none yet."""
    return next((r for r in list_models(wh) if r.status == "champion"), None)


def promotion_blockers(
    wh: Warehouse, cfg: Settings, record: ModelRecord, at: datetime
) -> list[str]:
    """Why ``record`` may not become champion at ``at`` (empty: it may).

    Rules: it is a candidate or shadow; its own model gates passed; it was compared with the
    current champion on the same matured leads and is not worse beyond the configured margin;
    it shadowed the champion for ``registry.shadow_days``. (A changed bundle is not a blocker
    an override can lift: :func:`promote` refuses it outright.)
    """
    reasons: list[str] = []
    if record.status not in ("candidate", "shadow"):
        return [f"it is {record.status}, not a candidate or shadow"]
    failed = [str(g.get("name")) for g in record.gates if not g.get("passed")]
    if failed or not record.gates_passed:
        reasons.append(f"its model gates failed ({', '.join(failed) or 'unknown'})")
    champ = current_champion(wh)
    if champ is None:
        return reasons
    comparison = record.comparison
    if not comparison or comparison.get("champion_version") != champ.version:
        reasons.append(f"it was not compared with the champion {champ.version} (run `refresh`)")
    elif not comparison.get("passed"):
        reasons.extend(str(r) for r in comparison.get("reasons", []))
    reasons.extend(_shadow_blockers(cfg, record, at))
    return reasons


def _shadow_blockers(cfg: Settings, record: ModelRecord, at: datetime) -> list[str]:
    need = cfg.registry.shadow_days
    if need == 0:
        return []
    if record.status != "shadow" or record.shadow_since is None:
        return [f"it has not shadowed the champion (needs {need} days)"]
    days = (at - record.shadow_since) / timedelta(days=1)
    if days < need:
        return [f"it has shadowed the champion {days:.1f} of {need} days"]
    return []


def promote(
    wh: Warehouse,
    cfg: Settings,
    version: str,
    at: datetime,
    override_reason: str | None = None,
) -> Promotion:
    """Make ``version`` the champion; the old champion retires. One transaction.

    Raises:
        TamperedBundle: the bundle changed after registration (no override lifts this).
        PromotionRefused: a rule is broken and no ``override_reason`` was given.
    """
    record = get_model(wh, version)
    verify_for_use(record, cfg.project.models_dir)
    if record.status == "champion":
        raise RegistryError(f"model {version} is already the champion")
    blockers = promotion_blockers(wh, cfg, record, at)
    if record.status == "rejected":
        raise PromotionRefused(version, blockers)
    override = (override_reason or "").strip()
    if blockers and not override:
        raise PromotionRefused(version, blockers)
    champ = current_champion(wh)
    reason = "promoted" + (
        f"; override: {override} (over: {'; '.join(blockers)})" if blockers else ""
    )
    changes: list[tuple[str, str]] = [(champ.version, "retired")] if champ else []
    apply_changes(wh, [*changes, (version, "champion")], reason, at)  # type: ignore[list-item]
    return Promotion(version, champ.version if champ else None, at, reason, blockers)


def previous_champion(wh: Warehouse, current: str) -> ModelRecord | None:
    """The most recent former champion that is retired (not rejected), other than ``current``."""
    for event in reversed(history(wh)):
        if event.to_status != "champion" or event.version == current:
            continue
        record = find_model(wh, event.version)
        if record is not None and record.status == "retired":
            return record
    return None


def rollback(
    wh: Warehouse, at: datetime, reason: str = "rollback", models_dir: Path | None = None
) -> Promotion:
    """Make the previous champion the champion again; the current one is rejected.

    Rolling back twice goes two champions back (a rolled-back model is rejected, so it is
    never picked again). The previous champion's bundle is re-verified first.

    Raises:
        RegistryError: no champion, or no earlier champion to return to.
        TamperedBundle: the previous champion's bundle changed since registration.

    ``models_dir`` (the project's models folder) is searched when the registered folder is
    gone (a moved project).
    """
    champ = current_champion(wh)
    if champ is None:
        raise RegistryError("no champion to roll back")
    previous = previous_champion(wh, champ.version)
    if previous is None:
        raise RegistryError(f"no earlier champion to go back to from {champ.version}")
    verify_for_use(previous, models_dir)
    why = f"rollback: {reason.strip() or 'rollback'}"
    apply_changes(wh, [(champ.version, "rejected"), (previous.version, "champion")], why, at)
    return Promotion(previous.version, champ.version, at, why, [])


def reject(wh: Warehouse, version: str, at: datetime, reason: str) -> ModelRecord:
    """Reject a candidate or shadow model: it stops shadowing and can never be promoted.

    Raises:
        RegistryError: unknown version, no reason, or a model that is not a candidate or
            shadow (the champion goes with :func:`rollback`).
    """
    record = get_model(wh, version)
    if record.status not in ("candidate", "shadow"):
        raise RegistryError(
            f"model {version} is {record.status}; only a candidate or shadow can be rejected"
            + (" (`leadscore models rollback` replaces the champion)" if record.status ==
               "champion" else "")
        )  # fmt: skip
    if not reason.strip():
        raise RegistryError("a rejection needs a reason (--reason)")
    apply_changes(wh, [(version, "rejected")], f"rejected: {reason.strip()}", at)
    return get_model(wh, version)


# --------------------------------------------------------------------------- triggers
def new_vintages(wh: Warehouse, after: datetime, until: datetime) -> list[tuple[str, str]]:
    """Reps vintages that became available in ``(after, until]``: (snapshot quarter, when)."""
    if not wh.table_exists(tables.REPS_ALL_VINTAGES):
        return []
    rows = wh.query(
        "SELECT CAST(snapshot_quarter AS VARCHAR) AS quarter, min(available_at) AS available_at"
        f" FROM {tables.REPS_ALL_VINTAGES} GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    out = []
    for row in rows:
        when = pd.Timestamp(row["available_at"])
        when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        if pd.Timestamp(after) < when <= pd.Timestamp(until):
            out.append((str(row["quarter"]), when.isoformat()))
    return out


def refresh_due(
    wh: Warehouse, cfg: Settings, as_of: datetime, performance_alert: bool = False
) -> list[str]:
    """Why a refresh is due at ``as_of`` (empty: not due). For ``daily`` and ``monitor``.

    Triggers (each switchable in ``[registry]``): a vendor vintage delivered after the
    training data of the champion and of every shadowing challenger was extracted (a
    challenger in shadow has answered the vintages before its ``as_of``); a champion older
    than ``max_model_age_days`` (from its ``as_of``); a performance alert raised by monitoring.
    """
    reg = cfg.registry
    models = list_models(wh)
    champ = next((r for r in models if r.status == "champion"), None)
    if champ is None:
        return ["no champion in the model registry"]
    reasons = []
    if reg.refresh_on_new_vintage:
        seen = max(r.as_of for r in models if r.status in ("champion", "shadow"))
        for quarter, when in new_vintages(wh, seen, as_of):
            reasons.append(f"new vendor vintage {quarter} (available {when})")
    age = (as_of - champ.as_of) / timedelta(days=1)
    if age > reg.max_model_age_days:
        reasons.append(
            f"champion {champ.version} is {age:.0f} days old (limit {reg.max_model_age_days})"
        )
    if performance_alert and reg.refresh_on_performance_alert:
        reasons.append("performance alert from monitoring")
    return reasons
