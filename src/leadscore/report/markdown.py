"""Small helpers for the validate reports: a check's outcome and Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from leadscore.gates import GateResult


@dataclass
class CheckReport:
    """One validation check: its gates (none when informational), figures and Markdown."""

    name: str
    title: str
    figures: dict[str, Any]
    markdown: str
    gates: list[GateResult] = field(default_factory=list)
    error: Exception | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats get 4 significant digits."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def gate_lines(gates: Sequence[GateResult]) -> str:
    """Markdown bullet per gate verdict."""
    return "\n".join(
        f"- **{'PASS' if g.passed else 'FAIL'}** `{g.name}`: {g.figure:.4g} "
        f"(must be {g.comparison} {g.threshold:.4g}){' - ' + g.detail if g.detail else ''}"
        for g in gates
    )
