"""Wall time and peak memory of the named steps of a stage (train: tuning, CV, refit, ...).

Reads the process's resident memory (``/proc/self/statm``, sampled by a background thread
while a step runs); writes nothing. A stage puts :meth:`StepClock.to_dict` into its summary,
and the benchmarks report it per step. Durations only: no clock value is stored.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mib() -> float | None:
    """Resident memory of this process now, in MiB (None where /proc is absent)."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return None


class StepClock:
    """Times named steps; each step's record: seconds, RSS at start and peak RSS (MiB).

    A step run twice under one name adds its seconds and keeps the higher peak.
    """

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.records: dict[str, dict[str, float | None]] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block and sample its memory until it ends."""
        start_rss = rss_mib()
        peak = [start_rss or 0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(self.interval_s):
                now = rss_mib()
                if now is not None and now > peak[0]:
                    peak[0] = now

        sampler = threading.Thread(target=sample, name=f"rss:{name}", daemon=True)
        sampler.start()
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            done.set()
            sampler.join()
            end = rss_mib()
            self._add(name, seconds, start_rss, max(peak[0], end or 0.0))

    def _add(self, name: str, seconds: float, start: float | None, peak: float) -> None:
        old = self.records.get(name)
        if old is not None:
            seconds += float(old["seconds"] or 0.0)
            peak = max(peak, float(old["peak_rss_mib"] or 0.0))
            start = old["start_rss_mib"]
        self.records[name] = {
            "seconds": round(seconds, 3),
            "start_rss_mib": None if start is None else round(start, 1),
            "peak_rss_mib": round(peak, 1) if peak else None,
        }

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        """Steps in the order they first ran."""
        return {name: dict(record) for name, record in self.records.items()}
