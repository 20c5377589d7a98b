"""The synthetic world after its ``as_of``: new leads, conversions, CRD fixes and new vintages.

Reads nothing; :mod:`leadscore.synthetic.world` calls these helpers while it generates the
history, so the future shares the history's population and generating model. The future uses
its own random streams, so a world with a future has the same history files as one without.
Writes (through :mod:`leadscore.synthetic.deliveries`) ``future/YYYY-MM-DD/`` folders and the
future truth under ``truth/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final, Literal, get_args

import numpy as np
import pyarrow as pa

from leadscore.synthetic import crm
from leadscore.synthetic.population import Population
from leadscore.synthetic.timeline import (
    AS_OF,
    AS_OF_S,
    CONTACT_START,
    DAY_S,
    HOUR_WEIGHTS,
    SNAPSHOT_DATES,
    WEEKDAY_WEIGHTS,
    Vintage,
    day_of,
)
from leadscore.synthetic.truth import SIGNAL_SCALE, Signal, sigmoid

DriftName = Literal["aum_shift", "columns_dropped", "conversion_drop"]
DRIFT_NAMES: Final[tuple[str, ...]] = get_args(DriftName)
FUTURE_DIR: Final = "future"
#: Share of future leads with a blank or malformed CRD whose CRD is corrected later.
CRD_FIX_SHARE: Final = 0.3
#: Drift planted by ``aum_shift``: the vendor restates firm assets by this factor.
AUM_SHIFT_FACTOR: Final = 1.8
#: Columns ``columns_dropped`` stops delivering (present in the header, every value blank).
DROPPED_COLUMNS: Final = {
    "reps": ("DateOfHireAtCurrentFirm",),
    "firms": ("TotalAssetsInMillions",),
}
#: ``conversion_drop``: the true conversion probability falls by a third.
CONVERSION_FACTOR: Final = 2 / 3
DRIFT_TEXT: Final = {
    "aum_shift": f"firm asset columns of every vintage delivered from the drift day are x"
    f"{AUM_SHIFT_FACTOR} in the file (a vendor restatement); true probabilities use the real "
    "values",
    "columns_dropped": "vintages delivered from the drift day carry "
    + ", ".join(c for cols in DROPPED_COLUMNS.values() for c in cols)
    + " as blank columns; true probabilities use the real values",
    "conversion_drop": f"leads contacted from the drift day convert with x{CONVERSION_FACTOR:.3f}"
    " their true probability; features unchanged",
}
#: Id numbers of future leads start above any history lead's (history gaps are < 40).
_ID_GAP: Final = 40
_UNKNOWN_CRD_BASE: Final = 9_000_000


@dataclass(frozen=True)
class Drift:
    """A planted change from ``start_s`` (epoch seconds) on."""

    name: DriftName
    start_s: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (as written to ``truth/drift.json``)."""
        start = AS_OF.date() + timedelta(days=(self.start_s - AS_OF_S) // DAY_S)
        return {"name": self.name, "start": start.isoformat(), "what": DRIFT_TEXT[self.name]}


def parse_drift(name: str | None, day: int) -> Drift | None:
    """The drift named ``name`` starting ``day`` days after the world's ``as_of`` (or None)."""
    if name is None:
        return None
    if name not in DRIFT_NAMES:
        raise ValueError(f"unknown drift {name!r}; choose one of {', '.join(DRIFT_NAMES)}")
    if day < 0:
        raise ValueError(f"drift day must be >= 0, got {day}")
    return Drift(name, AS_OF_S + day * DAY_S)  # type: ignore[arg-type]


def day_folder(day: int) -> str:
    """``future/YYYY-MM-DD``: the delivery folder of events in day ``day`` after ``as_of``."""
    return f"{FUTURE_DIR}/{(AS_OF.date() + timedelta(days=day)).isoformat()}"


def make_future_vintages(rng: np.random.Generator, n_history: int, days: int) -> list[Vintage]:
    """Quarterly vintages after the history's, delivered 32-50 days after their snapshot date
    (so never before ``as_of``), up to ``as_of + days``."""
    out: list[Vintage] = []
    snap = SNAPSHOT_DATES[-1]
    while True:
        month = snap.month + 3
        snap = date(snap.year + (month > 12), (month - 1) % 12 + 1, 1)
        processed = (
            day_of(snap) * DAY_S
            + int(rng.integers(32, 51)) * DAY_S
            + int(rng.integers(6 * 3600, 22 * 3600)) // 60 * 60
        )
        if processed >= AS_OF_S + days * DAY_S:
            return out
        out.append(Vintage(n_history + len(out), snap, processed, processed))


def future_contact_times(rng: np.random.Generator, n_history: int, days: int) -> np.ndarray:
    """Contact times over ``[as_of, as_of + days)`` at the history's closing daily rate."""
    start_day = day_of(CONTACT_START.date())
    hist_days = np.arange(start_day, day_of(AS_OF.date()))
    trend = 1.0 + 0.6 * (hist_days - start_day) / len(hist_days)
    norm = float((trend * WEEKDAY_WEIGHTS[(hist_days + 3) % 7]).sum())
    fut_days = np.arange(day_of(AS_OF.date()), day_of(AS_OF.date()) + days)
    lam = n_history * 1.6 * WEEKDAY_WEIGHTS[(fut_days + 3) % 7] / norm
    day = np.repeat(fut_days, rng.poisson(lam))
    hour = rng.choice(24, size=len(day), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return np.sort(day * DAY_S + hour * 3600 + rng.integers(0, 3600, size=len(day)))


@dataclass
class FutureLeads:
    """Future leads, filled in while the vendor loop walks the vintages."""

    spine: crm.LeadSpine
    pick_rng: np.random.Generator
    rep_crd: np.ndarray
    feats: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.spine.contact_s)


def future_leads(
    rng: np.random.Generator, n_history: int, days: int, vintages: tuple[Vintage, ...]
) -> FutureLeads:
    """The future lead spine (as-of vintage among history and future vintages)."""
    contact = future_contact_times(rng, n_history, days)
    spine = crm.make_spine(rng, contact, vintages)
    return FutureLeads(spine, rng, np.zeros(len(contact), dtype=np.int64))


def pick_future(
    leads: FutureLeads,
    v: int,
    reps: Population,
    used: np.ndarray,
    features: dict[str, np.ndarray] | None,
    rows: np.ndarray,
    idx: np.ndarray,
) -> None:
    """Store the picked reps ``rows`` (of vintage ``v``) and their features for leads ``idx``."""
    leads.rep_crd[idx] = reps["crd"][rows]
    for k, values in (features or {}).items():
        leads.feats.setdefault(k, np.zeros(len(leads)))[idx] = values


def future_probability(
    score: np.ndarray,
    history_mean: float,
    intercept: float,
    signal: Signal,
    contact_s: np.ndarray,
    drift: Drift | None,
) -> np.ndarray:
    """The history's generating model applied to future leads (same centring and intercept);
    ``conversion_drop`` scales it from the drift day."""
    p = sigmoid(intercept + SIGNAL_SCALE[signal] * (score - history_mean))
    if drift is not None and drift.name == "conversion_drop":
        p = np.where(contact_s >= drift.start_s, p * CONVERSION_FACTOR, p)
    return np.asarray(p)


def future_ids(rng: np.random.Generator, n_history: int, n: int) -> list[str]:
    """Lead Ids after every history Id."""
    start = 1000 + _ID_GAP * (n_history + 1)
    numbers = start + np.cumsum(rng.integers(1, _ID_GAP, n))
    return list(crm.sf_ids("00Q", numbers).to_pylist())


def unknown_crds(n: int) -> np.ndarray:
    """CRD numbers no vintage holds (above the whole CRD range)."""
    return _UNKNOWN_CRD_BASE + np.arange(n)


def crd_fix_times(rng: np.random.Generator, spine: crm.LeadSpine) -> np.ndarray:
    """When a blank or malformed CRD is corrected (1-10 days after contact), -1 for never."""
    n = len(spine.contact_s)
    fixable = np.isin(spine.crd_kind, (crm.CRD_MISSING, crm.CRD_MALFORMED))
    chosen = fixable & (rng.random(n) < CRD_FIX_SHARE)
    delay = rng.integers(DAY_S, 10 * DAY_S, n)
    return np.where(chosen, spine.contact_s + delay, -1)


def vintage_drift(drift: Drift | None, vintage: Vintage) -> DriftName | None:
    """The vintage-level drift that applies to ``vintage`` (delivered on or after the start)."""
    if drift is None or drift.name == "conversion_drop":
        return None
    return drift.name if vintage.available_at_s >= drift.start_s else None


def blank_dropped(table: pa.Table, kind: str, planted: str | None) -> pa.Table:
    """``columns_dropped``: the dropped columns stay in the header with every value blank."""
    if planted != "columns_dropped":
        return table
    for name in DROPPED_COLUMNS[kind]:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pa.nulls(table.num_rows, table.schema.field(i).type))
    return table
