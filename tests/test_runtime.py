"""A scoring process starts without the training stack; what it loads scores the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from leadscore.calibrate import SegmentCalibrator

SRC = str(Path(__file__).resolve().parents[1] / "src")

_DAILY_IMPORTS = """
import sys
from leadscore.score.runtime import import_xgboost_without_sklearn
assert import_xgboost_without_sklearn()
import leadscore.cli, leadscore.daily.commands, leadscore.bundle, leadscore.monitor.run
import leadscore.ingest.load, leadscore.experiment.assign, leadscore.registry.store
heavy = ("sklearn", "scipy.stats", "optuna", "imblearn", "statsmodels")
print(",".join(m for m in heavy if m in sys.modules))
import sklearn.linear_model  # still importable afterwards (the fallback model fits with it)
assert not import_xgboost_without_sklearn()  # a second call leaves the process alone
"""


def test_the_daily_job_imports_no_training_stack() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _DAILY_IMPORTS],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_calibrator_is_a_scikit_learn_style_estimator() -> None:
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    margin = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-margin))).astype(int)
    tiers = np.array(["<$100M"] * 2000, dtype=object)
    cal = SegmentCalibrator(min_rows=100).fit(margin, y, tiers)
    copy = clone(cal)
    assert copy.get_params() == {"method": "platt", "min_rows": 100, "min_positives": 10}
    assert not hasattr(copy, "global_")
    again = copy.set_params(min_positives=5).fit(margin, y, tiers)
    np.testing.assert_array_equal(again.predict(margin, tiers), cal.predict(margin, tiers))
