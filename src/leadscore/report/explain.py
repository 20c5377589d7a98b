"""Explain stage, for people: the SHAP summary plot and the Markdown of the reference
comparison and the cohort analysis.

Reads results computed by ``leadscore.explain.shap``; writes nothing (the PNG is returned as
bytes, and ``explain_model`` writes it).
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from leadscore.catalog import Catalog
    from leadscore.explain.shap import ReferenceComparison


def render_shap_summary(folded: pd.DataFrame, values: pd.DataFrame, top: list[str]) -> bytes:
    """PNG of a beeswarm-style summary of the features ``top`` (one row each, the first on
    top): each dot is a lead's SHAP value, coloured by the lead's feature value (low = blue,
    high = red, grey when not numeric or missing). Every row of ``folded`` is a dot: the
    caller picks the rows (``explain_model`` a seeded sample, ``plot_rows``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)  # the dots' jitter; fixed for identical plots
    # no pyplot: no global figure state, so the plot may be drawn on any thread
    fig = Figure(figsize=(9, 0.32 * max(len(top), 4) + 1.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    xs, ys, colours = [], [], []  # one collection for every dot: drawn in one pass
    for pos, feature in enumerate(reversed(top)):
        xs.append(folded[feature].to_numpy())
        colours.append(_colour_values(values, feature))
        ys.append(pos + rng.uniform(-0.3, 0.3, size=len(folded)))
    if top:
        # dots 4 points across with no outline (an outline is a second pass over every dot)
        ax.scatter(np.concatenate(xs), np.concatenate(ys), c=np.concatenate(colours),
                   cmap="coolwarm", vmin=0, vmax=1, s=16, linewidths=0, alpha=0.7)  # fmt: skip
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels(list(reversed(top)), fontsize=8)
    ax.set_xlabel("SHAP value (contribution to log-odds of MQL in 30 days)")
    ax.set_title(f"Top {len(top)} features by mean |SHAP|")
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, and savefig then draws the whole
    # figure once more just to run it; the layout is done, so no engine
    fig.set_layout_engine(None)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=120, metadata={"Software": None})
    return out.getvalue()


def _colour_values(values: pd.DataFrame, feature: str) -> np.ndarray:
    """Percentile rank of each value in [0, 1]; 0.5 (grey-ish middle) when not numeric."""
    if feature not in values.columns:
        return np.full(len(values), 0.5)
    col = pd.to_numeric(values[feature].astype(object), errors="coerce")
    ranked = col.rank(pct=True).to_numpy(dtype=float)
    return np.where(np.isnan(ranked), 0.5, ranked)


def render_comparison_markdown(
    cmp: ReferenceComparison, model_version: str, reference_name: str
) -> str:
    """Markdown: did the new model find the same truth as the previous one?"""
    rho = "n/a (fewer than 3 shared features)" if cmp.spearman is None else f"{cmp.spearman:.3f}"
    verdict = (
        f"**Yes** — `{cmp.previous_top}` is still #1."
        if cmp.previous_top_still_top
        else f"**No** — `{cmp.previous_top}` is now "
        + (f"#{cmp.previous_top_rank_now}" if cmp.previous_top_rank_now else "not in the model")
        + f"; our #1 is `{cmp.our_top}`."
    )
    lines = [
        f"# Feature importance vs. the previous model ({reference_name})",
        "",
        f"Model `{model_version}`: mean |SHAP| (exact TreeSHAP, every row) against the "
        f"previous model's recorded ranking ({cmp.n_reference} features).",
        "",
        f"- Previous #1 still #1? {verdict}",
        f"- Overlap in the top 10: {len(cmp.overlap_top10)} of {cmp.top10_size}"
        + _names(cmp.overlap_top10),
        f"- Overlap in the top 25: {len(cmp.overlap_top25)} of {cmp.top25_size}"
        + _names(cmp.overlap_top25),
        f"- Spearman rank correlation over {cmp.n_shared} shared features: {rho}",
        f"- In the previous ranking but not in this model: {_list(cmp.missing_from_ours)}",
        f"- New in our top 25: {_list(cmp.new_in_our_top25)}",
        "",
        "## Rose most",
        "",
        *_moves_table(cmp.rose),
        "",
        "## Fell most",
        "",
        *_moves_table(cmp.fell),
        "",
        "## All shared features",
        "",
        *_moves_table(sorted(cmp.shared, key=lambda m: m["reference_rank"])),
        "",
        "Ranks are positions in each model's own list; a gain ranking and a SHAP ranking "
        "measure different things, so read moves of a few places as noise.",
    ]
    return "\n".join(lines) + "\n"


def _names(names: list[str]) -> str:
    return f" ({', '.join(f'`{n}`' for n in names)})" if names else ""


def _list(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) if names else "none"


def _moves_table(moves: list[dict[str, Any]]) -> list[str]:
    if not moves:
        return ["(none)"]
    out = ["| feature | previous rank | our rank | change |", "|---|---:|---:|---:|"]
    out += [
        f"| `{m['feature']}` | {m['reference_rank']} | {m['our_rank']} | {m['change']:+d} |"
        for m in moves
    ]
    return out


def render_cohort_markdown(
    cohorts: dict[str, pd.DataFrame], model_version: str, catalog: Catalog, rows_note: str = ""
) -> str:
    """Markdown: conversion, mean score and top drivers per cohort (segment titles from the
    catalog's display names)."""
    titles = {s.name: f"By {s.display[:1].lower()}{s.display[1:]}" for s in catalog.segments}
    titles["growth_trajectory"] = "By growth trajectory"
    lines = [
        f"# Cohort analysis — model `{model_version}`",
        "",
        "Conversion = MQL within 30 days of contact (observed); mean probability is the "
        "calibrated model probability; top drivers are the features with the largest mean "
        "positive SHAP contribution in the cohort."
        + (f" Rows: {rows_note}." if rows_note else ""),
    ]
    for name, table in cohorts.items():
        lines += ["", f"## {titles.get(name, name)}", ""]
        lines += [
            "| cohort | leads | conversions | conversion | mean probability | mean score "
            "| top drivers |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for row in table.to_dict(orient="records"):
            lines.append(
                f"| {row['cohort']} | {row['n']} | {_int(row['conversions'])} "
                f"| {_pct(row['conversion_rate'])} | {_pct(row['mean_probability'])} "
                f"| {row['mean_score']:.1f} | {row['top_drivers'] or '-'} |"
            )
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def _int(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return str(int(x))
