"""Daily delivery folders of the synthetic future, and the future's answer key.

Reads nothing; writes ``future/YYYY-MM-DD/crm/{Lead,Task}.csv`` (one folder per day, as a
Salesforce export job would send it: the leads that entered Contacting that day, the updates of
leads that converted or had their CRD corrected that day, that day's dials) and
``truth/future_truth.csv``, ``truth/future_events.csv``, ``truth/drift.json``. New vendor
vintages are written by the world generator into the folder of their delivery day.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from leadscore.ingest.schema import (
    CRM_DIR,
    LEAD_COLUMNS,
    LEAD_FILE,
    TASK_COLUMNS,
    TASK_FILE,
    TRUTH_DIR,
)
from leadscore.io import write_json
from leadscore.synthetic import crm, vocab
from leadscore.synthetic.future import (
    Drift,
    FutureLeads,
    crd_fix_times,
    day_folder,
    future_ids,
    future_probability,
    unknown_crds,
    vintage_drift,
)
from leadscore.synthetic.planted import planted_labels
from leadscore.synthetic.timeline import AS_OF_S, DAY_S, LABEL_WINDOW_DAYS, Vintage, iso_ts
from leadscore.synthetic.truth import Signal, linear_score
from leadscore.synthetic.vendor import write_csv

WINDOW_S = LABEL_WINDOW_DAYS * DAY_S
EVENT_KINDS = ("contact", "crd_fix", "conversion")


@dataclass(frozen=True)
class LeadFacts:
    """Every lead the future touches: history leads converting after ``as_of``, then the
    future leads. Text columns as exported; times in epoch seconds (-1 = never)."""

    ids: np.ndarray
    crd: np.ndarray  # FA_CRD__c as first exported (None = blank)
    fixed_crd: np.ndarray  # the corrected FA_CRD__c (None = no correction)
    fix_s: np.ndarray
    owner: np.ndarray
    source: np.ndarray
    created: np.ndarray  # CreatedDate text
    contact_s: np.ndarray
    drawn_s: np.ndarray


def history_facts(leads: pa.Table, n: int, out: crm.Outcomes, horizon_s: int) -> LeadFacts:
    """History leads (first ``n`` rows of Lead.csv) whose conversion falls in the future."""
    rows = np.flatnonzero((out.drawn_s > AS_OF_S) & (out.drawn_s < horizon_s))
    take = leads.slice(0, n).take(pa.array(rows))
    contact = _parse_sf(take["Stage_Entered_Contacting__c"].to_pylist())
    return LeadFacts(
        ids=np.array(take["Id"].to_pylist(), dtype=object),
        crd=np.array(take["FA_CRD__c"].to_pylist(), dtype=object),
        fixed_crd=np.full(len(rows), None, dtype=object),
        fix_s=np.full(len(rows), -1, dtype=np.int64),
        owner=np.array(take["OwnerId"].to_pylist(), dtype=object),
        source=np.array(take["LeadSource"].to_pylist(), dtype=object),
        created=np.array(take["CreatedDate"].to_pylist(), dtype=object),
        contact_s=contact,
        drawn_s=out.drawn_s[rows],
    )


def _parse_sf(values: list[str]) -> np.ndarray:
    return np.array(
        [np.datetime64(v[:19], "s").astype(np.int64) for v in values], dtype=np.int64
    ).reshape(-1)


def future_facts(
    leads: FutureLeads, ids: list[str], crd_text: pa.Array, fix_s: np.ndarray, drawn: np.ndarray
) -> LeadFacts:
    """The future leads' facts (a corrected CRD is the picked rep's CRD)."""
    spine = leads.spine
    owners = np.array(crm.sga_ids(), dtype=object)
    return LeadFacts(
        ids=np.array(ids, dtype=object),
        crd=np.array(crd_text.to_pylist(), dtype=object),
        fixed_crd=np.array(
            [str(c) if s >= 0 else None for c, s in zip(leads.rep_crd, fix_s, strict=True)],
            dtype=object,
        ),
        fix_s=fix_s,
        owner=owners[spine.owner],
        source=np.array(vocab.LEAD_SOURCES, dtype=object)[spine.source],
        created=np.array(crm.sf_ts(spine.created_s).to_pylist(), dtype=object),
        contact_s=spine.contact_s,
        drawn_s=drawn,
    )


def concat_facts(a: LeadFacts, b: LeadFacts) -> LeadFacts:
    """``a`` followed by ``b``."""
    return LeadFacts(**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dict__})


def lead_events(facts: LeadFacts, horizon_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lead row, time, kind index) of every event before the horizon, in time order."""
    contact_after = facts.contact_s >= AS_OF_S
    converts = (facts.drawn_s >= facts.contact_s) & (facts.drawn_s > AS_OF_S)
    parts = [
        (np.flatnonzero(contact_after), facts.contact_s[contact_after], 0),
        (np.flatnonzero(facts.fix_s >= 0), facts.fix_s[facts.fix_s >= 0], 1),
        (np.flatnonzero(converts), facts.drawn_s[converts], 2),
    ]
    row = np.concatenate([p[0] for p in parts])
    ts = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    keep = ts < horizon_s
    order = np.lexsort((kind[keep], ts[keep]))
    return row[keep][order], ts[keep][order], kind[keep][order]


def lead_rows(facts: LeadFacts, row: np.ndarray, ts: np.ndarray) -> pa.Table:
    """Lead.csv rows: each lead's full state as of each event (LastModifiedDate = event)."""
    fixed = (facts.fix_s[row] >= 0) & (ts >= facts.fix_s[row])
    crd = np.where(fixed, facts.fixed_crd[row], facts.crd[row])
    drawn = facts.drawn_s[row]
    converted = (drawn >= facts.contact_s[row]) & (drawn <= ts)
    status = np.where(converted, "Call Scheduled", "Contacting")
    table = pa.table(
        {
            "Id": pa.array(facts.ids[row].tolist(), pa.string()),
            "FA_CRD__c": pa.array(crd.tolist(), pa.string()),
            "OwnerId": pa.array(facts.owner[row].tolist(), pa.string()),
            "LeadSource": pa.array(facts.source[row].tolist(), pa.string()),
            "Status": pa.array(status.tolist(), pa.string()),
            "CreatedDate": pa.array(facts.created[row].tolist(), pa.string()),
            "LastModifiedDate": crm.sf_ts(ts),
            "Stage_Entered_Contacting__c": crm.sf_ts(facts.contact_s[row]),
            "Stage_Entered_Call_Scheduled__c": crm.sf_ts(drawn, null=~converted),
        }
    )
    return table.select(list(LEAD_COLUMNS))


def dial_rows(
    rng: np.random.Generator, facts: LeadFacts, first_id: int, horizon_s: int
) -> tuple[pa.Table, np.ndarray]:
    """Task.csv rows of future leads' dials (1-8 between contact and min(contact + 30 days,
    conversion)); returns the table (time order) and each row's time."""
    future = np.flatnonzero(facts.contact_s >= AS_OF_S)
    n_dials = 1 + rng.binomial(7, 0.36, len(future))
    lead = np.repeat(future, n_dials)
    first = np.r_[True, lead[1:] != lead[:-1]] if len(lead) else np.zeros(0, dtype=bool)
    when = facts.contact_s[lead] + np.where(first, 0, rng.integers(1800, WINDOW_S, len(lead)))
    drawn = facts.drawn_s[lead]
    stops = drawn >= facts.contact_s[lead]
    end = np.where(stops, np.minimum(drawn, facts.contact_s[lead] + WINDOW_S), horizon_s)
    keep = (when <= end) & (when < horizon_s)
    lead, when = lead[keep], when[keep]
    order = np.argsort(when, kind="stable")
    lead, when = lead[order], when[order]
    disp = rng.choice(len(vocab.DISPOSITIONS), len(lead), p=vocab.DISPOSITION_WEIGHTS)
    m = len(lead)
    table = pa.table(
        {
            "Id": crm.sf_ids("00T", first_id + np.cumsum(rng.integers(1, 40, m))),
            "WhoId": pa.array(facts.ids[lead].tolist(), pa.string()),
            "OwnerId": pa.array(facts.owner[lead].tolist(), pa.string()),
            "Type": pa.array(["Call"] * m, pa.string()),
            "Subject": pa.array(["Call"] * m, pa.string()),
            "CallDisposition": pa.array(np.array(vocab.DISPOSITIONS)[disp].tolist(), pa.string()),
            "CallDurationInSeconds": pa.array(rng.integers(0, 600, m)),
            "ActivityDate": pa.array((when // DAY_S).astype("datetime64[D]")),
            "CreatedDate": crm.sf_ts(when),
        }
    )
    return table.select(list(TASK_COLUMNS)), when


def write_days(out_dir: Path, days: int, leads: pa.Table, lead_ts: np.ndarray,
               tasks: pa.Table, task_ts: np.ndarray) -> dict[str, int]:  # fmt: skip
    """One folder per day with that day's Lead.csv and Task.csv; returns row counts."""
    counts: dict[str, int] = {}
    lead_day = (lead_ts - AS_OF_S) // DAY_S
    task_day = (task_ts - AS_OF_S) // DAY_S
    for day in range(days):
        folder = day_folder(day)
        day_leads = leads.filter(pa.array(lead_day == day))
        day_tasks = tasks.filter(pa.array(task_day == day))
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        for table, name in ((day_leads, LEAD_FILE), (day_tasks, TASK_FILE)):
            if table.num_rows:  # an export job sends no file on a day without changes
                write_csv(table, out_dir / folder / CRM_DIR / name)
        counts[f"{folder}/{CRM_DIR}/{LEAD_FILE}"] = day_leads.num_rows
        counts[f"{folder}/{CRM_DIR}/{TASK_FILE}"] = day_tasks.num_rows
    return counts


def future_truth(
    leads: FutureLeads,
    facts: LeadFacts,
    true_p: np.ndarray,
    out: crm.Outcomes,
    vintages: tuple[Vintage, ...],
    drift: Drift | None,
) -> pa.Table:
    """``truth/future_truth.csv``: one row per future lead."""
    spine = leads.spine
    n_hist_facts = len(facts.ids) - len(spine.contact_s)
    fix_s = facts.fix_s[n_hist_facts:]
    snaps = np.array([v.snapshot_as_of.isoformat() for v in vintages])
    converted = (out.drawn_s >= spine.contact_s) & (out.drawn_s <= spine.contact_s + WINDOW_S)
    active = np.zeros(len(spine.contact_s), dtype=bool)
    if drift is not None:
        active = spine.contact_s >= drift.start_s
    return pa.table(
        {
            "Id": pa.array(facts.ids[n_hist_facts:].tolist(), pa.string()),
            "contact_ts": pa.array([iso_ts(int(s)) for s in spine.contact_s], pa.string()),
            "true_probability": pa.array(np.round(true_p, 8)),
            "asof_vintage": pa.array(snaps[np.maximum(spine.asof, 0)].tolist(), pa.string()),
            "planted": pa.array(planted_labels(spine, out).tolist(), pa.string()),
            "crd_fixed_ts": pa.array(_iso_or_none(fix_s), pa.string()),
            "converted_within_window": pa.array(converted.astype(np.int64)),
            "conversion_ts": pa.array(_iso_or_none(np.where(converted, out.drawn_s, -1))),
            "drift_active": pa.array(active),
        }
    )


def _iso_or_none(seconds: np.ndarray) -> list[str | None]:
    return [iso_ts(int(s)) if s >= 0 else None for s in seconds]


def events_table(facts: LeadFacts, row: np.ndarray, ts: np.ndarray, kind: np.ndarray) -> pa.Table:
    """``truth/future_events.csv``: every delivered event (day, Id, kind, time)."""
    days = (ts - AS_OF_S) // DAY_S
    return pa.table(
        {
            "day": pa.array(days.astype(np.int64)),
            "Id": pa.array(facts.ids[row].tolist(), pa.string()),
            "event": pa.array(np.array(EVENT_KINDS)[kind].tolist(), pa.string()),
            "ts": pa.array([iso_ts(int(s)) for s in ts], pa.string()),
        }
    )


def write_drift(path: Path, drift: Drift | None, affected: list[str]) -> None:
    """``truth/drift.json``: the planted scenario (or none) and the vintages it changed."""
    record: dict[str, Any] = {"drift": None}
    if drift is not None:
        record = {"drift": {**drift.to_dict(), "vintages_affected": affected}}
    write_json(path, record)


@dataclass(frozen=True)
class History:
    """The history facts the future continues from."""

    leads: pa.Table
    n_leads: int
    outcomes: crm.Outcomes
    score_mean: float
    intercept: float
    signal: Signal


def write_future(
    out_dir: Path,
    leads: FutureLeads,
    drift: Drift | None,
    fut: list[np.random.Generator],
    history: History,
    every: tuple[Vintage, ...],
    days: int,
    n_history_tasks: int,
) -> dict[str, int]:
    """The future's daily folders and truth files; returns their row counts."""
    horizon = AS_OF_S + days * DAY_S
    spine = leads.spine
    score = linear_score(leads.feats, spine.contact_s) if len(leads) else np.zeros(0)
    true_p = future_probability(
        score, history.score_mean, history.intercept, history.signal, spine.contact_s, drift
    )
    outcomes = crm.draw_outcomes(fut[2], spine.contact_s, true_p, 0)
    ids = future_ids(fut[3], history.n_leads, len(leads))
    crd_text = crm.crd_texts(fut[3], spine.crd_kind, leads.rep_crd, unknown_crds(len(leads)))
    fix_s = crd_fix_times(fut[4], spine)
    facts = concat_facts(
        history_facts(history.leads, history.n_leads, history.outcomes, horizon),
        future_facts(leads, ids, crd_text, fix_s, outcomes.drawn_s),
    )
    row, ts, kind = lead_events(facts, horizon)
    table = lead_rows(facts, row, ts)
    first_task = 1000 + 40 * (n_history_tasks + 1)
    tasks, task_ts = dial_rows(fut[5], facts, first_task, horizon)
    counts = write_days(out_dir, days, table, ts, tasks, task_ts)
    truth_dir = out_dir / TRUTH_DIR
    truth = future_truth(leads, facts, true_p, outcomes, every, drift)
    write_csv(truth, truth_dir / "future_truth.csv")
    write_csv(events_table(facts, row, ts, kind), truth_dir / "future_events.csv")
    affected = [v.label for v in every if vintage_drift(drift, v) and v.available_at_s >= AS_OF_S]
    write_drift(truth_dir / "drift.json", drift, affected)
    counts[f"{TRUTH_DIR}/future_truth.csv"] = truth.num_rows
    return counts
