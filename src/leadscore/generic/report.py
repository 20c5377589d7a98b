"""Generic source, report: what the run loaded, which fields were flagged with their evidence,
holdout metrics against the logistic baseline on the same split, drivers and scores.

Reads a :class:`~leadscore.generic.run.GenericRun`; writes ``report.md`` and ``run.json``. When the
split is random, every table and figure carries the warning (PNG figures are stamped).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.io import write_json, write_text
from leadscore.report.markdown import md_table

if TYPE_CHECKING:
    from leadscore.generic.leakage import FieldEvidence
    from leadscore.generic.run import GenericRun

_METRICS = ("aucpr", "aucroc", "lift_at_10pct", "brier", "ece")


def stamp_figures(folder: Path, text: str) -> list[Path]:
    """Write ``text`` across the top of every PNG in ``folder`` (in place, atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    from leadscore.io import atomic_path

    stamped = []
    for path in sorted(Path(folder).glob("*.png")):
        image = mpimg.imread(path)
        height, width = image.shape[:2]
        fig = plt.figure(figsize=(width / 100, height / 100 + 0.5), dpi=100)
        fig.figimage(image, 0, 0)
        fig.text(0.01, 0.99, "WARNING - " + text, va="top", fontsize=7, color="#b00020", wrap=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        stamped.append(path)
    return stamped


def _f(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _evidence_rows(fields: list[FieldEvidence]) -> list[list[Any]]:
    rows = []
    for f in fields:
        if f.flagged:
            verdict = "FLAGGED: " + "; ".join(f.reasons)
        elif f.calendar_proxy:
            verdict = "calendar proxy (strength comes from time): not flagged"
        else:
            verdict = "-"
        rows.append(
            [f.field, f.kind, _f(f.missing_share), _f(f.auc_pooled), _f(f.auc_within),
             _f(f.share_blocks_strong), _f(f.time_auc), _f(f.presence_auc_within),
             _f(f.after_event_share), verdict]
        )  # fmt: skip
    return rows


def _block_lines(fields: list[FieldEvidence]) -> list[str]:
    """Per-block AUCs of the flagged fields and the calendar proxies (the evidence in full)."""
    lines = []
    for f in fields:
        if f.flagged or f.calendar_proxy:
            blocks = ", ".join(_f(a) for a in f.block_aucs) or "no time blocks"
            lines.append(f"- {f.field}: AUC per time block (oldest first) {blocks}")
    return lines


def _metrics_table(metrics: dict[str, Any]) -> str:
    ho, base = metrics.get("holdout", {}), metrics.get("baseline_holdout", {})
    rows = [[m, _f(ho.get(m)), _f(base.get(m))] for m in _METRICS]
    return md_table(["holdout metric", "XGBoost (calibrated)", "logistic baseline"], rows)


def render_generic_report(run: GenericRun, warning: str) -> str:
    """The Markdown report of a generic run."""
    banner = "" if run.has_time else f"> **WARNING - {warning}.**\n\n"
    lines = [
        "# leadscore on a CRM export",
        "",
        banner + f"as_of {run.as_of.isoformat()}; split: "
        + ("time-ordered with a gap (blocked CV, latest block held out)" if run.has_time
           else "**random** (no usable time column)"),
        "",
        f"Training rows {run.n_rows:,} ({run.n_positives:,} positives); not in training: "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(run.excluded.items())) or "none"),
        "",
        *[f"- warning: {w}" for w in run.warnings],
        "",
        "## Leakage: fields recorded after the outcome",
        "",
        banner + "AUCs are univariate and cross-fitted (0.5 = no signal). *within* = strength "
        "inside each time block of an encoding learned on the other blocks; *time* = how well the "
        "field tells early from late leads; *presence* = filled-in vs blank, within blocks.",
        "",
        f"Flagged: {', '.join(run.leakage.flagged()) or 'none'}. "
        f"Dropped from the model: {', '.join(run.dropped) or 'none'}. "
        f"Calendar proxies (kept): {', '.join(run.leakage.calendar_proxies()) or 'none'}.",
        "",
        md_table(
            ["field", "kind", "missing", "AUC pooled", "AUC within", "blocks strong", "time",
             "presence", "dated after event", "verdict"],
            _evidence_rows(run.leakage.fields),
        ),
        "",
        *_block_lines(run.leakage.fields),
        "",
        "## Gates",
        "",
        *[f"- {'PASS' if g.passed else 'FAIL'} {g.name}: {_f(g.figure)} {g.comparison} "
          f"{_f(g.threshold)} {g.detail}" for g in run.gates],
    ]  # fmt: skip
    if run.metrics:
        lines += ["", "## Holdout: model vs logistic baseline (same split)", "", banner]
        lines += [_metrics_table(run.metrics), ""]
        if run.report_dir is not None:
            lines += [banner + f"Figures (PR/ROC, reliability, gains): `{run.report_dir}`", ""]
        lines += [f"Model version {run.version}; bundle {run.bundle_path}; "
                  f"leads scored (not yet matured): {run.n_scored:,}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_generic_report(run: GenericRun, out_dir: Path, warning: str) -> Path:
    """Write ``report.md`` and ``run.json`` into ``out_dir``; return the report's path."""
    summary = {
        "as_of": run.as_of.isoformat(),
        "has_time": run.has_time,
        "split": "time" if run.has_time else "random",
        "warnings": run.warnings,
        "n_rows": run.n_rows,
        "n_positives": run.n_positives,
        "excluded": run.excluded,
        "flagged": run.leakage.flagged(),
        "dropped": run.dropped,
        "calendar_proxies": run.leakage.calendar_proxies(),
        "gates": [g.to_dict() for g in run.gates],
        "holdout": {k: run.metrics.get("holdout", {}).get(k) for k in _METRICS},
        "baseline_holdout": {k: run.metrics.get("baseline_holdout", {}).get(k) for k in _METRICS},
        "version": run.version,
        "n_scored": run.n_scored,
    }
    write_json(Path(out_dir) / "run.json", summary)
    return write_text(Path(out_dir) / "report.md", render_generic_report(run, warning))
