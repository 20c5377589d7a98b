"""The one-page HTML report: verdict first, then data, model, drivers, scores, provenance.

Reads the stages' machine-readable results from the reports folder (and a sample of scored
leads from the warehouse), renders ``report.html.j2`` with every image embedded as base64, so
the page opens with no network and no sibling files.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from leadscore.config import DEFAULT_BUCKETS, Settings
from leadscore.io import write_text
from leadscore.warehouse import tables

REPORT_FILE = "report.html"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _image(path: Path) -> str | None:
    """A PNG as a data: URI (None when the stage did not produce it)."""
    if not path.exists():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def load_model_figures(cfg: Settings) -> dict[str, Any]:
    """The headline figures of the last run (for summary.json and the report's verdict)."""
    reports = cfg.project.reports_dir
    out: dict[str, Any] = {}
    leakage = _read_json(reports / "validate" / "leakage.json")
    if leakage:
        out["leakage_records_matched"] = _find(leakage, "leakage_records_matched")
    train = _read_json(reports / "train" / "latest.json")
    if train:
        metrics = train["metrics"]
        holdout = metrics["holdout"]
        out.update(
            model_version=train["version"],
            holdout_aucpr=holdout["aucpr"],
            holdout_auc_roc=holdout["aucroc"],
            ece_overall=holdout["ece"],
            ece_by_tier={t: v["ece"] for t, v in holdout.get("ece_by_tier", {}).items()},
            gates={g["name"]: g["passed"] for g in train["gates"]},
        )
        if metrics.get("oracle"):
            out["oracle_aucpr"] = metrics["oracle"]["aucpr"]
            out["model_aucpr_fraction_of_oracle"] = metrics["oracle"]["model_aucpr_fraction"]
    validation = _read_json(reports / "validate" / "summary.json")
    if validation:
        data_gates = {g["name"]: g["passed"] for g in validation["gates"]}
        out["gates"] = {**data_gates, **out.get("gates", {})}
    return out


def _find(obj: Any, key: str) -> Any:
    """First value of ``key`` anywhere in a nested JSON document."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for value in obj.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for value in obj:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _all_gates(reports: Path, train: dict[str, Any] | None) -> list[dict[str, Any]]:
    gates: list[dict[str, Any]] = []
    validation = _read_json(reports / "validate" / "summary.json")
    for gate in (validation or {}).get("gates", []):
        gates.append({**gate, "stage": "data"})
    for gate in (train or {}).get("gates", []):
        gates.append({**gate, "stage": "model"})
    return gates


def _scored_sample(cfg: Settings, n: int = 15) -> list[dict[str, Any]]:
    """The top-scored leads of the last run, with their driver texts."""
    from leadscore.warehouse import open_warehouse

    wh = open_warehouse(cfg.warehouse)
    try:
        if not wh.table_exists(tables.LEAD_SCORES):
            return []
        df = wh.query(
            f"SELECT lead_id, score, probability, bucket, tier, drivers_text "
            f"FROM {tables.LEAD_SCORES} ORDER BY probability DESC, lead_id LIMIT {n}"
        ).to_pandas()
    finally:
        wh.close()
    return list(df.to_dict("records"))


def _registry(cfg: Settings) -> list[dict[str, Any]]:
    """The model registry now: each version and its status."""
    from leadscore.registry.runner import registry_rows

    return registry_rows(cfg)


def _latest_scoring_run(reports: Path) -> dict[str, Any] | None:
    runs = sorted((reports / "score").glob("scoring_run_*.json"))
    return _read_json(runs[-1]) if runs else None


def _importance(reports: Path, n: int = 15) -> list[dict[str, Any]]:
    path = reports / "explain" / "shap_importance.csv"
    if not path.exists():
        return []
    return [
        {str(k): v for k, v in row.items()} for row in pd.read_csv(path).head(n).to_dict("records")
    ]


def build_context(cfg: Settings) -> dict[str, Any]:
    """Everything the template shows, gathered from the stages' result files."""
    reports = cfg.project.reports_dir
    train = _read_json(reports / "train" / "latest.json")
    train_dir = Path(train["report_dir"]) if train else reports / "train"
    gates = _all_gates(reports, train)
    failed = [g for g in gates if not g["passed"]]
    return {
        "figures": load_model_figures(cfg),
        "verdict": "SHIP" if gates and not failed else ("STOP" if failed else "INCOMPLETE"),
        "failed": failed,
        "gates": gates,
        "ingest": _read_json(reports / "ingest" / "quality.json"),
        "build": _read_json(reports / "build" / "build_asof.json"),
        "build_quarter": _read_json(reports / "build" / "build_quarter.json"),
        "leakage": _read_json(reports / "validate" / "leakage.json"),
        "classes": _read_json(reports / "validate" / "class_distribution.json"),
        "train": train,
        "images": {
            name: _image(train_dir / f"{name}.png")
            for name in (
                "pr_roc",
                "reliability",
                "gains",
                "cv_folds",
                "strategies",
                "score_distribution",
            )
        }
        | {"shap": _image(reports / "explain" / "shap_summary.png")},
        "importance": _importance(reports),
        "comparison": _read_json(reports / "explain" / "reference_comparison.json"),
        "cohorts": _read_json(reports / "explain" / "cohort_analysis.json"),
        "scoring": _latest_scoring_run(reports),
        "refresh": _read_json(reports / "refresh" / "latest.json"),
        "registry": _registry(cfg),
        "monitoring": _read_json(reports / "monitor" / "monitoring_section.json"),
        "monitoring_image": _image(reports / "monitor" / "monitoring.png"),
        "sample": _scored_sample(cfg),
        "provenance": (train or {}).get("provenance"),
        "config_hash": cfg.config_hash(),
        "min_aucpr": cfg.gates.min_aucpr,
        "bucket_names": DEFAULT_BUCKETS.names,
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return "–"
    return f"{100 * float(value):.{digits}f}%"


def render_html(context: dict[str, Any]) -> str:
    """Render the report template with ``context``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("leadscore", "report/templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    env.filters["pct"] = _pct
    return env.get_template("report.html.j2").render(**context)


def render_report(cfg: Settings) -> Path:
    """Write ``reports/report.html`` (self-contained) and return its path."""
    path = cfg.project.reports_dir / REPORT_FILE
    write_text(path, render_html(build_context(cfg)))
    return path
