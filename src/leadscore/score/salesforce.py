"""Score stage, Salesforce side: the Bulk API 2.0 upsert CSV, its field mapping and a validator.

Reads rows of ``lead_scores``; writes a UTF-8, comma-separated, LF-terminated CSV keyed on
``Id`` and a JSON field mapping (our column -> Salesforce field -> type/length). The validator
checks a CSV against that mapping the way the Bulk API would reject it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.config import DEFAULT_BUCKETS
from leadscore.io import write_json, write_text

_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_DATETIME_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")


@dataclass(frozen=True)
class SalesforceField:
    """One column of the upsert file and the Salesforce field it lands in."""

    column: str
    salesforce_field: str
    type: str  # id | number | picklist | text | datetime
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] | None = None
    required: bool = True
    description: str = ""


#: The Lead fields the score writes, in file order. ``Id`` is the upsert key.
LEAD_SCORE_FIELDS: tuple[SalesforceField, ...] = (
    SalesforceField("lead_id", "Id", "id", length=18, description="Salesforce Lead Id"),
    SalesforceField(
        "score", "Lead_Score__c", "number", precision=2, scale=0, minimum=1, maximum=99,
        description="Score 1-99 from the calibrated probability",
    ),
    SalesforceField(
        "probability", "Lead_Score_Probability__c", "number", precision=5, scale=4,
        minimum=0, maximum=1, description="Calibrated P(MQL within 30 days of contact)",
    ),
    SalesforceField(
        "bucket", "Lead_Score_Bucket__c", "picklist", length=40, values=DEFAULT_BUCKETS.names,
        description="Score bucket from the model's cut-points",
    ),
    SalesforceField(
        "tier", "Lead_Score_Tier__c", "picklist", length=1, values=DEFAULT_BUCKETS.tiers,
        description="Call tier: A first, then B, then C",
    ),
    SalesforceField(
        "drivers_text", "Lead_Score_Drivers__c", "text", length=255, required=False,
        description="Top positive and negative drivers in words, with their contribution",
    ),
    SalesforceField(
        "model_version", "Lead_Score_Model_Version__c", "text", length=80,
        description="Version of the model bundle that produced the score",
    ),
    SalesforceField(
        "scored_at", "Lead_Score_Scored_At__c", "datetime",
        description="When the score was produced, ISO 8601 UTC",
    ),
)  # fmt: skip


def field_mapping() -> list[dict[str, Any]]:
    """The mapping as plain records (what the JSON file holds)."""
    return [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(f).items()}
        for f in LEAD_SCORE_FIELDS
    ]


def write_field_mapping(path: Path) -> Path:
    """Write the field mapping JSON atomically."""
    return write_json(path, {"object": "Lead", "external_id": "Id", "fields": field_mapping()})


def load_field_mapping(path: Path) -> tuple[SalesforceField, ...]:
    """Read a mapping JSON written by :func:`write_field_mapping`."""
    data = json.loads(Path(path).read_text())
    return tuple(
        SalesforceField(**{**f, "values": tuple(f["values"]) if f.get("values") else None})
        for f in data["fields"]
    )


def iso_utc(ts: Any) -> str:
    """``2025-01-02T03:04:05Z``: ISO 8601 in UTC, second precision."""
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell(value: Any, spec: SalesforceField) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if spec.type == "datetime":
        return iso_utc(value)
    if spec.type == "number":
        return f"{float(value):.{spec.scale or 0}f}"
    return str(value)


def render_upsert_csv(
    rows: pd.DataFrame, fields: Sequence[SalesforceField] = LEAD_SCORE_FIELDS
) -> str:
    """The upsert file's text: header of Salesforce field names, one line per lead."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([f.salesforce_field for f in fields])
    for record in rows.to_dict(orient="records"):
        writer.writerow([_cell(record.get(f.column), f) for f in fields])
    return buf.getvalue()


def write_upsert_csv(
    rows: pd.DataFrame, path: Path, fields: Sequence[SalesforceField] = LEAD_SCORE_FIELDS
) -> Path:
    """Write the upsert CSV atomically (UTF-8, LF line endings: Bulk API 2.0 defaults)."""
    return write_text(path, render_upsert_csv(rows, fields))


def validate_upsert_csv(
    path: Path, fields: Sequence[SalesforceField] = LEAD_SCORE_FIELDS
) -> list[str]:
    """Problems that would make Salesforce reject the file or a row; empty when it is good.

    Checks the header (names and order), then every cell: ids, numbers (range, precision),
    picklist values, text length and ISO 8601 UTC datetimes; and that ``Id`` is unique.
    """
    text = Path(path).read_text(encoding="utf-8")
    if "\r" in text:
        return ["line endings must be LF"]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    expected = [f.salesforce_field for f in fields]
    if header != expected:
        return [f"header {header!r} != expected {expected!r}"]
    problems: list[str] = []
    seen: set[str] = set()
    for line_no, row in enumerate(reader, start=2):
        if len(row) != len(fields):
            problems.append(f"line {line_no}: {len(row)} cells, expected {len(fields)}")
            continue
        for spec, cell in zip(fields, row, strict=True):
            problem = check_cell(cell, spec)
            if problem:
                problems.append(f"line {line_no}, {spec.salesforce_field}: {problem}")
        if row[0] in seen:
            problems.append(f"line {line_no}: duplicate Id {row[0]!r}")
        seen.add(row[0])
    return problems


def check_cell(cell: str, spec: SalesforceField) -> str | None:
    """Why ``cell`` is not a valid value for ``spec`` (None when it is)."""
    if cell == "":
        return "required value missing" if spec.required else None
    if spec.type == "id":
        return None if _ID.match(cell) else f"not a Salesforce Id: {cell!r}"
    if spec.type == "datetime":
        return None if _DATETIME_UTC.match(cell) else f"not ISO 8601 UTC: {cell!r}"
    if spec.type == "number":
        return _check_number(cell, spec)
    if spec.type == "picklist" and spec.values is not None and cell not in spec.values:
        return f"{cell!r} not in {list(spec.values)}"
    if spec.length is not None and len(cell) > spec.length:
        return f"{len(cell)} characters > {spec.length}"
    return None


def _check_number(cell: str, spec: SalesforceField) -> str | None:
    try:
        x = float(cell)
    except ValueError:
        return f"not a number: {cell!r}"
    if not math.isfinite(x):
        return f"not finite: {cell!r}"
    if spec.minimum is not None and x < spec.minimum:
        return f"{x} < {spec.minimum}"
    if spec.maximum is not None and x > spec.maximum:
        return f"{x} > {spec.maximum}"
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    if spec.scale is not None and decimals > spec.scale:
        return f"{decimals} decimals > scale {spec.scale}"
    digits = len(cell.lstrip("-").split(".")[0].lstrip("0"))
    if spec.precision is not None and digits > spec.precision - (spec.scale or 0):
        return f"{digits} integer digits exceed precision {spec.precision}"
    return None
