"""Enablement stage, cheat sheet: the top features on one printable page (PNG and PDF).

Reads the guide's feature entries (ranked by mean |SHAP| on the holdout); writes
``cheat_sheet.png`` and ``cheat_sheet.pdf``: one US Letter landscape page, three importance
tiers in colour, and each feature's direction in words so the page still reads in grey.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from leadscore.enablement.guide import FeatureEntry
from leadscore.io import atomic_path

#: Tier colours (dark enough for white text; distinct in greyscale by the tier label too).
TIER_COLOURS = {1: "#b42318", 2: "#c4620a", 3: "#2e5a88"}
TIER_NAMES = {1: "Tier 1: the biggest movers", 2: "Tier 2: strong", 3: "Tier 3: supporting"}
PAGE = (11.0, 8.5)  # US Letter, landscape, inches
_SHORT = {
    "Higher values raise the score.": "higher → up",
    "Lower values raise the score.": "lower → up",
    "Raises the score when true.": "yes → up",
    "Raises the score when false.": "no → up",
}


def short_direction(text: str) -> str:
    """The guide's direction sentence in two or three words."""
    if text in _SHORT:
        return _SHORT[text]
    if text.startswith("Raises the score most for "):
        return f"{text.removeprefix('Raises the score most for ').rstrip('.')} → up"
    return "depends"


def render_cheat_sheet(
    entries: Sequence[FeatureEntry], version: str, n_holdout: int, top_n: int
) -> Figure:
    """The page as a matplotlib figure: two columns of ranked rows under a title."""
    rows = [e for e in entries if e.rank <= top_n]
    fig = Figure(figsize=PAGE)  # no pyplot: no global figure state
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, PAGE[0])
    ax.set_ylim(0, PAGE[1])
    ax.axis("off")
    ax.text(0.45, 8.05, "Lead score cheat sheet: what moves the score", fontsize=17,
            weight="bold", va="center")  # fmt: skip
    ax.text(0.45, 7.7, f"Model {version} · top {len(rows)} features by mean |SHAP| on "
            f"{n_holdout:,} holdout leads (never trained on) · bar = share of the model's "
            "attention", fontsize=9, color="#333333", va="center")  # fmt: skip
    _legend(ax, top_n)
    per_column = (len(rows) + 1) // 2
    for i, entry in enumerate(rows):
        col, line = divmod(i, per_column)
        _row(ax, entry, 0.45 + col * 5.3, 6.85 - line * (6.2 / max(per_column, 1)))
    ax.text(0.45, 0.3, "Read a driver as: the lead's value, then its push on the score in "
            "log-odds (+ raises, − lowers). Direction words hold on average; a lead's own "
            "drivers in Salesforce win.", fontsize=8, color="#333333")  # fmt: skip
    return fig


def _legend(ax: Axes, top_n: int) -> None:
    x, size = 0.45, -(-top_n // 3)
    for tier, name in TIER_NAMES.items():
        ranks = f"ranks {1 + (tier - 1) * size}-{min(top_n, tier * size)}"
        ax.add_patch(Rectangle((x, 7.27), 0.22, 0.18, color=TIER_COLOURS[tier]))
        ax.text(x + 0.3, 7.36, f"{name} ({ranks})", fontsize=9.5, va="center")
        x += 3.4


def _row(ax: Axes, entry: FeatureEntry, x: float, y: float) -> None:
    colour = TIER_COLOURS.get(entry.tier, "#666666")
    ax.add_patch(Rectangle((x, y - 0.13), 0.42, 0.26, color=colour))
    ax.text(x + 0.21, y, str(entry.rank), color="white", fontsize=10, weight="bold",
            ha="center", va="center")  # fmt: skip
    label = textwrap.shorten(entry.label, width=42, placeholder="…")
    ax.text(x + 0.52, y, label, fontsize=9.5, va="center")
    ax.text(x + 3.5, y, short_direction(entry.direction), fontsize=8.5, va="center",
            color="#222222")  # fmt: skip
    width = max(0.02, 0.45 * min(1.0, entry.share / 0.15))
    ax.add_patch(Rectangle((x + 4.5, y - 0.07), width, 0.14, color=colour))
    share = "<1%" if entry.share < 0.005 else f"{entry.share:.0%}"
    ax.text(x + 4.54 + width, y, share, fontsize=7.5, va="center", color="#333333")


def write_cheat_sheet(
    entries: Sequence[FeatureEntry], version: str, n_holdout: int, top_n: int, out_dir: Path
) -> tuple[Path, Path]:
    """Write ``cheat_sheet.png`` (150 dpi) and ``cheat_sheet.pdf`` (vector, one page)."""
    fig = render_cheat_sheet(entries, version, n_holdout, top_n)
    png, pdf = out_dir / "cheat_sheet.png", out_dir / "cheat_sheet.pdf"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    metadata = {"Title": f"Lead score cheat sheet {version}", "CreationDate": None}
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", metadata=metadata)
    return png, pdf
