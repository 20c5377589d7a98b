"""Model registry: versions, champion/challenger, promotion, rollback and refresh triggers.

The interface ``daily``, ``serve`` and ``monitor`` call: :func:`champion`,
:func:`shadow_models`, :func:`load_verified` (checksums re-verified against the registry),
:func:`register`, :func:`set_status`, :func:`promote`, :func:`rollback`, :func:`refresh_due`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this package at start-up: nothing heavy until used
    from leadscore.registry.lifecycle import (
        PromotionRefused,
        current_champion,
        promote,
        promotion_blockers,
        refresh_due,
        reject,
        rollback,
    )
    from leadscore.registry.records import (
        ModelRecord,
        RegistryError,
        StatusEvent,
        TamperedBundle,
        TrainingLineage,
    )
    from leadscore.registry.store import (
        champion,
        get_model,
        history,
        list_models,
        register,
        set_status,
        shadow_models,
    )
    from leadscore.registry.verify import load_verified, verify_for_use

__all__ = [
    "ModelRecord",
    "PromotionRefused",
    "RegistryError",
    "StatusEvent",
    "TamperedBundle",
    "TrainingLineage",
    "champion",
    "current_champion",
    "get_model",
    "history",
    "list_models",
    "load_verified",
    "promote",
    "promotion_blockers",
    "refresh_due",
    "register",
    "reject",
    "rollback",
    "set_status",
    "shadow_models",
    "verify_for_use",
]

_HOME = {
    **dict.fromkeys(
        ["PromotionRefused", "current_champion", "promote", "promotion_blockers"], "lifecycle"
    ),
    **dict.fromkeys(["refresh_due", "reject", "rollback"], "lifecycle"),
    **dict.fromkeys(
        ["ModelRecord", "RegistryError", "StatusEvent", "TamperedBundle", "TrainingLineage"],
        "records",
    ),
    **dict.fromkeys(["load_verified", "verify_for_use"], "verify"),
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(f"{__name__}.{_HOME.get(name, 'store')}")
    return getattr(module, name)
