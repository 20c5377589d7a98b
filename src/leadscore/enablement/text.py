"""Enablement stage, wording helpers: rates, intervals and differences as people read them."""

from __future__ import annotations

import math

from leadscore.enablement.evidence import Rate


def pct(x: float, digits: int = 1) -> str:
    """``0.0423`` -> ``4.2%`` (``–`` for NaN)."""
    return "–" if x is None or math.isnan(x) else f"{100 * x:.{digits}f}%"


def rate_text(rate: Rate, confidence: float) -> str:
    """``4.2% (95% CI 3.1–5.6%, 21 of 500 leads)``."""
    if rate.n == 0:
        return "no leads"
    level = f"{100 * confidence:.0f}%"
    return (
        f"{pct(rate.rate)} ({level} CI {pct(rate.low)}–{pct(rate.high)}, "
        f"{rate.conversions:,} of {rate.n:,} {'lead' if rate.n == 1 else 'leads'})"
    )


def points(x: float) -> str:
    """A difference of two rates in percentage points: ``+3.1``."""
    return "–" if math.isnan(x) else f"{100 * x:+.1f}"


def difference_text(diff: float, low: float, high: float, confidence: float) -> str:
    """``+3.1 points (95% CI +0.8 to +5.4)``."""
    if math.isnan(diff):
        return "not measured"
    level = f"{100 * confidence:.0f}%"
    return f"{points(diff)} points ({level} CI {points(low)} to {points(high)})"
