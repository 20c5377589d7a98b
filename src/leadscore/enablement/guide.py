"""Enablement stage, SGA guide: what each feature means, how to read it, real holdout examples.

Reads the catalog, the model's holdout evidence and the score config; returns the guide's
content (:class:`Guide`) that the Markdown and HTML templates render. No PII: examples show
features and scores, never names, ids or contact details. Writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.catalog import RAW_COLUMNS, Catalog, Feature
from leadscore.config import DEFAULT_BUCKETS, ScoreConfig
from leadscore.enablement.evidence import GROWTH_SEGMENT, Evidence, direction, wilson
from leadscore.enablement.settings import EnablementConfig
from leadscore.enablement.text import rate_text
from leadscore.explain.drivers import display_of, driver_text
from leadscore.explain.shap import lead_drivers

_SOURCE = {
    "reps": "the vendor's advisor (rep) file",
    "firms": "the vendor's RIA firm file",
    "lead": "the lead's own record (its contact time)",
    "derived": "other features (computed by leadscore)",
}
_KIND = {
    "stable": "Rarely changes between vendor deliveries.",
    "calculable": "Recomputed at the moment the lead was contacted.",
    "mutable": "Taken from the vendor delivery available when the lead was contacted.",
    "temporal": "Fixed by when the lead was contacted.",
}
_DAY_UNITS = {"isodow", "weekday", "dayofweek", "bq_dayofweek"}
_DIRECTION = {
    "higher": "Higher values raise the score.",
    "lower": "Lower values raise the score.",
    "yes": "Raises the score when true.",
    "no": "Raises the score when false.",
    "mixed": "No single direction: its effect depends on the lead's other facts.",
}


@dataclass(frozen=True)
class FeatureEntry:
    """One feature of the model as the guide explains it."""

    name: str
    label: str
    unit: str
    meaning: str
    rank: int
    share: float
    tier: int
    direction: str
    readings: list[str]
    raises_most: str
    lowers_most: str
    salesforce_field: str


@dataclass(frozen=True)
class LeadExample:
    """A real holdout lead, without anything that identifies it."""

    title: str
    score: int
    bucket: str
    tier: str
    probability: float
    outcome: str
    segments: str
    segment_values: dict[str, str]
    up: list[str]
    down: list[str]


@dataclass(frozen=True)
class Guide:
    """Everything the guide templates show."""

    version: str
    n_holdout: int
    holdout_rate: str
    holdout_start: str
    buckets: list[dict[str, str]]
    features: list[FeatureEntry]
    unused: list[str]
    high: list[LeadExample]
    low: list[LeadExample]


def segment_title(catalog: Catalog, segment: str) -> str:
    """A segment's display name (the growth cohort is not a catalog segment)."""
    if segment == GROWTH_SEGMENT:
        return "Growth trajectory"
    try:
        return catalog.segment(segment).display
    except KeyError:
        return segment


def tier_of_rank(rank: int, top_n: int) -> int:
    """Importance tier 1-3: the top ``top_n`` features cut into thirds (4 = outside)."""
    size = max(1, int(np.ceil(top_n / 3)))
    return min(4, 1 + (rank - 1) // size) if rank <= top_n else 4


def meaning(feature: Feature, catalog: Catalog) -> str:
    """What the feature is, where it comes from and when it changes."""
    first = feature.description or f"{display_of_plain(feature)}."
    return f"{first} {_origin(feature, catalog)} {_KIND[feature.kind]}"


def _origin(feature: Feature, catalog: Catalog) -> str:
    """The vendor column it copies, or the features and columns it is computed from."""
    names = list(dict.fromkeys(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", feature.sql)))
    if names == [feature.sql.strip()] and names[0] in RAW_COLUMNS:
        return f"Vendor field `{names[0]}` from {_SOURCE[feature.source]}."
    others = {f.name: display_of_plain(f) for f in catalog.features if f.name != feature.name}
    parts = [others[n] for n in names if n in others]
    parts += [f"`{n}`" for n in names if n in RAW_COLUMNS and n not in others]
    if feature.source == "lead" or not parts:
        return f"Source: {_SOURCE[feature.source]}."
    return f"Computed by leadscore from: {'; '.join(parts)}."


def display_of_plain(feature: Feature) -> str:
    """The display name as a name: a ``{value}`` phrase ("Contacted on a {value}") becomes
    "Day of the week contacted" for a day unit, else the phrase with "…" for the value."""
    if "{value}" not in feature.display:
        return feature.display
    if feature.unit.strip().lower() in _DAY_UNITS:
        return "Day of the week contacted"
    return feature.display.replace("{value}", "…")


def build_guide(
    evidence: Evidence, catalog: Catalog, score_cfg: ScoreConfig, cfg: EnablementConfig
) -> Guide:
    """The guide for one model version, from its holdout only."""
    known = {f.name for f in catalog.features}
    entries = [
        _entry(catalog.feature(name), int(rank), float(share), evidence, catalog, cfg)
        for name, rank, share in zip(
            evidence.importance["feature"].astype(str),
            evidence.importance["rank"],
            evidence.importance["share"],
            strict=True,
        )
        if name in known
    ]
    used = set(evidence.importance["feature"].astype(str))
    unused = [display_of_plain(f) for f in catalog.features if not f.pii and f.name not in used]
    overall = wilson(evidence.conversions, evidence.n, cfg.confidence)
    order = np.argsort(-evidence.frame["probability"].to_numpy(), kind="stable")
    return Guide(
        version=evidence.version,
        n_holdout=evidence.n,
        holdout_rate=rate_text(overall, cfg.confidence),
        holdout_start=evidence.holdout_start,
        buckets=_bucket_rows(evidence),
        features=entries,
        unused=unused,
        high=_examples(evidence, catalog, score_cfg, order[: cfg.examples], "High"),
        low=_examples(evidence, catalog, score_cfg, order[::-1][: cfg.examples], "Low"),
    )


def _entry(
    feature: Feature,
    rank: int,
    share: float,
    evidence: Evidence,
    catalog: Catalog,
    cfg: EnablementConfig,
) -> FeatureEntry:
    label, unit = display_of(catalog, feature.name)
    values = evidence.frame[feature.name]
    contrib = evidence.contributions[feature.name]
    way = direction(values, contrib, feature.feature_type)
    text = _DIRECTION.get(way, f"Raises the score most for {way}.")
    up, down = int(contrib.to_numpy().argmax()), int(contrib.to_numpy().argmin())
    return FeatureEntry(
        name=feature.name,
        label=display_of_plain(feature),
        unit=unit or "",
        meaning=meaning(feature, catalog),
        rank=rank,
        share=share,
        tier=tier_of_rank(rank, cfg.top_features),
        direction=text,
        readings=_readings(feature, label, unit, values),
        raises_most=_extreme(label, unit, values.iloc[up], float(contrib.iloc[up]), "+"),
        lowers_most=_extreme(label, unit, values.iloc[down], float(contrib.iloc[down]), "-"),
        salesforce_field=feature.sf_field,
    )


def _readings(feature: Feature, label: str, unit: str | None, values: pd.Series) -> list[str]:
    """How values read in a driver: the holdout's quartiles (numbers) or levels."""
    known = values.dropna()
    if known.empty:
        return [driver_text(label, unit, None)]
    if feature.feature_type == "numeric":
        picks = sorted(set(np.quantile(known.astype(float), [0.1, 0.5, 0.9]).round(4)))
        return [driver_text(label, unit, float(v)) for v in picks]
    if feature.feature_type == "bool":
        return [driver_text(label, unit, True), driver_text(label, unit, False)]
    return [driver_text(label, unit, v) for v in known.astype(str).value_counts().index[:3]]


def _extreme(label: str, unit: str | None, value: object, contrib: float, sign: str) -> str:
    if (sign == "+" and contrib <= 0) or (sign == "-" and contrib >= 0):
        return "never, on the holdout"
    if isinstance(value, np.generic):
        value = value.item()
    return f"{driver_text(label, unit, value)} ({contrib:+.2f} log-odds)"


def _bucket_rows(evidence: Evidence) -> list[dict[str, str]]:
    rows = []
    y, buckets = evidence.frame["target"], evidence.frame["bucket"].astype(str)
    for name in DEFAULT_BUCKETS.names:
        part = y[buckets == name]
        rate = wilson(int(part.sum()), len(part))
        rows.append(
            {"bucket": name, "tier": DEFAULT_BUCKETS.tier_of_bucket[name],
             "leads": f"{rate.n:,}", "rate": rate_text(rate, 0.95) if rate.n else "no leads"}
        )  # fmt: skip
    return rows


def _examples(
    evidence: Evidence, catalog: Catalog, score_cfg: ScoreConfig, picks: np.ndarray, kind: str
) -> list[LeadExample]:
    frame = evidence.frame.iloc[picks]
    contrib = evidence.contributions.iloc[picks]
    drivers = lead_drivers(contrib, frame, catalog, score_cfg)
    out = []
    records = frame.to_dict("records")
    for i, ((pos, neg, _), row) in enumerate(zip(drivers, records, strict=True)):
        values = {s: str(row[s]) for s in evidence.segments}
        segments = ", ".join(f"{segment_title(catalog, s)}: {v}" for s, v in values.items())
        out.append(
            LeadExample(
                title=f"{kind}-scoring example {i + 1}",
                score=int(row["score"]),
                bucket=str(row["bucket"]),
                tier=str(row["tier"]),
                probability=float(row["probability"]),
                outcome="became an MQL within 30 days" if row["target"] else "did not convert",
                segments=segments,
                segment_values=values,
                up=[f"{d.text} ({d.contribution:+.2f})" for d in pos],
                down=[f"{d.text} ({d.contribution:+.2f})" for d in neg],
            )
        )
    return out
