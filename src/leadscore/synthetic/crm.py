"""The CRM side of the synthetic world: the lead spine, conversions, Lead and Task exports.

Salesforce conventions: 18-character ids, ``2024-03-05T14:22:10.000+0000`` timestamps; nothing
after the extraction time ``as_of`` is exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.synthetic import vocab
from leadscore.synthetic.timeline import AS_OF_S, DAY_S, LABEL_WINDOW_DAYS, Vintage

SF_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.000+0000"
BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CHECKSUM_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
N_SGAS = 20
#: FA_CRD__c states: 0 valid, 1 blank, 2 malformed, 3 numeric but unknown.
CRD_KIND_P = (0.95, 0.02, 0.015, 0.015)
CRD_OK, CRD_MISSING, CRD_MALFORMED, CRD_UNKNOWN = range(4)
WINDOW_S = LABEL_WINDOW_DAYS * DAY_S
LATE_SHARE = 0.11  # late conversions per in-window conversion: ~10% of all conversions
STATUSES = ("Contacting", "Nurture", "Closed - Not Interested", "Unqualified", "Call Scheduled")


@dataclass(frozen=True)
class LeadSpine:
    """One entry per unique lead, sorted by contact time."""

    contact_s: np.ndarray
    created_s: np.ndarray
    asof: np.ndarray  # vintage index the lead sees, -1 when none is available yet
    crd_kind: np.ndarray
    owner: np.ndarray
    source: np.ndarray


@dataclass(frozen=True)
class Outcomes:
    """Drawn conversions; ``call_s`` is -1 when there is none (or it is not exported)."""

    call_s: np.ndarray
    drawn_s: np.ndarray  # the conversion time as drawn, -1 if none (may be after as_of)
    in_window: np.ndarray
    negative: np.ndarray


def sf_ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """18-character Salesforce-style ids (15 case-sensitive chars + 3 checksum chars)."""
    n = len(numbers)
    chars = np.empty((n, 18), dtype=np.uint8)
    head = (prefix + "8Dn0000").encode()
    chars[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    alphabet = np.frombuffer(BASE62, dtype=np.uint8)
    rest = numbers.astype(np.int64)
    for pos in range(14, len(head) - 1, -1):
        chars[:, pos] = alphabet[rest % 62]
        rest //= 62
    upper = (chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    for chunk in range(3):
        bits = (upper[:, chunk * 5 : chunk * 5 + 5] * weights).sum(axis=1)
        chars[:, 15 + chunk] = np.frombuffer(CHECKSUM_CHARS, dtype=np.uint8)[bits]
    return pa.array(chars.view("S18").ravel().astype(str), pa.string())


def unique_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Increasing distinct integers with random gaps (id suffixes in creation order)."""
    return 1000 + np.cumsum(rng.integers(1, 40, n))


def sga_ids() -> list[str]:
    """The SGAs' user ids (``005…``)."""
    return sf_ids("005", np.arange(N_SGAS) * 7919 + 11).to_pylist()


def make_spine(
    rng: np.random.Generator, contact_s: np.ndarray, vintages: tuple[Vintage, ...]
) -> LeadSpine:
    """Lead facts that do not depend on the advisor: timing, owner, source, CRD state."""
    n = len(contact_s)
    available = np.array([v.available_at_s for v in vintages])
    lead_age = np.minimum(rng.exponential(12 * DAY_S, n), 200 * DAY_S).astype(np.int64)
    return LeadSpine(
        contact_s=contact_s,
        created_s=contact_s - lead_age,
        asof=np.searchsorted(available, contact_s, side="right") - 1,
        crd_kind=rng.choice(4, n, p=CRD_KIND_P),
        owner=rng.integers(0, N_SGAS, n),
        source=rng.choice(len(vocab.LEAD_SOURCES), n, p=vocab.LEAD_SOURCE_WEIGHTS),
    )


def draw_outcomes(
    rng: np.random.Generator, contact_s: np.ndarray, true_p: np.ndarray, n_negative: int
) -> Outcomes:
    """Conversions: Bernoulli(true_p) within 30 days, ~10% later ones, a few before contact."""
    n = len(contact_s)
    hit = rng.random(n) < true_p
    late = ~hit & (rng.random(n) < LATE_SHARE * true_p / (1 - true_p))
    early_delay = 60 + (rng.random(n) ** 2 * (WINDOW_S - 120)).astype(np.int64)
    late_delay = rng.integers(31 * DAY_S, 151 * DAY_S, n)
    drawn = np.where(hit, contact_s + early_delay, np.where(late, contact_s + late_delay, -1))
    negative = np.zeros(n, dtype=bool)
    negative[rng.choice(n, n_negative, replace=False)] = True
    before = contact_s - rng.integers(3600, 90 * DAY_S, n)
    drawn = np.where(negative, before, drawn)
    call = np.where(drawn > AS_OF_S, -1, drawn)
    in_window = (call >= contact_s) & (call <= contact_s + WINDOW_S)
    return Outcomes(call_s=call, drawn_s=drawn, in_window=in_window, negative=negative)


def crd_texts(
    rng: np.random.Generator, kind: np.ndarray, rep_crd: np.ndarray, unknown_crd: np.ndarray
) -> pa.Array:
    """FA_CRD__c as exported: digits, blank, malformed text or a CRD no vintage knows."""
    digits = rep_crd.astype(str)
    form = rng.integers(0, 4, len(kind))
    malformed = np.where(
        form == 0,
        np.char.add("CRD-", digits),
        np.where(form == 1, np.char.add(digits, "a"), np.where(form == 2, "n/a", "TBD")),
    )
    text = np.where(kind == CRD_MALFORMED, malformed, digits)
    text = np.where(kind == CRD_UNKNOWN, unknown_crd.astype(str), text)
    return pa.array(text.tolist(), pa.string(), mask=kind == CRD_MISSING)


def sf_ts(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Salesforce timestamp text of epoch seconds (NULL where ``null``)."""
    ts = pa.array(seconds.astype("datetime64[s]"), mask=null)
    return pc.strftime(ts, format=SF_TS_FORMAT)


def _statuses(rng: np.random.Generator, spine: LeadSpine, out: Outcomes) -> np.ndarray:
    n = len(spine.contact_s)
    recent = spine.contact_s > AS_OF_S - 45 * DAY_S
    idle = rng.choice(4, n, p=[0.25, 0.35, 0.25, 0.15])
    return np.where(out.call_s >= 0, 4, np.where(recent, 0, idle))


def lead_table(
    rng: np.random.Generator,
    spine: LeadSpine,
    out: Outcomes,
    ids: pa.Array,
    crd_text: pa.Array,
    n_dup: int,
) -> tuple[pa.Table, np.ndarray]:
    """Lead.csv rows: one per lead, then ``n_dup`` re-exported rows with a later LastModifiedDate.

    Returns the table and the (sorted) lead indices that were exported twice.
    """
    n = len(spine.contact_s)
    last_event = np.maximum(spine.contact_s, out.call_s)
    modified = last_event + rng.exponential(5 * DAY_S, n).astype(np.int64)
    modified = np.maximum(last_event, np.minimum(modified, AS_OF_S - 2 * 3600))
    status = _statuses(rng, spine, out)
    dup = np.sort(rng.choice(np.flatnonzero(modified < AS_OF_S - 3600), n_dup, replace=False))
    dup_modified = np.minimum(modified[dup] + rng.integers(3600, 20 * DAY_S, n_dup), AS_OF_S)
    new_status = np.where(
        rng.random(n_dup) < 0.5,
        status[dup],
        (status[dup] + rng.integers(1, len(STATUSES), n_dup)) % len(STATUSES),
    )
    rows = np.concatenate([np.arange(n), dup])
    call = out.call_s[rows]
    owners = pa.array(sga_ids())
    table = pa.table(
        {
            "Id": ids.take(pa.array(rows)),
            "FA_CRD__c": crd_text.take(pa.array(rows)),
            "OwnerId": owners.take(pa.array(spine.owner[rows])),
            "LeadSource": pa.array(vocab.LEAD_SOURCES).take(pa.array(spine.source[rows])),
            "Status": pa.array(STATUSES).take(pa.array(np.concatenate([status, new_status]))),
            "CreatedDate": sf_ts(spine.created_s[rows]),
            "LastModifiedDate": sf_ts(np.concatenate([modified, dup_modified])),
            "Stage_Entered_Contacting__c": sf_ts(spine.contact_s[rows]),
            "Stage_Entered_Call_Scheduled__c": sf_ts(call, null=call < 0),
        }
    )
    return table, dup


def task_table(
    rng: np.random.Generator, spine: LeadSpine, out: Outcomes, lead_ids: pa.Array
) -> pa.Table:
    """Task.csv: 1-8 dials per lead between contact and min(contact+30d, conversion, as_of).

    Plus, as a real CRM has them, dials that the KPI must not count (see :func:`stray_dials`):
    before contact, after the MQL and after the window.
    """
    n = len(spine.contact_s)
    n_dials = 1 + rng.binomial(7, 0.36, n)
    lead = np.repeat(np.arange(n), n_dials)
    first = np.r_[True, lead[1:] != lead[:-1]]
    offset = np.where(first, 0, rng.integers(1800, WINDOW_S, len(lead)))
    order = np.lexsort((offset, lead))
    lead, offset = lead[order], offset[order]
    stops = out.drawn_s >= spine.contact_s  # a scheduled call ends the dialling
    end = np.minimum(spine.contact_s + WINDOW_S, AS_OF_S - 1)
    end = np.where(stops, np.minimum(end, out.drawn_s), end)
    when = spine.contact_s[lead] + offset
    keep = when <= end[lead]
    lead, when = lead[keep], when[keep]
    disp = rng.choice(len(vocab.DISPOSITIONS), len(lead), p=vocab.DISPOSITION_WEIGHTS)
    last = np.r_[lead[1:] != lead[:-1], True]
    disp = np.where(last & stops[lead] & (out.drawn_s[lead] <= end[lead]), 0, disp)
    extra_lead, extra_when = stray_dials(rng, spine, out)
    extra_disp = rng.choice(len(vocab.DISPOSITIONS), len(extra_lead), p=vocab.DISPOSITION_WEIGHTS)
    lead, when = np.r_[lead, extra_lead], np.r_[when, extra_when]
    disp = np.r_[disp, np.maximum(extra_disp, 1)]  # a stray dial never schedules the call
    k = len(lead)
    duration = np.select(
        [disp == 0, disp == 1, disp == 3],
        [np.exp(rng.normal(5.0, 0.8, k)), rng.uniform(15, 60, k), rng.uniform(10, 40, k)],
        default=rng.uniform(0, 30, k),
    )
    by_time = np.argsort(when, kind="stable")
    lead, when, disp, duration = lead[by_time], when[by_time], disp[by_time], duration[by_time]
    m = len(lead)
    return pa.table(
        {
            "Id": sf_ids("00T", unique_numbers(rng, m)),
            "WhoId": lead_ids.take(pa.array(lead)),
            "OwnerId": pa.array(sga_ids()).take(pa.array(spine.owner[lead])),
            "Type": pa.array(["Call"] * m, pa.string()),
            "Subject": pa.array(["Call"] * m, pa.string()),
            "CallDisposition": pa.array(vocab.DISPOSITIONS).take(pa.array(disp)),
            "CallDurationInSeconds": pa.array(np.round(duration).astype(np.int64)),
            "ActivityDate": pa.array((when // DAY_S).astype("datetime64[D]")),
            "CreatedDate": sf_ts(when),
        }
    )


def stray_dials(
    rng: np.random.Generator, spine: LeadSpine, out: Outcomes
) -> tuple[np.ndarray, np.ndarray]:
    """Dials outside a lead's KPI window: (lead positions, times), all before ``as_of``.

    About 8% of leads get one dial up to 10 days before contact, 10% one 1-30 days after the
    window closes, and 30% of leads that converted in the window one dial up to 10 days after
    the MQL. "MQLs per 100 dials within the window" must leave all of them out.
    """
    n = len(spine.contact_s)
    before = np.flatnonzero(rng.random(n) < 0.08)
    after_window = np.flatnonzero(rng.random(n) < 0.10)
    converted = (out.drawn_s >= spine.contact_s) & (out.drawn_s <= spine.contact_s + WINDOW_S)
    after_mql = np.flatnonzero(converted & (rng.random(n) < 0.30))
    lead = np.r_[before, after_window, after_mql]
    when = np.r_[
        spine.contact_s[before] - rng.integers(3600, 10 * DAY_S, len(before)),
        spine.contact_s[after_window]
        + WINDOW_S
        + rng.integers(DAY_S, 30 * DAY_S, len(after_window)),
        out.drawn_s[after_mql] + rng.integers(3600, 10 * DAY_S, len(after_mql)),
    ]
    keep = when < AS_OF_S
    return lead[keep], when[keep]
