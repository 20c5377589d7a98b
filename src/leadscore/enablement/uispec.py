"""Enablement stage, Salesforce UI specification and a rendered mock of the Lead page.

Reads the score fields, the bucket definition, the guide's top holdout example and the
playbook; returns the specification (Markdown) and a self-contained HTML mock of a Lead page
showing the score, bucket, tier, the drivers tooltip and the segment's recommendation.
"""

from __future__ import annotations

from collections.abc import Sequence

import jinja2

from leadscore.config import DEFAULT_BUCKETS, ScoreConfig
from leadscore.enablement.guide import LeadExample
from leadscore.score.salesforce import LEAD_SCORE_FIELDS

#: Bucket colours (background, text); each pair meets WCAG AA contrast for normal text.
BUCKET_COLOURS: dict[str, tuple[str, str]] = {
    "Very Hot": ("#b42318", "#ffffff"),
    "Hot": ("#c4320a", "#ffffff"),
    "Warm": ("#fdb022", "#1d2330"),
    "Cool": ("#2e5a88", "#ffffff"),
    "Cold": ("#475467", "#ffffff"),
}
TIER_MEANING = {
    "A": "call today, before any tier B or C lead",
    "B": "call after tier A",
    "C": "call when tiers A and B are done",
}


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("leadscore.enablement", "templates"),
        autoescape=lambda name: name is not None and ".html" in name,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_ui_spec(version: str, score_cfg: ScoreConfig, segment_recs: dict[str, str]) -> str:
    """The UI specification as Markdown (fields, component, tooltip, colours, list views)."""
    fields = "".join(
        f"| `{f.salesforce_field}` | {f.type} | {f.description} |\n" for f in LEAD_SCORE_FIELDS
    )
    colours = "".join(
        f"| {b} | {DEFAULT_BUCKETS.tier_of_bucket[b]} | `{bg}` | `{fg}` |\n"
        for b, (bg, fg) in BUCKET_COLOURS.items()
    )
    tiers = "".join(f"  - **Tier {t}**: {m}.\n" for t, m in TIER_MEANING.items())
    recs = "".join(f"- {k}: {v}\n" for k, v in segment_recs.items()) or "- none yet\n"
    return _env().get_template("ui_spec.md.j2").render(
        version=version, fields=fields, colours=colours, tiers=tiers, recs=recs,
        buckets=DEFAULT_BUCKETS.describe(), n_up=score_cfg.drivers_positive,
        n_down=score_cfg.drivers_negative, max_chars=score_cfg.max_drivers_chars,
    )  # fmt: skip


def render_mock(
    version: str,
    example: LeadExample,
    recommendation: str,
    segment_label: str,
    top_n: int = 5,
) -> str:
    """A self-contained HTML Lead page for ``example`` (no PII: the name is a placeholder)."""
    bg, fg = BUCKET_COLOURS.get(example.bucket, ("#475467", "#ffffff"))
    return _env().get_template("lead_mock.html.j2").render(
        version=version, lead=example, up=_strip(example.up)[:top_n],
        down=_strip(example.down), bucket_bg=bg, bucket_fg=fg,
        tier_meaning=TIER_MEANING.get(example.tier, ""), recommendation=recommendation,
        segment_label=segment_label, colours=BUCKET_COLOURS,
    )  # fmt: skip


def _strip(items: Sequence[str]) -> list[dict[str, str]]:
    """``"text (+0.42)"`` -> text and contribution, for the tooltip's two columns."""
    out = []
    for item in items:
        text, _, rest = item.rpartition(" (")
        out.append({"text": text, "value": rest.rstrip(")")})
    return out
