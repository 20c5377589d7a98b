"""Experiment stage, the report page: Markdown, one plot, and an HTML section for the main report.

Reads the plan, monitoring and analysis results (objects); writes ``report.md``, ``looks.png``
and ``section.html`` (a self-contained ``<section>`` with the plot embedded) atomically.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from leadscore.config import ExperimentConfig
from leadscore.experiment.analyze import Analysis
from leadscore.experiment.monitor import MonitorResult
from leadscore.experiment.power import PowerPlan
from leadscore.experiment.sequential import obf_boundaries
from leadscore.io import atomic_path, write_text
from leadscore.report.markdown import md_table

PLOT_FILE, REPORT_FILE, SECTION_FILE = "looks.png", "report.md", "section.html"
TRADE_OFF = (
    "Assigning leads (the default) splits every SGA's queue between arms: cheap in sample size,"
    " but an SGA who sees scores on half the queue may change how they call the other half"
    " (contamination), which biases the lift towards zero. Assigning SGAs avoids that, at the"
    " price of the design effect: outcomes of one SGA's leads are correlated, and with few"
    " SGAs the test needs many more leads, or cannot reach the power at all."
)


def plot_looks(analysis: Analysis, exp: ExperimentConfig, path: Path) -> Path:
    """z at each look against the O'Brien-Fleming boundary, and lift by segment with its CI."""
    fig = Figure(figsize=(10, 4))
    ax_z, ax_seg = fig.subplots(1, 2)
    bounds = obf_boundaries(exp.looks, exp.alpha)
    ax_z.plot(bounds.fractions, bounds.z, "s--", color="firebrick", label="boundary (OBF)")
    ax_z.plot(bounds.fractions, [-z for z in bounds.z], "s--", color="firebrick")
    done = [lk for lk in analysis.looks if lk.at is not None]
    ax_z.plot([lk.fraction for lk in done], [lk.z for lk in done], "o-", label="observed z")
    ax_z.axvline(analysis.information_fraction, color="grey", ls=":", label="information now")
    ax_z.axhline(0, color="grey", lw=0.5)
    ax_z.set(xlabel="information fraction", ylabel="z", title="Interim looks", xlim=(0, 1.05))
    ax_z.legend(loc="center left", fontsize=8)
    segs = analysis.segments
    y = np.arange(len(segs) + 1)
    # ratios treatment / control on a log axis: a small segment's wide interval stays readable
    ratio = 1 + np.array([analysis.lift] + [s.lift for s in segs])
    low = 1 + np.array([analysis.ci_low] + [s.ci_low for s in segs])
    high = 1 + np.array([analysis.ci_high] + [s.ci_high for s in segs])
    ok = np.isfinite(ratio) & (low > 0)
    err = np.array([ratio - low, high - ratio])[:, ok]
    ax_seg.errorbar(ratio[ok], y[ok], xerr=err, fmt="o", capsize=3)
    ax_seg.set_xscale("log")
    ax_seg.set_yticks(y, ["all"] + [s.segment for s in segs])
    ax_seg.axvline(1, color="grey", lw=0.5)
    ax_seg.axvline(1 + exp.target_lift, color="green", ls="--", label="target lift")
    ax_seg.set(xlabel="treatment / control, MQLs per 100 dials (95% CI)", title="By segment")
    ax_seg.legend(fontsize=8)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    return path


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.4g}"
    return "–" if value is None else str(value)


Rows = list[list[object]]


def tables(
    plan: PowerPlan, monitor: MonitorResult, analysis: Analysis
) -> list[tuple[str, list[str], Rows]]:
    """The page's tables: (title, headers, rows)."""
    designs: Rows = [[d.unit, f"{d.adoption:.0%}", d.leads_per_arm, d.weeks, d.design_effect]
               for d in plan.designs]  # fmt: skip
    arms: Rows = [[a.arm, a.leads, a.matured_leads, a.dials, a.mqls, a.mqls_per_100_dials,
             f"{a.ci_low:.3f} – {a.ci_high:.3f}"] for a in monitor.arms]  # fmt: skip
    balance: Rows = [[b["covariate"], b["treatment_mean"], b["control_mean"], b["std_diff"],
                "yes" if b["flagged"] else ""] for b in monitor.balance]  # fmt: skip
    looks: Rows = [[lk.index + 1, lk.fraction, lk.at or "pending", lk.n_leads, lk.lift, lk.z,
              lk.boundary_z, "yes" if lk.crossed else ""] for lk in analysis.looks]  # fmt: skip
    segments: Rows = [
        [s.segment, s.n_leads, s.treatment_per_100, s.control_per_100, s.lift,
         f"{s.ci_low} – {s.ci_high}", s.p_value]
        for s in analysis.segments
    ]  # fmt: skip
    return [
        ("Plan (ratio KPI)", ["unit", "adoption", "leads/arm", "weeks", "design effect"], designs),
        ("Arms (interval on matured leads)",
         ["arm", "leads", "matured", "dials", "MQLs", "MQLs/100 dials", "95% CI"], arms),
        ("Balance (standardized differences, flag > 0.1)",
         ["covariate", "treatment", "control", "std diff", "flag"], balance),
        ("Looks (Lan-DeMets O'Brien-Fleming)",
         ["look", "fraction", "at", "leads", "lift", "z", "boundary", "crossed"], looks),
        ("Per segment (AUM tier)",
         ["segment", "leads", "treatment/100", "control/100", "lift", "95% CI", "p"], segments),
    ]  # fmt: skip


def _headline(plan: PowerPlan, monitor: MonitorResult, analysis: Analysis) -> list[str]:
    srm = monitor.srm
    return [
        f"**Verdict:** {analysis.verdict}",
        f"Lift {analysis.lift:+.1%} (95% CI {analysis.ci_low:+.1%} to {analysis.ci_high:+.1%}),"
        f" p = {_fmt(analysis.p_value)}; status {analysis.status}.",
        f"Plan: {plan.verdict}",
        f"Sample ratio: {srm.counts} (chi-square p = {srm.p_value:.3g}"
        f"{', MISMATCH' if srm.flagged else ''}). Adoption: {monitor.adoption}.",
    ]


def write_report(
    out_dir: Path, exp: ExperimentConfig, plan: PowerPlan, monitor: MonitorResult,
    analysis: Analysis,
) -> Path:  # fmt: skip
    """Write ``report.md``, ``looks.png`` and ``section.html``; return the Markdown path."""
    plot = plot_looks(analysis, exp, out_dir / PLOT_FILE)
    parts = ["# A/B test: score-ordered calling", ""]
    for line in _headline(plan, monitor, analysis):
        parts += [line, ""]
    for title, headers, rows in tables(plan, monitor, analysis):
        parts += [f"## {title}", "", md_table(headers, [[_fmt(c) for c in r] for r in rows]), ""]
    parts += ["## Unit of assignment", "", TRADE_OFF, "", f"![looks]({PLOT_FILE})", ""]
    parts += ["Method: " + plan.method, ""]
    write_text(out_dir / SECTION_FILE, html_section(plan, monitor, analysis, plot))
    return write_text(out_dir / REPORT_FILE, "\n".join(parts))


def html_section(plan: PowerPlan, monitor: MonitorResult, analysis: Analysis, plot: Path) -> str:
    """A ``<section id="experiment">`` fragment for the main HTML report (plot embedded)."""
    esc = html.escape
    out = ['<section id="experiment">', "<h2>A/B test: score-ordered calling</h2>"]
    out += [f"<p>{esc(line.replace('**', ''))}</p>" for line in _headline(plan, monitor, analysis)]
    for title, headers, rows in tables(plan, monitor, analysis):
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows
        )
        out.append(f"<h3>{esc(title)}</h3><table><tr>{head}</tr>{body}</table>")
    data = base64.b64encode(plot.read_bytes()).decode("ascii")
    out += [f'<img alt="interim looks and lift by segment" src="data:image/png;base64,{data}">']
    out += [f"<p>{esc(TRADE_OFF)}</p>", "</section>"]
    return "\n".join(out) + "\n"
