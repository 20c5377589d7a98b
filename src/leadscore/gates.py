"""Gate verdicts shared by every stage: a named check, its figure and threshold
(rule 5 in docs/design.md).

A stage returns :class:`GateResult` records; a failed one becomes :class:`GateFailed`, whose
message names the gate, the figure, the threshold and the report, and which the CLI turns into
a non-zero exit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_COMPARISONS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: ``figure <comparison> threshold`` must hold for it to pass."""

    name: str
    passed: bool
    figure: float
    threshold: float
    comparison: str
    report_path: str | None
    detail: str = ""

    @classmethod
    def check(
        cls,
        name: str,
        figure: float,
        threshold: float,
        comparison: str,
        report_path: str | Path | None = None,
        detail: str = "",
    ) -> GateResult:
        """Evaluate ``figure <comparison> threshold`` (NaN never passes)."""
        if comparison not in _COMPARISONS:
            raise ValueError(f"unknown comparison {comparison!r}; use one of {list(_COMPARISONS)}")
        figure = float(figure)
        passed = not math.isnan(figure) and bool(_COMPARISONS[comparison](figure, threshold))
        path = None if report_path is None else str(report_path)
        return cls(name, passed, figure, float(threshold), comparison, path, detail)

    def raise_if_failed(self) -> None:
        """Raise :class:`GateFailed` when the gate did not pass."""
        if not self.passed:
            raise GateFailed(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for result files."""
        return asdict(self)


class GateFailed(Exception):
    """A gate failed; the message names the gate, the figure, the threshold and the report.

    Raise it from a :class:`GateResult` (``GateFailed(result)``) or directly with
    ``GateFailed(gate, figure, threshold, report_path, comparison=..., detail=...)``.
    """

    def __init__(
        self,
        gate: GateResult | str,
        figure: float | None = None,
        threshold: float | None = None,
        report_path: str | Path | None = None,
        *,
        comparison: str = "within",
        detail: str = "",
    ) -> None:
        if isinstance(gate, GateResult):
            result = gate
        else:
            if figure is None or threshold is None:
                raise TypeError("GateFailed(gate, figure, threshold, report_path) needs figures")
            path = None if report_path is None else str(report_path)
            result = GateResult(
                gate, False, float(figure), float(threshold), comparison, path, detail
            )
        self.result = result
        super().__init__(self._message())

    @property
    def gate(self) -> str:
        return self.result.name

    @property
    def figure(self) -> float:
        return self.result.figure

    @property
    def threshold(self) -> float:
        return self.result.threshold

    @property
    def report_path(self) -> str | None:
        return self.result.report_path

    def _message(self) -> str:
        r = self.result
        where = r.report_path or "(no report)"
        text = (
            f"gate {r.name!r} failed: {r.figure:.4g} is not "
            f"{r.comparison} {r.threshold:.4g}; see {where}"
        )
        return f"{text}\n{r.detail}" if r.detail else text
