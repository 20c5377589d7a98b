"""Monitoring stage, production-readiness checklist, generated from facts.

Reads ``daily_runs`` (shadow figures), ``<reports_dir>/monitor/stress.json``, optional scenario
``summary.json`` files (``monitor_scenario`` records), the config's alert rules and the latest
bundle (checksums, gates); writes ``<reports_dir>/monitor/readiness.{json,md}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadscore.config import Settings
from leadscore.io import write_json, write_text
from leadscore.monitor.rules import RULES
from leadscore.warehouse import open_warehouse


def _item(name: str, passed: bool, evidence: str) -> dict[str, Any]:
    return {"item": name, "passed": bool(passed), "evidence": evidence}


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def fired_rules(cfg: Settings, scenarios: Sequence[Path]) -> set[str]:
    """Rules seen to raise an alert in a stress test or a drift scenario."""
    seen: set[str] = set()
    stress = _read(cfg.project.reports_dir / "monitor" / "stress.json") or {"tests": []}
    for t in stress["tests"]:
        seen |= {a["rule"] for a in t["alerts"]}
    for path in scenarios:
        summary = _read(path) or {}
        seen |= {a["rule"] for a in summary.get("alerts", []) if a.get("level") == "alert"}
    return seen


def readiness(cfg: Settings, scenarios: Sequence[Path] = ()) -> dict[str, Any]:
    """The checklist: every item with its verdict and the fact behind it."""
    from leadscore.bundle import BundleError, verify_bundle
    from leadscore.daily.shadow import shadow_figures
    from leadscore.pipeline import latest_bundle_path

    items = []
    wh = open_warehouse(cfg.warehouse)
    try:
        shadow = shadow_figures(wh, 7)
    finally:
        wh.close()
    ok = shadow["mode"] == "shadow" and shadow["days"] >= 7 and shadow["gate"]["passed"]
    items.append(
        _item(
            "7 shadow days at > 95% success",
            ok,
            f"{shadow['days']} {shadow['mode']} days, gate {shadow['gate']['passed']}",
        )
    )
    stress = _read(cfg.project.reports_dir / "monitor" / "stress.json")
    items.append(
        _item(
            "stress tests passed",
            bool(stress and stress["passed"]),
            "no stress.json"
            if stress is None
            else ", ".join(f"{t['test']} {t['passed']}" for t in stress["tests"]),
        )
    )
    seen = fired_rules(cfg, scenarios)
    for rule in RULES:
        items.append(
            _item(
                f"alert rule {rule} configured and seen to fire",
                rule in seen,
                "fired" if rule in seen else "never seen to fire",
            )
        )
    path = latest_bundle_path(cfg)
    try:
        verify_bundle(path)
        verified, why = True, f"{path.name}: every checksum matches"
    except BundleError as exc:
        verified, why = False, str(exc)
    items.append(_item("bundle verified", verified, why))
    gates = json.loads((path / "gates.json").read_text()) if verified else {}
    items.append(_item("model gates green", bool(gates.get("all_passed")),
                       f"override: {gates.get('override_reason')}"))  # fmt: skip
    out = {"ready": all(i["passed"] for i in items), "items": items}
    folder = cfg.project.reports_dir / "monitor"
    write_json(folder / "readiness.json", out)
    lines = ["# Production readiness", "", f"Ready: **{out['ready']}**", ""]
    lines += [f"- [{'x' if i['passed'] else ' '}] {i['item']} — {i['evidence']}" for i in items]
    write_text(folder / "readiness.md", "\n".join(lines) + "\n")
    return out
