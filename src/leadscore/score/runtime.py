"""Scoring processes: start-up without the training stack.

Reads nothing, writes nothing. ``import xgboost`` also imports scikit-learn (and through it
SciPy's statistics), only for XGBoost's optional scikit-learn estimator classes; a process that
only scores through a ``Booster`` never uses them, and that import is a third of a daily run's
start-up. :func:`import_xgboost_without_sklearn` imports XGBoost with scikit-learn hidden, then
makes scikit-learn importable again for whatever else the process needs.
"""

from __future__ import annotations

import sys


def import_xgboost_without_sklearn() -> bool:
    """Import XGBoost without its scikit-learn layer, if neither is imported yet.

    Call it first thing in a command that scores and never uses ``xgboost.XGBClassifier``
    (the ``Booster``, ``DMatrix`` and ``pred_contribs`` are the same either way, so scores are
    unchanged). Returns whether it did so; a process that already imported either package is
    left as it is.
    """
    if "xgboost" in sys.modules or "sklearn" in sys.modules:
        return False
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # makes `import sklearn` fail
    try:
        import xgboost  # noqa: F401
    finally:
        del sys.modules["sklearn"]
    return True
