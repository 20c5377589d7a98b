"""The answer key: per-lead truth (``lead_truth.csv``) and exact planted counts (``planted.json``).

Training never reads these; tests and benchmarks compare the pipeline's counts and a model's
scores against them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.synthetic import crm
from leadscore.synthetic.timeline import AS_OF_S, DAY_S, LABEL_WINDOW_DAYS, Vintage

#: Precedence of the single ``planted`` label of a lead (first that applies wins).
PLANTED_LABELS = ("crd_missing", "crd_malformed", "crd_unknown", "no_snapshot", "negative_days")

DEFINITIONS = {
    "contact": "Stage_Entered_Contacting__c; call = Stage_Entered_Call_Scheduled__c (UTC).",
    "n_lead_rows": "Rows of crm/Lead.csv.",
    "n_leads": "Distinct Id in crm/Lead.csv (= rows of truth/lead_truth.csv).",
    "n_duplicate_lead_rows": "n_lead_rows - n_leads; each duplicated Id appears exactly twice; "
    "the second row has a strictly later LastModifiedDate (Status may differ), every other "
    "column is identical. duplicate_lead_ids lists them.",
    "n_crd_missing": "Distinct leads whose FA_CRD__c is blank.",
    "n_crd_malformed": "Distinct leads whose FA_CRD__c is non-blank and not all digits.",
    "n_crd_unknown": "Distinct leads whose FA_CRD__c is all digits but no RepCRD of any vintage.",
    "n_crd_valid": "Distinct leads whose FA_CRD__c is all digits and a RepCRD of the lead's "
    "as-of vintage (the first vintage for no-snapshot leads).",
    "n_no_snapshot": "Distinct leads with contact < available_at of the first vintage "
    "(any CRD state).",
    "n_negative_days": "Distinct leads with call < contact (any CRD state).",
    "n_right_censored_total": f"Distinct leads with contact > as_of - {LABEL_WINDOW_DAYS} days.",
    "n_right_censored": "Of n_right_censored_total, those otherwise eligible: valid CRD, a "
    "snapshot available, not negative days (planted == ok).",
    "n_eligible": "Distinct leads with planted == ok and not right-censored: the training rows.",
    "n_converted_30d": f"Distinct leads with contact <= call <= contact + {LABEL_WINDOW_DAYS} "
    "days (all leads).",
    "n_converted_30d_eligible": "Of n_converted_30d, those counted in n_eligible.",
    "n_converted_late": f"Distinct leads with call > contact + {LABEL_WINDOW_DAYS} days.",
    "n_conversions_after_as_of": "Drawn conversions later than as_of: not exported (NULL).",
    "n_dials": "Rows of crm/Task.csv (every row Type = 'Call').",
    "planted_label_counts": "Rows of lead_truth.csv per planted label; precedence "
    + " > ".join(PLANTED_LABELS)
    + " > ok.",
    "vintages": "Per vintage label YYYY_qN: reps rows, unique RepCRD, duplicate rows (rows - "
    "unique), junk cells per column (non-blank text that is not a number, nor a number with "
    "thousands separators), thousands-separator cells, MM/DD/YYYY date cells, NULL cells.",
}


def planted_labels(spine: crm.LeadSpine, out: crm.Outcomes) -> np.ndarray:
    """One label per lead (see ``PLANTED_LABELS`` for precedence)."""
    flags = (
        spine.crd_kind == crm.CRD_MISSING,
        spine.crd_kind == crm.CRD_MALFORMED,
        spine.crd_kind == crm.CRD_UNKNOWN,
        spine.asof < 0,
        out.negative,
    )
    return np.select(flags, PLANTED_LABELS, default="ok")


def truth_table(
    ids: pa.Array,
    true_p: np.ndarray,
    spine: crm.LeadSpine,
    out: crm.Outcomes,
    vintages: tuple[Vintage, ...],
) -> pa.Table:
    """``lead_truth.csv``: one row per unique lead Id."""
    snaps = np.array([v.snapshot_as_of.isoformat() for v in vintages])
    asof = snaps[np.maximum(spine.asof, 0)]
    return pa.table(
        {
            "Id": ids,
            "true_probability": pa.array(np.round(true_p, 8)),
            "asof_vintage": pa.array(asof.tolist(), pa.string(), mask=spine.asof < 0),
            "planted": pa.array(planted_labels(spine, out).tolist(), pa.string()),
            "converted_within_window": pa.array(out.in_window.astype(np.int64)),
        }
    )


def planted_counts(
    spine: crm.LeadSpine,
    out: crm.Outcomes,
    truth: pa.Table,
    ids: pa.Array,
    dup: np.ndarray,
    vendor: dict[str, Any],
    n_dials: int,
) -> dict[str, Any]:
    """Exact counts of everything planted, with their definitions."""
    labels = truth["planted"].to_numpy(zero_copy_only=False)
    ok = labels == "ok"
    censored = spine.contact_s > AS_OF_S - LABEL_WINDOW_DAYS * DAY_S
    eligible = ok & ~censored
    kinds = pc.value_counts(truth["planted"]).to_pylist()
    n = len(spine.contact_s)
    return {
        "definitions": DEFINITIONS,
        "n_lead_rows": n + len(dup),
        "n_leads": n,
        "n_duplicate_lead_rows": len(dup),
        "duplicate_lead_ids": sorted(ids.take(pa.array(dup)).to_pylist()),
        "n_crd_missing": int((spine.crd_kind == crm.CRD_MISSING).sum()),
        "n_crd_malformed": int((spine.crd_kind == crm.CRD_MALFORMED).sum()),
        "n_crd_unknown": int((spine.crd_kind == crm.CRD_UNKNOWN).sum()),
        "n_crd_valid": int((spine.crd_kind == crm.CRD_OK).sum()),
        "n_no_snapshot": int((spine.asof < 0).sum()),
        "n_negative_days": int(out.negative.sum()),
        "n_right_censored_total": int(censored.sum()),
        "n_right_censored": int((ok & censored).sum()),
        "n_eligible": int(eligible.sum()),
        "n_converted_30d": int(out.in_window.sum()),
        "n_converted_30d_eligible": int((out.in_window & eligible).sum()),
        "n_converted_late": int((out.call_s > spine.contact_s + LABEL_WINDOW_DAYS * DAY_S).sum()),
        "n_conversions_after_as_of": int((out.drawn_s > AS_OF_S).sum()),
        "n_dials": n_dials,
        "planted_label_counts": {
            k["values"]: k["counts"] for k in sorted(kinds, key=lambda k: str(k["values"]))
        },
        "vintages": vendor,
    }
