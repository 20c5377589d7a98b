"""Experiment stage, group-sequential boundaries: Lan-DeMets alpha spending, O'Brien-Fleming type.

Pure functions. The spending function, per side ``a(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t))``
with ``a = alpha / 2`` (the form of gsDesign's ``sfLDOF``), spends almost nothing early and
nearly the full alpha at the end, so looking at the data at interim points does not raise the
false-positive rate above ``alpha``. Boundaries come from numerical integration of the score
process ``S(t) = Z(t) sqrt(t)`` (a Brownian motion in information time) on a grid, look by
look (the Armitage-McPherson-Rowe recursion).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

GRID_POINTS = 1601


def obf_spending(t: np.ndarray | float, alpha: float = 0.05) -> np.ndarray:
    """Cumulative two-sided alpha spent by information fraction ``t`` (Lan-DeMets OBF).

    Each side spends ``alpha / 2`` by ``2 - 2 Phi(z_{1 - alpha/4} / sqrt(t))``; the two-sided
    total is twice that, and equals ``alpha`` at ``t = 1``.
    """
    t = np.clip(np.asarray(t, dtype=float), 1e-12, 1.0)
    per_side = 2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 4) / np.sqrt(t))
    return np.asarray(2.0 * per_side)


@dataclass(frozen=True)
class Boundaries:
    """Two-sided z boundaries at each look and the alpha spent up to it."""

    fractions: tuple[float, ...]
    z: tuple[float, ...]
    cumulative_alpha: tuple[float, ...]
    alpha: float

    def nominal_p(self) -> tuple[float, ...]:
        """The two-sided p-value a look must beat (``2 (1 - Phi(z_k))``)."""
        return tuple(float(2 * stats.norm.sf(z)) for z in self.z)


def _crossing_prob(grid: np.ndarray, dens: np.ndarray, step: float, sd: float, c: float) -> float:
    """P(continued so far, |S_k| >= c) given the sub-density of S_{k-1} on ``grid``."""
    tail = stats.norm.sf((c - grid) / sd) + stats.norm.cdf((-c - grid) / sd)
    return float(np.sum(dens * tail) * step)


def _excess(
    c: float, grid: np.ndarray, dens: np.ndarray, step: float, sd: float, root_t: float,
    target: float,
) -> float:  # fmt: skip
    return _crossing_prob(grid, dens, step, sd, c * root_t) - target


def _advance(
    grid: np.ndarray, dens: np.ndarray, step: float, sd: float, c: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Sub-density of S_k on (-c, c): the previous density convolved with N(0, sd^2)."""
    new_grid = np.linspace(-c, c, GRID_POINTS)
    kernel = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sd) / sd
    weights = np.full(len(grid), step)
    weights[[0, -1]] *= 0.5  # trapezoid rule
    return new_grid, kernel @ (dens * weights), float(new_grid[1] - new_grid[0])


def obf_boundaries(fractions: Sequence[float], alpha: float = 0.05) -> Boundaries:
    """Two-sided boundaries for looks at ``fractions`` (increasing, last = 1 for the final).

    Look k's boundary ``c_k`` solves ``P(no crossing before k, |Z_k| >= c_k) =
    alpha(t_k) - alpha(t_{k-1})``.
    """
    t = np.asarray(fractions, dtype=float)
    if len(t) == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1:
        raise ValueError("fractions must increase within (0, 1]")
    spent = obf_spending(t, alpha)
    increments = np.diff(np.r_[0.0, spent])
    z = [float(stats.norm.isf(increments[0] / 2))]
    grid = np.linspace(-z[0] * np.sqrt(t[0]), z[0] * np.sqrt(t[0]), GRID_POINTS)
    dens, step = stats.norm.pdf(grid, scale=np.sqrt(t[0])), float(grid[1] - grid[0])
    for k in range(1, len(t)):
        sd = float(np.sqrt(t[k] - t[k - 1]))
        root_t = float(np.sqrt(t[k]))

        args = (grid, dens, step, sd, root_t, float(increments[k]))
        c_k = float(optimize.brentq(_excess, 0.5, 12.0, args=args, xtol=1e-10))
        z.append(c_k)
        grid, dens, step = _advance(grid, dens, step, sd, c_k * root_t)
    return Boundaries(tuple(float(x) for x in t), tuple(z), tuple(float(a) for a in spent), alpha)


def crossed(z_values: Sequence[float], bounds: Boundaries) -> int | None:
    """Index of the first look whose |z| reaches its boundary, or None."""
    for k, (z, c) in enumerate(zip(z_values, bounds.z, strict=False)):
        if np.isfinite(z) and abs(z) >= c:
            return k
    return None
