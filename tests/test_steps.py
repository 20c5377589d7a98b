"""Per-step wall time and peak memory: what the train stage records for the benchmarks."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from leadscore.steps import StepClock, rss_mib

TRAIN_STEPS = [
    "prepare",
    "cv: feature filters",
    "cv: imbalance strategies",
    "tuning",
    "cv: fold refits",
    "cv: logistic baseline",
    "refit",
    "calibration",
    "evaluation",
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_step_sees_the_memory_it_allocates() -> None:
    clock = StepClock(interval_s=0.01)
    with clock.step("allocate"):
        block = np.ones(40 * 2**20 // 8)  # 40 MiB, touched
        time.sleep(0.1)
        del block
    with clock.step("idle"):
        pass
    allocate, idle = clock.to_dict()["allocate"], clock.to_dict()["idle"]
    assert allocate["peak_rss_mib"] is not None and allocate["start_rss_mib"] is not None
    assert allocate["peak_rss_mib"] - allocate["start_rss_mib"] >= 35
    assert idle["seconds"] is not None and idle["seconds"] < allocate["seconds"]
    assert rss_mib() is not None


def test_a_step_run_twice_adds_its_time() -> None:
    clock = StepClock()
    for _ in range(2):
        with clock.step("twice"):
            time.sleep(0.02)
    assert list(clock.to_dict()) == ["twice"]
    assert (clock.to_dict()["twice"]["seconds"] or 0) >= 0.04


def test_a_failing_step_is_still_recorded() -> None:
    clock = StepClock()
    with pytest.raises(ValueError), clock.step("fails"):
        raise ValueError("boom")
    assert "fails" in clock.to_dict()


def test_train_summary_records_every_step(finished_run: Path) -> None:
    summary = json.loads((finished_run / "reports" / "train" / "latest.json").read_text())
    steps = summary["steps"]
    assert set(steps) == set(TRAIN_STEPS)  # the summary is written with sorted keys
    for record in steps.values():
        assert record["seconds"] >= 0
        assert record["peak_rss_mib"] >= record["start_rss_mib"] > 0
