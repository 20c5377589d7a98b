"""Explain stage, words: turn one lead's per-feature SHAP contributions into driver texts.

Reads the feature catalog's display name and unit for each feature; writes nothing. The texts
are what an SGA sees in Salesforce ("Firm AUM under $100M: $62M (+0.42)"), so the joined
text always fits the Salesforce field (255 characters by default).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from leadscore.catalog import Catalog

#: Day names for numeric day-of-week features, by the unit the catalog gives them.
_ISO_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DOW_UNITS = {
    # unit -> (first code, day names in code order)
    "isodow": (1, _ISO_DAYS),
    "weekday": (1, _ISO_DAYS),
    "dayofweek": (0, (_ISO_DAYS[6], *_ISO_DAYS[:6])),  # DuckDB dayofweek: 0 = Sunday
    "bq_dayofweek": (1, (_ISO_DAYS[6], *_ISO_DAYS[:6])),  # BigQuery DAYOFWEEK: 1 = Sunday
}
_MILLION_UNITS = {"$m", "usd_m", "usd millions", "$ millions", "musd", "millions_usd", "$mm"}
_DOLLAR_UNITS = {"$", "usd", "dollars"}
_PERCENT_UNITS = {"%", "percent", "pct"}
_SHARE_UNITS = {"share", "fraction", "proportion"}
_ELLIPSIS = "..."


@dataclass(frozen=True)
class Driver:
    """One reason behind a lead's score: a feature, the lead's value and its contribution."""

    feature: str
    text: str
    value: object
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the value as text when it is not a plain number or bool; null when
        it is a NaN or an infinity)."""
        out = asdict(self)
        value = self.value
        if value is not None and not isinstance(value, bool | int | float | str):
            out["value"] = str(value)
        elif isinstance(value, float) and not math.isfinite(value):
            out["value"] = None  # a missing value (NaN) is JSON null; NaN is not JSON
        return out


def display_of(catalog: Catalog, feature: str) -> tuple[str, str | None]:
    """The display label and unit the catalog gives ``feature`` (the name itself if none).

    A bool feature without a unit reads as a flag: the model matrix carries flags as 0/1
    numbers, and the texts say them as words.
    """
    try:
        entry = catalog.feature(feature)
    except KeyError:
        return feature, None
    unit = entry.unit or ("flag" if entry.dtype == "bool" else "")
    return entry.display or feature, unit or None


def is_missing(value: object) -> bool:
    """True for None, NaN and pandas' NA/NaT."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pd.NA compare unequal to themselves
    except (TypeError, ValueError):
        return False


def format_value(value: object, unit: str | None) -> str:
    """Render a feature value in its unit: ``$62M``, ``12.5%``, ``7.2 years``, ``1 firm``.

    Count units agree with the number as it is shown ("1 firm", "0 firms", "2.5 firms"); a
    value that rounds to 1 on screen is singular. An unknown unit is shown after the number.
    """
    if is_missing(value):
        return "unknown"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if not isinstance(value, int | float | np.integer | np.floating):
        return str(value)
    return number_formatter(unit)(float(value))


@functools.lru_cache(maxsize=512)
def number_formatter(unit: str | None) -> Callable[[float], str]:
    """How :func:`format_value` renders a (non-missing) number in ``unit``: chosen once per
    unit, so a column of numbers is rendered without choosing again for every value."""
    key = (unit or "").strip().lower()
    if key in _DOW_UNITS:
        first, names = _DOW_UNITS[key]
        return functools.partial(_day_name, first=first, names=names)
    if key in _MILLION_UNITS:
        return _millions
    if key.startswith("$m per "):  # "$M per client" -> "$1.2M per client"
        per = unit.strip()[3:] if unit else ""
        return functools.partial(_millions_per, per=per) if unit else _millions
    if key in _DOLLAR_UNITS:
        return _money
    if key in _PERCENT_UNITS:
        return _percent
    if key in _SHARE_UNITS:
        return _share
    if key in _PLAIN_UNITS:
        return _number
    return functools.partial(_number_with_unit, unit=unit.strip() if unit else "")


def _day_name(x: float, first: int, names: Sequence[str]) -> str:
    if not math.isfinite(x):  # no day: said as the code it is
        return f"day code {_number(x)}"
    idx = round(x) - first
    valid = 0 <= idx < len(names) and x == round(x)
    return names[idx] if valid else f"day code {_number(x)}"


def _millions(x: float) -> str:
    return _money(x * 1e6)


def _millions_per(x: float, per: str) -> str:
    return f"{_money(x * 1e6)} {per}"


def _percent(x: float) -> str:
    return f"{_number(x)}%"


def _share(x: float) -> str:
    return f"{_number(100 * x)}%"


def _number_with_unit(x: float, unit: str) -> str:
    return _with_unit(_number(x), unit)


#: Units shown as the bare number (a flag, a ratio, a score or index without a physical unit).
_PLAIN_UNITS = {"", "count", "number", "ratio", "flag", "index", "score"}
#: Irregular singulars of count units; the rest drop their final "s".
_SINGULAR = {
    "years": "year",
    "yrs": "year",
    "people": "person",
    "percentage points": "percentage point",
}


def _with_unit(number: str, unit: str) -> str:
    """``<number> <unit>`` with the unit singular when the shown number is exactly 1."""
    if number in {"1", "-1"}:
        unit = _singular(unit)
    elif unit.lower() in {"year", "yrs"}:
        unit = "years"
    return f"{number} {unit}" if unit else number


def _singular(unit: str) -> str:
    """``firms`` -> ``firm``, ``years`` -> ``year``; only the first word of ``X per Y``."""
    head, sep, tail = unit.partition(" per ")
    low = head.lower()
    if low in _SINGULAR:
        head = _SINGULAR[low]
    elif low.endswith("ies"):
        head = head[:-3] + "y"
    elif low.endswith("s") and not low.endswith("ss"):
        head = head[:-1]
    return head + sep + tail


def _number(x: float) -> str:
    """A number as people write it: ``1,250``, ``12.3``, ``0.42``, never in exponent form."""
    if math.isinf(x):
        return "infinite" if x > 0 else "minus infinite"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 100:
        text = f"{x:,.0f}"
    elif abs(x) >= 1:
        text = f"{x:.1f}"
    elif abs(x) >= 0.001:
        text = f"{x:.2g}"
    else:
        text = f"{x:.6f}".rstrip("0").rstrip(".")
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text in {"-0", "0.0", "-0.0"} else text


def _money(dollars: float) -> str:
    if math.isinf(dollars):
        return _number(dollars)
    sign = "-" if dollars < 0 else ""
    d = abs(dollars)
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if round(d / size, 1) >= 1:
            return f"{sign}${_number(round(d / size, 1))}{suffix}"
    return f"{sign}${d:,.0f}" if float(d).is_integer() else f"{sign}${d:,.2f}"


def format_numbers(values: np.ndarray, unit: str | None) -> pa.Array:
    """``[number_formatter(unit)(x) for x in values]`` for a column of floats: the same texts,
    as an Arrow string array.

    NumPy rounds and Arrow writes the cases that make up nearly every value: a number shown
    whole (with thousands separators), with one decimal or with two significant digits below
    1, and money of $1K and more. The rounding is exact (the exact value decides a half, as
    Python's formatting does); the rest (below 0.001, below $1K, infinities, a product too
    near a half) are rendered one by one.
    """
    x = np.asarray(values, dtype=np.float64)
    render = number_formatter(unit)
    kind = getattr(render, "func", render)
    keywords = getattr(render, "keywords", {})
    shown: pa.Array | None = None
    with np.errstate(over="ignore", invalid="ignore"):  # an infinity is left to Python
        if kind in (_number, _percent, _number_with_unit):
            shown, ok = _plain_numbers(x)
        elif kind is _share:
            shown, ok = _plain_numbers(100 * x)
        elif kind is _money:
            shown, ok = _money_amounts(x)
        elif kind in (_millions, _millions_per):
            shown, ok = _money_amounts(x * 1e6)
    if shown is None:
        return pa.array([render(v) for v in x.tolist()], pa.string())
    if kind is _percent or kind is _share:
        shown = pc.binary_join_element_wise(shown, "%", "")
    elif kind is _number_with_unit:
        shown = _with_units(shown, keywords["unit"])
    elif kind is _millions_per:
        shown = pc.binary_join_element_wise(shown, " " + keywords["per"], "")
    if ok.all():
        return shown
    rest = [render(v) for v in x[~ok].tolist()]
    return pc.replace_with_mask(shown, pa.array(~ok), pa.array(rest, pa.string()))


def _near_half(scaled: np.ndarray) -> np.ndarray:
    """Where rounding a product to a whole number may differ from rounding the exact value:
    the product carries an error of half a unit in its last place, so near a half (or where
    it is not a finite number held exactly) the exact value is left to Python."""
    usable = np.isfinite(scaled) & (np.abs(scaled) < 2.0**52)
    safe = np.where(usable, scaled, 0.0)
    return ~usable | (np.abs(safe - np.floor(safe) - 0.5) <= 4 * np.spacing(safe))


def _tenths(size: np.ndarray) -> np.ndarray:
    """The exact value of ``size * 10`` rounded to a whole number, an exact half to even, as
    ``round(size, 1)`` and ``format(size, ".1f")`` round (``size`` >= 0, below 2**48).

    ``size * 10`` is ``size * 8 + size * 2``, two exact products; their float sum plus the
    error of that sum (Knuth's TwoSum, exact) is the exact product. Only where the float sum
    is itself a half does the error decide the side.
    """
    a, b = size * 8, size * 2
    total = a + b
    b_part = total - a
    error = (a - (total - b_part)) + (b - b_part)
    low = np.floor(total)
    half = total - low == 0.5
    return np.where(half & (error > 0), low + 1, np.where(half & (error < 0), low, np.rint(total)))


def _plain_numbers(x: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """:func:`_number` of each value, and which values it is exact for: every value whose
    size is below 1e15, but those below 0.001 and the few below 1 whose two significant digits
    come from a product too near a half or round up to a third digit."""
    size = np.abs(x)
    finite = np.isfinite(x) & (size < 1e15)
    whole = finite & (x == np.trunc(x))
    large = finite & ~whole & (size >= 100)  # "{:,.0f}": rint rounds the exact value
    middle = finite & ~whole & (size >= 1) & (size < 100)  # "{:.1f}"
    small = finite & ~whole & (size >= 0.001) & (size < 1)  # "{:.2g}"
    tenths = _tenths(np.where(middle, size, 0.0))
    units = np.where(middle, tenths // 10, np.rint(np.where(whole | large, size, 0.0)))
    # below 1: two significant digits after `zeros` zeros ("0.0012"), the second one shown
    # when it is not 0; a product that rounds up to 100 gains a digit and is left to Python
    zeros = np.where(size >= 0.1, 0, np.where(size >= 0.01, 1, 2))
    scaled = np.where(small, size, 0.0) * 10.0 ** (zeros + 2)
    digits = np.rint(scaled)
    first = np.where(small, digits // 10, np.where(middle, tenths % 10, 0))
    second = np.where(small, digits % 10, 0)
    ok = whole | large | middle | (small & ~_near_half(scaled) & (digits < 100))
    shown_first = (middle & (first != 0)) | small
    decimals = pc.if_else(
        pa.array(shown_first),
        pc.binary_join_element_wise(
            ".",
            pa.array(np.array(["", "0", "00"])[zeros * small]),
            pa.array(first.astype(np.int64)).cast(pa.string()),
            pc.if_else(pa.array(second != 0), pa.array(second.astype(np.int64)).cast(
                pa.string()), pa.scalar("", pa.string())),
            "",
        ),
        pa.scalar("", pa.string()),
    )  # fmt: skip
    signs = pa.array(np.where((x < 0) & ((units != 0) | shown_first), "-", ""))
    return pc.binary_join_element_wise(signs, _grouped(units), decimals, ""), ok


def _money_amounts(dollars: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """:func:`_money` of each amount, and which amounts it is exact for: every amount that
    rounds to at least $1K and is below $1e26 (smaller ones are written in dollars and cents
    by Python)."""
    size = np.where(np.isfinite(dollars), np.abs(dollars), 0.0)
    chosen = np.zeros(len(size), dtype=bool)
    tenths = np.zeros(len(size))
    suffix = np.full(len(size), "", dtype=object)
    for scale, letter in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        scaled = _tenths(np.minimum(size / scale, 2.0**47))  # 10 * round(d / scale, 1)
        here = ~chosen & (scaled >= 10)
        tenths = np.where(here, scaled, tenths)
        suffix[here] = letter
        chosen |= here
    # _number of tenths / 10: whole, or ",.0f" from 100 on (an exact half rounds to even), or
    # ".1f" (the digits of the tenths)
    units, digit = tenths // 10, tenths % 10
    large = units >= 100
    units = np.where(large & ((digit > 5) | ((digit == 5) & (units % 2 == 1))), units + 1, units)
    digit = np.where(large, 0.0, digit)
    ok = chosen & np.isfinite(dollars) & (size < 1e26)
    decimals = pc.if_else(
        pa.array(digit != 0),
        pc.binary_join_element_wise(".", pa.array(digit.astype(np.int64)).cast(pa.string()), ""),
        pa.scalar("", pa.string()),
    )
    signs = pa.array(np.where(dollars < 0, "-$", "$"))
    number = pc.binary_join_element_wise(_grouped(units), decimals, "")
    return pc.binary_join_element_wise(signs, number, pa.array(suffix, pa.string()), ""), ok


def _grouped(units: np.ndarray) -> pa.Array:
    """Whole numbers (below 1e15) with a comma between groups of three digits: ``1,250``;
    a group with a higher one before it has all three digits."""

    def group(values: np.ndarray, higher: np.ndarray) -> pa.Array:
        text = pa.array(values % 1000).cast(pa.string())
        return pc.if_else(pa.array(higher), pc.utf8_lpad(text, 3, "0"), text)

    rest = units.astype(np.int64) // 1000
    text = group(units.astype(np.int64), rest > 0)
    while (rest > 0).any():
        present, values, rest = rest > 0, rest, rest // 1000
        joined = pc.binary_join_element_wise(group(values, rest > 0), text, ",")
        text = pc.if_else(pa.array(present), joined, text)
    return text


def _with_units(numbers: pa.Array, unit: str) -> pa.Array:
    """:func:`_with_unit` of each number shown."""
    if not unit:
        return numbers
    plural = "years" if unit.lower() in {"year", "yrs"} else unit
    single = _singular(unit)
    one = pc.is_in(numbers, pa.array(["1", "-1"]))
    units = pc.if_else(one, f" {single}" if single else "", f" {plural}")
    return pc.binary_join_element_wise(numbers, units, "")


def driver_text(label: str, unit: str | None, value: object) -> str:
    """Plain words for one feature value, without the contribution.

    A label may carry a ``{value}`` placeholder ("Contacted on a {value}"; an article before it
    agrees with the value: "on an unknown day"); a bool feature that is true is just its label
    ("CFP holder"); otherwise ``"<label>: <value>"``.
    """
    if "{value}" in label:
        shown = "unknown day" if is_missing(value) else format_value(value, unit)
        return _article_agrees(label, shown).replace("{value}", shown)
    if isinstance(value, bool | np.bool_) or (unit or "").lower() in {"flag", "bool"}:
        if is_missing(value):
            return f"{label}: unknown"
        return label if bool(value) else f"{label}: no"
    return f"{label}: {format_value(value, unit)}"


def _article_agrees(label: str, shown: str) -> str:
    """``a {value}`` becomes ``an {value}`` before a vowel sound, and back."""
    article = "an" if shown[:1].lower() in "aeiou" else "a"
    return _ARTICLE.sub(f"{article} {{value}}", label)


_ARTICLE = re.compile(r"\ban? \{value\}")


def pick_drivers(
    contributions: Mapping[str, float],
    values: Mapping[str, object],
    catalog: Catalog,
    n_positive: int,
    n_negative: int,
    labels: Mapping[str, tuple[str, str | None]] | None = None,
) -> tuple[list[Driver], list[Driver]]:
    """The lead's strongest positive and negative drivers, strongest first.

    Ties in contribution are broken by feature name so the choice is deterministic.
    """
    items = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))
    positive = [kv for kv in items if kv[1] > 0][:n_positive]
    negative = sorted((kv for kv in items if kv[1] < 0), key=lambda kv: (kv[1], kv[0]))
    return (
        [_driver(f, c, values.get(f), catalog, labels) for f, c in positive],
        [_driver(f, c, values.get(f), catalog, labels) for f, c in negative[:n_negative]],
    )


def _driver(
    feature: str,
    contribution: float,
    value: object,
    catalog: Catalog,
    labels: Mapping[str, tuple[str, str | None]] | None,
) -> Driver:
    if isinstance(value, np.generic):
        value = value.item()
    if labels is not None and feature in labels:
        label, unit = labels[feature]
    else:
        label, unit = display_of(catalog, feature)
    return Driver(feature, driver_text(label, unit, value), value, float(contribution))


def _item(driver: Driver) -> str:
    return f"{driver.text} ({driver.contribution:+.2f})"


def join_drivers(positive: Sequence[Driver], negative: Sequence[Driver], max_chars: int) -> str:
    """One line for Salesforce: ``Up: a (+0.42); b (+0.31) | Down: c (-0.20)``.

    Never longer than ``max_chars``: weaker drivers are dropped first (alternating, so the
    strongest negative outranks the 4th positive), and an item that cannot fit alone is cut
    with ``...``.
    """
    return fit_items([_item(d) for d in positive], [_item(d) for d in negative], max_chars)


def fit_items(ups: Sequence[str], downs: Sequence[str], max_chars: int) -> str:
    """:func:`join_drivers` on items already rendered (``"<text> (+0.42)"``), strongest first.

    Lengths are added up instead of rendering each trial: dropping an item never makes the
    line longer, so when everything fits, everything is kept.
    """
    up_sizes, down_sizes = [len(x) for x in ups], [len(x) for x in downs]
    if _length(len(ups), sum(up_sizes), len(downs), sum(down_sizes)) <= max_chars:
        return _render(ups, downs, None)
    sizes = {"+": up_sizes, "-": down_sizes}
    count, chars = {"+": 0, "-": 0}, {"+": 0, "-": 0}  # items kept per side, their characters
    kept: set[tuple[str, int]] = set()
    priority = _priority(len(ups), len(downs))
    for side, i in priority:
        count[side] += 1
        chars[side] += sizes[side][i]
        if _length(count["+"], chars["+"], count["-"], chars["-"]) <= max_chars:
            kept.add((side, i))
        else:
            count[side] -= 1
            chars[side] -= sizes[side][i]
    if not kept and priority:  # even the strongest driver alone is too long
        kept = {priority[0]}
    text = _render(ups, downs, kept)
    return text if len(text) <= max_chars else text[: max_chars - len(_ELLIPSIS)] + _ELLIPSIS


def _length(n_up: int, up_chars: int, n_down: int, down_chars: int) -> int:
    """Length of the rendered line with ``n_up`` items of ``up_chars`` characters, etc."""
    total = (4 + up_chars + 2 * (n_up - 1)) if n_up else 0  # "Up: " and "; " between items
    total += (6 + down_chars + 2 * (n_down - 1)) if n_down else 0  # "Down: "
    return total + (3 if n_up and n_down else 0)  # " | "


@functools.cache
def _priority(n_pos: int, n_neg: int) -> tuple[tuple[str, int], ...]:
    order: list[tuple[str, int]] = []
    pos = [("+", i) for i in range(n_pos)]
    neg = [("-", i) for i in range(n_neg)]
    # two positives, then one negative, repeated: the top 5 + top 3 layout of the issue
    while pos or neg:
        order.extend(pos[:2])
        del pos[:2]
        order.extend(neg[:1])
        del neg[:1]
    return tuple(order)


def _render(ups: Sequence[str], downs: Sequence[str], kept: set[tuple[str, int]] | None) -> str:
    """The line with the kept items (every item when ``kept`` is None)."""
    if kept is not None:
        ups = [x for i, x in enumerate(ups) if ("+", i) in kept]
        downs = [x for i, x in enumerate(downs) if ("-", i) in kept]
    parts = []
    if ups:
        parts.append("Up: " + "; ".join(ups))
    if downs:
        parts.append("Down: " + "; ".join(downs))
    return " | ".join(parts)
