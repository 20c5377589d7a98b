"""Validate stage: leakage, class balance, schema contract, data quality, suspicious features.

Reads the training table (a frame, or the warehouse table ``build`` wrote); writes one
Markdown + JSON report per check under ``<reports_dir>/validate`` plus the schema contract,
and raises :class:`~leadscore.gates.GateFailed` for the first failed gate (rule 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from leadscore.catalog import Catalog
from leadscore.config import Settings
from leadscore.dataset import BuildResult
from leadscore.gates import GateFailed, GateResult
from leadscore.io import provenance, write_json, write_text
from leadscore.report.markdown import CheckReport, gate_lines, md_table
from leadscore.validate.checks import (
    check_class_distribution,
    check_data_quality,
    check_leakage,
    check_multicollinearity,
    check_suspicious_features,
    univariate_auc,
)
from leadscore.validate.contract import (
    ContractViolation,
    SchemaContract,
    build_contract,
    contract_problems,
    contract_violations,
    enforce_contract,
)
from leadscore.warehouse import Warehouse, tables

CONTRACT_FILE = "schema_contract.json"


@dataclass
class ValidationResult:
    """Every check's gates and report paths, and the schema contract."""

    gates: list[GateResult]
    reports: dict[str, Path]
    contract: SchemaContract
    contract_path: Path
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


def _check_contract(
    df: pd.DataFrame, catalog: Catalog, contract: SchemaContract | None
) -> tuple[CheckReport, SchemaContract]:
    contract = contract or build_contract(df, catalog)
    problems = contract_problems(df, contract)
    gate = GateResult.check("schema_contract", len(problems), 0, "==")
    rows = [(p["column"], p["problem"], p["count"], p["examples"]) for p in problems]
    cols = [
        (c.name, c.dtype, c.nullable, c.valid_range, c.expected_range, c.is_mutable)
        for c in contract.columns
    ]
    md = (
        "### Violations\n\n"
        + (md_table(["column", "problem", "rows", "examples"], rows) if rows else "None.")
        + "\n\n### Contract\n\n"
        + md_table(["column", "dtype", "nullable", "valid range", "p0.1-p99.9", "mutable"], cols)
    )
    report = CheckReport("schema_contract", "Schema contract", {"problems": problems}, md, [gate])
    if problems:
        report.error = ContractViolation(problems, None)
    return report, contract


def _write_reports(
    checks: list[CheckReport], out_dir: Path, meta: dict[str, Any]
) -> dict[str, Path]:
    paths = {}
    for check in checks:
        md_path = out_dir / f"{check.name}.md"
        check.gates = [
            GateResult(
                g.name, g.passed, g.figure, g.threshold, g.comparison, str(md_path), g.detail
            )
            for g in check.gates
        ]
        header = f"# {check.title}\n\n{gate_lines(check.gates) or '_Informational._'}\n\n"
        write_text(md_path, header + check.markdown + "\n")
        write_json(
            out_dir / f"{check.name}.json",
            {"figures": check.figures, "gates": [g.to_dict() for g in check.gates], **meta},
        )
        paths[check.name] = md_path
    return paths


def _raise_first(checks: list[CheckReport]) -> None:
    for check in checks:
        for gate in check.gates:
            if gate.passed:
                continue
            if isinstance(check.error, ContractViolation):
                raise ContractViolation(check.error.problems, gate.report_path)
            raise GateFailed(gate)


def validate_training_set(
    data: pd.DataFrame | pa.Table | Warehouse,
    cfg: Settings,
    catalog: Catalog,
    build: BuildResult | None = None,
    *,
    join: str | None = None,
    contract: SchemaContract | None = None,
    raise_on_failure: bool = True,
) -> ValidationResult:
    """Run every data check on a training table, write the reports, enforce the gates.

    Args:
        data: the training frame, or a warehouse holding ``build.table`` (``training_set``).
        build: the build's result (CRD match rate, totals); without it the CRD gate is skipped.
        join: which join produced the table (default ``build.join``, else config).
        contract: enforce this contract; default: generate it from catalog and data.
        raise_on_failure: raise for the first failed gate after all reports are written.

    Raises:
        GateFailed: a gate failed (``ContractViolation`` for the schema contract).
    """
    df = _frame(data, build)
    join = join or (build.join if build else cfg.dataset.join)
    v = cfg.validate_
    contract_check, contract = _check_contract(df, catalog, contract)
    checks = [
        check_leakage(df, join, build.n_crd_matched if build else None),
        check_class_distribution(df, catalog, v),
        contract_check,
        check_data_quality(df, catalog, v, build.crd_match_rate if build else None),
        check_suspicious_features(df, catalog, v),
        check_multicollinearity(df, catalog, v),
    ]
    out_dir = Path(cfg.project.reports_dir) / "validate"
    meta = {
        "join": join,
        "build": build.to_dict() if build else None,
        "provenance": provenance(cfg.config_hash(), cfg.project.global_seed),
    }
    reports = _write_reports(checks, out_dir, meta)
    contract_path = contract.save(out_dir / CONTRACT_FILE)
    gates = [g for c in checks for g in c.gates]
    write_json(out_dir / "summary.json", {"gates": [g.to_dict() for g in gates], **meta})
    if raise_on_failure:
        _raise_first(checks)
    return ValidationResult(
        gates, reports, contract, contract_path, {c.name: c.figures for c in checks}
    )


def _frame(data: pd.DataFrame | pa.Table | Warehouse, build: BuildResult | None) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pa.Table):
        return data.to_pandas()
    table = build.table if build else tables.TRAINING_SET
    return data.query(f"SELECT * FROM {table} ORDER BY contact_ts, lead_id").to_pandas()


__all__ = [
    "ContractViolation",
    "SchemaContract",
    "ValidationResult",
    "build_contract",
    "contract_violations",
    "enforce_contract",
    "univariate_auc",
    "validate_training_set",
]
