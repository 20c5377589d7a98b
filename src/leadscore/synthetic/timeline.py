"""The calendar of the synthetic world: extraction time, vintages, contact times.

Times are int64 seconds since the Unix epoch (UTC); dates are int64 days since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

DAY_S = 86_400
AS_OF = datetime(2025, 11, 1, tzinfo=UTC)
AS_OF_S = int(AS_OF.timestamp())
CONTACT_START = datetime(2022, 11, 1, tzinfo=UTC)
DELIVERY_LAG_DAYS = 45
LABEL_WINDOW_DAYS = 30
SNAPSHOT_DATES = tuple(
    date(y, m, 1)
    for y, m in (
        (2023, 10),
        (2024, 1),
        (2024, 4),
        (2024, 7),
        (2024, 10),
        (2025, 1),
        (2025, 4),
        (2025, 7),
    )
)
#: Relative share of contacts per weekday (Mon..Sun): each weekend day ~6.5% of contacts.
WEEKDAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.37, 0.37])
#: Relative share of contacts per UTC hour (US business hours are 13-23 UTC).
HOUR_WEIGHTS = np.array(
    [3, 2, 1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 1.5, 2, 3, 5, 8, 10, 10, 10, 10, 9, 9, 8, 7, 6, 4],
    dtype=float,
)


@dataclass(frozen=True)
class Vintage:
    """One quarterly vendor delivery."""

    index: int
    snapshot_as_of: date
    processed_at_s: int | None
    available_at_s: int

    @property
    def label(self) -> str:
        """``YYYY_qN`` of the snapshot date, as used in file names."""
        return f"{self.snapshot_as_of.year}_q{(self.snapshot_as_of.month - 1) // 3 + 1}"

    @property
    def snapshot_day(self) -> int:
        """Snapshot date as days since the epoch."""
        return (self.snapshot_as_of - date(1970, 1, 1)).days


def day_of(d: date) -> int:
    """Days since the epoch of a date."""
    return (d - date(1970, 1, 1)).days


def iso_ts(seconds: int) -> str:
    """``2024-02-03T10:15:00Z`` of epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_vintages(rng: np.random.Generator) -> tuple[Vintage, ...]:
    """The 8 vintages; the first has no ``processed_at`` (availability falls back to the lag)."""
    out = []
    for i, snap in enumerate(SNAPSHOT_DATES):
        snap_s = day_of(snap) * DAY_S
        lag_days = int(rng.integers(20, 51))
        time_of_day = int(rng.integers(6 * 3600, 22 * 3600)) // 60 * 60
        processed = snap_s + lag_days * DAY_S + time_of_day
        if i == 0:
            out.append(Vintage(i, snap, None, snap_s + DELIVERY_LAG_DAYS * DAY_S))
        else:
            out.append(Vintage(i, snap, processed, processed))
    return tuple(out)


def sample_contact_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` sorted contact times over the 3-year window, volume growing gently over time."""
    start_day = day_of(CONTACT_START.date())
    days = np.arange(start_day, day_of(AS_OF.date()))
    trend = 1.0 + 0.6 * (days - start_day) / len(days)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    weights = trend * WEEKDAY_WEIGHTS[weekday]
    day = rng.choice(days, size=n, p=weights / weights.sum())
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    second = rng.integers(0, 3600, size=n)
    return np.sort(day * DAY_S + hour * 3600 + second)


def weekday_of(ts_s: np.ndarray) -> np.ndarray:
    """Weekday (Mon=0 .. Sun=6) of epoch seconds."""
    return (ts_s // DAY_S + 3) % 7
