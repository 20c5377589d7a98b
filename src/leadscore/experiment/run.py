"""Experiment stage runner: each subcommand with its I/O (warehouse, reports folder).

Reads the warehouse named by the settings; writes ``<reports>/experiment/{plan,monitor,
analysis,simulation}.json`` and the report page (``report.md``, ``looks.png``,
``section.html``). The library functions it calls stay pure.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.experiment.analyze import Analysis, analyze_experiment
from leadscore.experiment.assign import AssignResult, assign_new, lead_strata
from leadscore.experiment.kpi import lead_outcomes
from leadscore.experiment.monitor import MonitorResult, experiment_frame, monitor_experiment
from leadscore.experiment.power import PowerPlan, plan_experiment
from leadscore.experiment.simulate import SimConfig, SimSummary, simulate_many
from leadscore.io import provenance, write_json
from leadscore.warehouse import Warehouse, warehouse_session


def reports_dir(cfg: Settings) -> Path:
    """Where the experiment's results and report page go."""
    return cfg.project.reports_dir / "experiment"


_warehouse = warehouse_session  # the project's warehouse for a ``with`` block


def _write(cfg: Settings, name: str, payload: dict[str, object]) -> Path:
    payload = {**payload, "provenance": provenance(cfg.config_hash(), cfg.project.global_seed)}
    return write_json(reports_dir(cfg) / name, payload)


def plan_from_warehouse(wh: Warehouse, cfg: Settings, as_of: datetime) -> PowerPlan:
    """The power plan from the data known at the experiment start (or ``as_of``)."""
    known_at = min(as_of, cfg.experiment.start) if cfg.experiment.start else as_of
    return plan_experiment(lead_outcomes(wh, cfg.crm, known_at), known_at, cfg.experiment)


def stage_plan(cfg: Settings, as_of: datetime) -> PowerPlan:
    """``experiment plan``: measure, size, write ``plan.json``."""
    with _warehouse(cfg) as wh:
        plan = plan_from_warehouse(wh, cfg, as_of)
    _write(cfg, "plan.json", {"as_of": as_of.isoformat(), **plan.to_dict()})
    return plan


def stage_assign(cfg: Settings, as_of: datetime) -> AssignResult:
    """``experiment assign``: arms for every unit contacted by ``as_of`` without one."""
    with _warehouse(cfg) as wh:
        return assign_new(wh, cfg, as_of)


def stage_monitor(cfg: Settings, as_of: datetime) -> MonitorResult:
    """``experiment monitor``: today's figures, written to ``monitor.json``."""
    with _warehouse(cfg) as wh:
        result = monitor_experiment(wh, cfg, as_of)
    _write(cfg, "monitor.json", result.to_dict())
    return result


def planned_leads_per_arm(wh: Warehouse, cfg: Settings, as_of: datetime) -> int:
    """The configured size, else the plan's for the configured unit and adoption."""
    exp = cfg.experiment
    if exp.planned_leads_per_arm:
        return exp.planned_leads_per_arm
    design = plan_from_warehouse(wh, cfg, as_of).design(exp.unit, exp.adoption)
    if design.leads_per_arm is None:
        raise ValueError(
            f"the {exp.unit}-level design cannot reach the power; set"
            " experiment.planned_leads_per_arm"
        )
    return design.leads_per_arm


def analyze_from_warehouse(wh: Warehouse, cfg: Settings, as_of: datetime) -> Analysis:
    """Looks and final analysis of the configured experiment as of ``as_of``."""
    exp = cfg.experiment
    frame = experiment_frame(wh, cfg, as_of)
    if frame.empty:
        raise ValueError(f"experiment {exp.experiment_id} has no assigned leads by {as_of}")
    tiers = lead_strata(wh, cfg, frame["lead_id"].astype(str).tolist(), as_of)
    frame["aum_tier"] = tiers["stratum"].to_numpy()
    return analyze_experiment(
        frame,
        planned_leads_per_arm(wh, cfg, as_of),
        exp.looks,
        exp.alpha,
        exp.target_lift,
        cluster_col="owner_id" if exp.unit == "sga" else None,
        segment_col="aum_tier",
    )


def stage_analyze(cfg: Settings, as_of: datetime) -> tuple[Analysis, Path]:
    """``experiment analyze``: write ``analysis.json`` and the report page; return the page."""
    from leadscore.experiment.report import write_report

    with _warehouse(cfg) as wh:
        analysis = analyze_from_warehouse(wh, cfg, as_of)
        plan = plan_from_warehouse(wh, cfg, as_of)
        monitor = monitor_experiment(wh, cfg, as_of)
    _write(cfg, "analysis.json", {"as_of": as_of.isoformat(), **analysis.to_dict()})
    page = write_report(reports_dir(cfg), cfg.experiment, plan, monitor, analysis)
    return analysis, page


def load_truth_probabilities(path: Path | None) -> np.ndarray | None:
    """True probabilities from the synthetic world's truth file (None: the simulator draws)."""
    if path is None:
        return None
    values = pd.read_csv(path, usecols=["true_probability"])["true_probability"].dropna()
    return values.to_numpy(float)


def stage_simulate(
    cfg: Settings, sim: SimConfig, n_ab: int, n_aa: int, truth: Path | None = None
) -> SimSummary:
    """``experiment simulate``: coverage and A/A false-positive rate over seeds."""
    exp = cfg.experiment
    summary = simulate_many(sim, n_ab, n_aa, exp.looks, exp.alpha, load_truth_probabilities(truth))
    _write(cfg, "simulation.json", summary.to_dict())
    return summary
