"""Every catalog feature's driver phrase, read as an SGA reads it: number agreement and units.

Each model feature is rendered at 0, 1, 2, a fraction, a large value and missing (flags at
true/false/missing, categories at a level and missing); the phrase must say the value in the
feature's unit, with the unit agreeing with the number shown ("1 firm", "2 firms").
"""

from __future__ import annotations

import re

import pytest

from leadscore.catalog import Feature, load_catalog
from leadscore.explain.drivers import display_of, driver_text, format_value

CATALOG = load_catalog()
MODEL_FEATURES = [f for f in CATALOG.features if not f.pii]
NUMERIC_VALUES = (0, 1, 2, 0.37, 2.5, 1_250_000.0, None, float("nan"))
#: Count units of the catalog and their singular. A new unit must be added here (and read).
SINGULAR = {
    "firms": "firm",
    "miles": "mile",
    "advisors": "advisor",
    "years": "year",
    "employees": "employee",
    "reps": "rep",
    "clients": "client",
    "percentage points": "percentage point",
}
MONEY = {"$M", "$"}
PERCENT = {"%", "share"}
PLAIN = {"", "index", "score"}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Never in a phrase: Python/NumPy spellings, exponents, squared units, doubled spacing.
BAD = re.compile(r"nan\b|None|\binf\b|\d[eE][+-]?\d|²|  | :|\.0\b|\(\)")


def _values(feature: Feature) -> tuple[object, ...]:
    if feature.dtype == "bool":
        return (True, False, 1.0, 0.0, None)
    if feature.dtype == "category":
        return ("CA", None)
    return NUMERIC_VALUES


def _phrase(feature: Feature, value: object) -> str:
    return driver_text(*display_of(CATALOG, feature.name), value)


@pytest.mark.parametrize("feature", MODEL_FEATURES, ids=lambda f: f.name)
def test_every_phrase_is_clean(feature: Feature) -> None:
    for value in _values(feature):
        text = _phrase(feature, value)
        assert not BAD.search(text), (feature.name, value, text)
        assert text == text.strip() and text[0].isupper(), text
        if value is None or value != value:
            assert text.endswith(("unknown", "unknown day")), text


@pytest.mark.parametrize(
    "feature", [f for f in MODEL_FEATURES if f.dtype in ("int", "float")], ids=lambda f: f.name
)
def test_numbers_carry_their_unit_and_agree(feature: Feature) -> None:
    label, unit = display_of(CATALOG, feature.name)
    unit = unit or ""
    said = {v: _phrase(feature, v) for v in NUMERIC_VALUES if v is not None and v == v}
    if unit in SINGULAR:
        for value in (0, 2, 0.37, 2.5, 1_250_000.0):
            assert said[value].endswith(f"{format_value(value, '')} {unit}"), said[value]
        assert said[1] == f"{label}: 1 {SINGULAR[unit]}"
    elif unit in MONEY:
        scale = 1e6 if unit == "$M" else 1.0
        assert said[1] == f"{label}: " + ("$1M" if scale > 1 else "$1")
        assert said[2.5] == f"{label}: " + ("$2.5M" if scale > 1 else "$2.50")
        assert said[1_250_000.0].endswith("$1.2T" if scale > 1 else "$1.2M")
    elif unit.startswith("$M per "):
        assert said[1] == f"{label}: $1M {unit[3:]}"
        assert said[0.37] == f"{label}: $370K {unit[3:]}"
    elif unit == "%":
        assert said[1] == f"{label}: 1%" and said[2.5] == f"{label}: 2.5%"
    elif unit == "share":
        assert said[0.37] == f"{label}: 37%" and said[1] == f"{label}: 100%"
    elif unit == "isodow":
        assert [driver_text(label, unit, d) for d in range(1, 8)] == [
            label.replace("{value}", day) for day in DAYS
        ]
        assert "day code" in said[0] and "day code" in said[2.5]
    else:
        assert unit in PLAIN, f"{feature.name}: unit {unit!r} has no rule in this test"
        assert said[1] == f"{label}: 1" and said[0.37] == f"{label}: 0.37"


@pytest.mark.parametrize(
    "feature", [f for f in MODEL_FEATURES if f.dtype == "bool"], ids=lambda f: f.name
)
def test_flags_read_as_words(feature: Feature) -> None:
    label, _ = display_of(CATALOG, feature.name)
    assert _phrase(feature, True) == _phrase(feature, 1.0) == label
    assert _phrase(feature, False) == _phrase(feature, 0.0) == f"{label}: no"


def test_every_display_name_is_distinct() -> None:
    labels = [display_of(CATALOG, f.name)[0] for f in MODEL_FEATURES]
    assert len(labels) == len(set(labels)), sorted({x for x in labels if labels.count(x) > 1})


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("NumberRIAFirmAssociations", 1, "Number of RIA firm associations: 1 firm"),
        ("NumberRIAFirmAssociations", 3, "Number of RIA firm associations: 3 firms"),
        ("Growth_Momentum", 828.0, "Growth momentum (1-year % × 5-year %): 828"),
        ("MilesToWork", 1.0, "Commute distance: 1 mile"),
        ("DateBecameRep_NumberOfYears", 0.999, "Years in the industry: 1 year"),
        ("Day_of_Contact", None, "Contacted on an unknown day"),
        (
            "HNW_Asset_Concentration",
            0.42,
            "High-net-worth client assets as a share of firm AUM: 42%",
        ),
        ("TotalAssetsInMillions", 999.99, "Firm assets under management: $1B"),
    ],
)
def test_phrases_an_sga_reads(feature: str, value: object, text: str) -> None:
    assert driver_text(*display_of(CATALOG, feature), value) == text
