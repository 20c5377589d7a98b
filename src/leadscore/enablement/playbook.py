"""Enablement stage, playbook: what moves the needle in each segment, from the holdout.

Reads the scored holdout (:class:`~leadscore.enablement.evidence.Evidence`); returns per
segment (AUM tier, metro area, growth trajectory) and cohort the conversion figures with their
intervals and the recommendations they support. A recommendation is made only when the cohort
is large enough and the interval of its difference excludes zero. Writes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.catalog import Catalog
from leadscore.enablement.evidence import Evidence, Rate, difference_interval, wilson
from leadscore.enablement.settings import EnablementConfig
from leadscore.explain.drivers import display_of, format_value


@dataclass(frozen=True)
class Comparison:
    """Conversion of two groups of a cohort and the interval of their difference."""

    feature: str
    label: str
    favoured: Rate
    others: Rate
    difference: float
    low: float
    high: float
    favoured_typical: str
    others_typical: str
    supported: bool
    reason: str = ""


@dataclass(frozen=True)
class Cohort:
    """One cohort of a segment (e.g. AUM tier ``<$100M``) and what its holdout shows."""

    segment: str
    name: str
    overall: Rate
    mean_probability: float
    tier_a: Rate
    tier_c: Rate
    call_order: Comparison | None
    drivers: list[Comparison] = field(default_factory=list)
    eligible: bool = False
    why_not: str = ""

    def recommendations(self) -> list[Comparison]:
        """The comparisons that support a recommendation (empty for a small cohort)."""
        if not self.eligible:
            return []
        found = [c for c in self.drivers if c.supported]
        if self.call_order is not None and self.call_order.supported:
            found.insert(0, self.call_order)
        return found


def build_playbook(evidence: Evidence, catalog: Catalog, cfg: EnablementConfig) -> list[Cohort]:
    """Every cohort of every segment, in segment then cohort order."""
    out = []
    for segment in evidence.segments:
        keys = evidence.frame[segment].astype(object).where(evidence.frame[segment].notna())
        keys = keys.fillna("Unknown").astype(str)
        for name in sorted(keys.unique()):
            mask = (keys == name).to_numpy()
            out.append(_cohort(evidence, catalog, cfg, segment, name, mask))
    return out


def _cohort(
    evidence: Evidence,
    catalog: Catalog,
    cfg: EnablementConfig,
    segment: str,
    name: str,
    mask: np.ndarray,
) -> Cohort:
    part = evidence.frame[mask]
    contrib = evidence.contributions[mask]
    y = part["target"].to_numpy(dtype=int)
    overall = wilson(int(y.sum()), len(y), cfg.confidence)
    why_not = ""
    if overall.n < cfg.min_segment_leads or overall.conversions < cfg.min_segment_conversions:
        why_not = (
            f"{_count(overall.n, 'holdout lead')} and "
            f"{_count(overall.conversions, 'conversion')}; a "
            f"recommendation needs at least {cfg.min_segment_leads:,} leads and "
            f"{cfg.min_segment_conversions:,} conversions"
        )
    tier = part["tier"].astype(str).to_numpy()
    tier_a = _rate(y[tier == "A"], cfg)
    tier_c = _rate(y[tier == "C"], cfg)
    call_order = _compare("tier", "Tier A (Very Hot and Hot)", tier_a, tier_c, "", "", cfg)
    top = contrib.abs().mean(axis=0).sort_values(ascending=False)
    drivers = [
        _driver_comparison(f, part, contrib[f], y, catalog, cfg)
        for f in top.index[: cfg.drivers_per_segment]
    ]
    return Cohort(
        segment=segment,
        name=name,
        overall=overall,
        mean_probability=float(part["probability"].mean()) if len(part) else math.nan,
        tier_a=tier_a,
        tier_c=tier_c,
        call_order=call_order,
        drivers=drivers,
        eligible=not why_not,
        why_not=why_not,
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _rate(y: np.ndarray, cfg: EnablementConfig) -> Rate:
    return wilson(int(y.sum()), len(y), cfg.confidence)


def _driver_comparison(
    feature: str,
    part: pd.DataFrame,
    contribution: pd.Series,
    y: np.ndarray,
    catalog: Catalog,
    cfg: EnablementConfig,
) -> Comparison:
    """Leads where ``feature`` raises the score against the rest of the cohort."""
    up = (contribution > 0).to_numpy()
    label, unit = display_of(catalog, feature)
    values = part[feature] if feature in part.columns else pd.Series(np.nan, index=part.index)
    return _compare(
        feature,
        label.replace("{value}", "…"),
        _rate(y[up], cfg),
        _rate(y[~up], cfg),
        _typical(values[up], unit),
        _typical(values[~up], unit),
        cfg,
    )


def _compare(
    feature: str,
    label: str,
    favoured: Rate,
    others: Rate,
    favoured_typical: str,
    others_typical: str,
    cfg: EnablementConfig,
) -> Comparison:
    small = min(favoured.n, others.n) < cfg.min_group_leads
    if small or favoured.n == 0 or others.n == 0:
        low = high = diff = math.nan
        reason = f"a side has fewer than {cfg.min_group_leads} leads"
    else:
        diff = favoured.rate - others.rate
        low, high = difference_interval(favoured, others)
        reason = "" if low > 0 else "the interval of the difference includes zero"
    return Comparison(
        feature, label, favoured, others, diff, low, high, favoured_typical, others_typical,
        supported=not reason, reason=reason,
    )  # fmt: skip


def _typical(values: pd.Series, unit: str | None) -> str:
    """The median (numbers) or most common value (flags, categories), in words."""
    known = values.dropna()
    if known.empty:
        return "unknown"
    if unit == "flag" or known.dtype == bool:
        share = float(known.astype(float).mean())
        return f"{share:.0%} yes"
    if pd.api.types.is_numeric_dtype(known):
        return "median " + format_value(float(known.median()), unit)
    return "mostly " + str(known.astype(str).mode().iloc[0])


# ------------------------------------------------------------------------------ rendering
_SEGMENT_TITLES = {"growth_trajectory": "Growth trajectory (firm AUM growth, 1 and 5 years)"}


def recommendation_text(c: Comparison, confidence: float) -> str:
    """One recommendation, with the figure behind it and its interval."""
    from leadscore.enablement.text import difference_text, rate_text

    if c.feature == "tier":
        head = "**Call tier A first.** Tier A leads (Very Hot and Hot)"
        rest = "tier C leads (Cool and Cold)"
    else:
        head = (
            f"**Prioritise leads whose drivers show _{c.label}_ raising the score** "
            f"({c.favoured_typical}, against {c.others_typical} for the rest). They"
        )
        rest = "the rest of the segment"
    return (
        f"{head} converted at {rate_text(c.favoured, confidence)}, against "
        f"{rate_text(c.others, confidence)} for {rest}: "
        f"{difference_text(c.difference, c.low, c.high, confidence)}."
    )


def render_playbook(
    cohorts: list[Cohort], evidence: Evidence, catalog: Catalog, cfg: EnablementConfig
) -> str:
    """The playbook as Markdown: the rules, then each segment's cohorts."""
    from leadscore.enablement.guide import segment_title
    from leadscore.enablement.text import rate_text

    level = f"{100 * cfg.confidence:.0f}%"
    overall = wilson(evidence.conversions, evidence.n, cfg.confidence)
    parts = [
        f"# What moves the needle, by segment — model {evidence.version}\n\n",
        f"Every figure comes from the model's **holdout**: {evidence.n:,} leads contacted from "
        f"{evidence.holdout_start or 'the start of the holdout'}, which the model never trained "
        f"on. They converted at {rate_text(overall, cfg.confidence)}. Intervals are {level} "
        "Wilson intervals for rates and Newcombe intervals for differences.\n\n",
        f"A segment gets recommendations only with at least {cfg.min_segment_leads:,} holdout "
        f"leads and {cfg.min_segment_conversions:,} conversions; a recommendation needs "
        f"{cfg.min_group_leads:,} leads on each side and an interval of the difference above "
        "zero. Everything else is shown as a figure, not advice. Each interval holds for its own "
        "comparison; with dozens of comparisons here, expect an occasional one near zero to be "
        "chance: weigh the large, repeated effects most.\n",
    ]
    for segment in dict.fromkeys(c.segment for c in cohorts):
        title = _SEGMENT_TITLES.get(segment) or segment_title(catalog, segment)
        parts.append(f"\n## {title}\n")
        for cohort in (c for c in cohorts if c.segment == segment):
            parts.append(_cohort_md(cohort, cfg))
    return "".join(parts)


def _cohort_md(cohort: Cohort, cfg: EnablementConfig) -> str:
    from leadscore.enablement.text import difference_text, rate_text
    from leadscore.enablement.text import pct as fmt

    lines = [
        f"\n### {cohort.name}\n\n",
        f"Converted: {rate_text(cohort.overall, cfg.confidence)}; the model expected "
        f"{fmt(cohort.mean_probability)} on average.\n\n",
    ]
    recs = cohort.recommendations()
    if not cohort.eligible:
        lines.append(f"No recommendation: {cohort.why_not}.\n")
    elif not recs:
        lines.append("No recommendation: no difference in this segment is clear of noise.\n")
    for i, rec in enumerate(recs, 1):
        lines.append(f"{i}. {recommendation_text(rec, cfg.confidence)}\n")
    shown = [c for c in [cohort.call_order, *cohort.drivers] if c is not None]
    lines.append(
        "\n| comparison | raised group | rest | difference, points | typical value (raised; rest)"
        " | note |\n|---|---|---|---|---|---|\n"
    )
    for c in shown:
        note = "supports a recommendation" if c.supported and cohort.eligible else c.reason
        note = note or cohort.why_not or "–"
        lines.append(
            f"| {c.label} | {rate_text(c.favoured, cfg.confidence)} | "
            f"{rate_text(c.others, cfg.confidence)} | "
            f"{difference_text(c.difference, c.low, c.high, cfg.confidence)} | "
            f"{_typicals(c)} | {note} |\n"
        )
    return "".join(lines)


def _typicals(c: Comparison) -> str:
    if c.feature == "tier":
        return "tier A; tier C"
    return f"{c.favoured_typical}; {c.others_typical}"


def playbook_records(cohorts: list[Cohort], cfg: EnablementConfig) -> list[dict[str, object]]:
    """JSON-ready cohorts with their figures and the recommendation texts."""
    from dataclasses import asdict

    return [
        {
            "segment": c.segment,
            "cohort": c.name,
            "eligible": c.eligible,
            "why_not": c.why_not,
            "overall": {**asdict(c.overall), "rate": c.overall.rate},
            "mean_probability": c.mean_probability,
            "comparisons": [
                {**asdict(x), "favoured_rate": x.favoured.rate, "others_rate": x.others.rate}
                for x in [c.call_order, *c.drivers]
                if x is not None
            ],
            "recommendations": [
                recommendation_text(r, cfg.confidence) for r in c.recommendations()
            ],
        }
        for c in cohorts
    ]
