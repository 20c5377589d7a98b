"""Enablement stage, Salesforce field mapping: every model feature and every score field.

Reads the catalog, the model's features and importance, and the score fields the upsert file
writes; returns the rows of ``salesforce_field_mapping.csv`` (field name, type, update frequency,
visibility). Writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from leadscore.catalog import Catalog, Feature
from leadscore.score.salesforce import LEAD_SCORE_FIELDS, SalesforceField

#: How often a feature's value can change, by catalog kind.
UPDATE_FREQUENCY = {
    "mutable": "quarterly: each vendor vintage (the one available at contact time)",
    "stable": "on each vendor vintage (rarely changes)",
    "calculable": "recomputed at contact time from raw dates (and at every re-score)",
    "temporal": "set once, at contact time",
}
SCORE_FREQUENCY = "daily: each scoring run (leadscore daily / score)"
_SF_TYPES = {"int": "Number(18, 0)", "float": "Number(16, 4)", "bool": "Checkbox",
             "category": "Text(80)"}  # fmt: skip
_SGA_SCORE_FIELDS = {"score", "bucket", "tier", "drivers_text"}


@dataclass(frozen=True)
class FieldRow:
    """One row of the mapping."""

    salesforce_object: str
    salesforce_field: str
    kind: str  # score | feature
    source_column: str
    display_name: str
    salesforce_type: str
    unit: str
    update_frequency: str
    visibility: str
    used_by_model: bool
    importance_rank: int | None
    description: str


def field_mapping_rows(
    catalog: Catalog, model_features: Sequence[str], ranks: dict[str, int], top_n: int
) -> list[FieldRow]:
    """Score fields first (in upsert-file order), then every non-PII catalog feature.

    A feature in the model's top ``top_n`` by mean |SHAP| is visible to SGAs (it appears in
    the guide, the cheat sheet and drivers); other model features are for reporting; catalog
    features the model did not select are marked so.
    """
    rows = [_score_row(f) for f in LEAD_SCORE_FIELDS]
    used = set(model_features)
    for feature in catalog.features:
        if not feature.pii:
            rows.append(
                _feature_row(feature, feature.name in used, ranks.get(feature.name), top_n)
            )
    return rows


def _score_row(spec: SalesforceField) -> FieldRow:
    sga = spec.column in _SGA_SCORE_FIELDS
    return FieldRow(
        salesforce_object="Lead",
        salesforce_field=spec.salesforce_field,
        kind="key" if spec.type == "id" else "score",
        source_column=spec.column,
        display_name=spec.description,
        salesforce_type=_score_type(spec),
        unit="",
        update_frequency="on lead creation" if spec.type == "id" else SCORE_FREQUENCY,
        visibility="SGA: Lead page score component" if sga else "admin and reports only",
        used_by_model=False,
        importance_rank=None,
        description=spec.description,
    )


def _score_type(spec: SalesforceField) -> str:
    if spec.type == "number":
        return f"Number({spec.precision}, {spec.scale})"
    if spec.type == "picklist":
        return f"Picklist ({', '.join(spec.values or ())})"
    if spec.type == "text":
        return f"Text({spec.length})"
    if spec.type == "datetime":
        return "DateTime"
    return "Id"


def _feature_row(feature: Feature, used: bool, rank: int | None, top_n: int) -> FieldRow:
    if not used:
        visibility = "hidden: not used by this model version"
    elif rank is not None and rank <= top_n:
        visibility = f"SGA: guide, cheat sheet and drivers (top {top_n})"
    else:
        visibility = "reports only (model input outside the top features)"
    return FieldRow(
        salesforce_object="Lead",
        salesforce_field=feature.sf_field,
        kind="feature",
        source_column=feature.name,
        display_name=feature.display.replace("{value}", "…"),
        salesforce_type=_SF_TYPES[feature.dtype],
        unit=feature.unit,
        update_frequency=UPDATE_FREQUENCY[feature.kind],
        visibility=visibility,
        used_by_model=used,
        importance_rank=rank if used else None,
        description=feature.description,
    )


def mapping_frame(rows: Sequence[FieldRow]) -> pd.DataFrame:
    """The rows as a table with nullable integer ranks (CSV-ready)."""
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame["importance_rank"] = frame["importance_rank"].astype("Int64")
    return frame
