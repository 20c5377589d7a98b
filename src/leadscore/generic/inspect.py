"""Generic source, ``init``: inspect a CRM export and write a starter mapping.

Reads one CSV/Parquet file; writes a mapping TOML whose every guess (id, event time, outcome,
each field's kind) is marked ``review = true`` or commented ``# REVIEW`` for a person to confirm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.generic.build import read_table
from leadscore.generic.mapping import DEFAULT_PLACEHOLDERS, FieldKind
from leadscore.io import write_text

_ID = re.compile(r"(^|[^a-z])id$|^id|lead.?id|record.?id", re.I)
_EVENT = re.compile(r"creat|contact|assign|entered|received|submitted|start", re.I)
_OUTCOME_TS = re.compile(r"convert|mql|won|closed|qualif|meeting|booked|sql", re.I)
_BOOL = {"true", "false", "yes", "no", "y", "n", "t", "f", "0", "1"}
_SAMPLE = 5000


@dataclass(frozen=True)
class ColumnGuess:
    """What ``init`` thinks a column is, and why."""

    column: str
    kind: FieldKind | None
    role: str
    note: str


def _values(s: pd.Series) -> pd.Series:
    text = s.astype(str).str.strip()
    return text[(text != "") & ~text.str.lower().isin(DEFAULT_PLACEHOLDERS)]


def guess_kind(s: pd.Series) -> tuple[FieldKind, str]:
    """numeric, bool, date or category, with the share of values that fit."""
    v = _values(s)
    if v.empty:
        return "category", "no values"
    if v.str.lower().isin(_BOOL).all() and v.str.lower().nunique() <= 2:
        return "bool", "two yes/no values"
    num = pd.to_numeric(v.str.replace(r"[,$%]", "", regex=True), errors="coerce")
    if num.notna().mean() >= 0.95:
        return "numeric", f"{num.notna().mean():.0%} numbers"
    dates = pd.to_datetime(v, errors="coerce", utc=True, format="mixed")
    if dates.notna().mean() >= 0.95:
        return "date", f"{dates.notna().mean():.0%} dates"
    return "category", f"{v.nunique()} distinct values"


def inspect_table(df: pd.DataFrame) -> list[ColumnGuess]:
    """A guess per column: the id, the event time, the outcome, or a field and its kind."""
    sample = df.head(_SAMPLE)
    guesses: list[ColumnGuess] = []
    roles: set[str] = set()
    for col in df.columns:
        kind, note = guess_kind(sample[col])
        role = "field"
        unique = sample[col].nunique() >= 0.98 * len(sample)
        if "id" not in roles and _ID.search(col) and unique:
            role = "id"
        elif kind == "date" and "event" not in roles and _EVENT.search(col):
            role = "event"
        elif kind == "date" and "outcome_ts" not in roles and _OUTCOME_TS.search(col):
            role = "outcome_ts"
        elif kind == "bool" and "outcome_flag" not in roles and _OUTCOME_TS.search(col):
            role = "outcome_flag"
        elif kind == "category" and unique:
            role, note = "skip", "unique per row (an identifier or free text)"
        roles.add(role)
        guesses.append(ColumnGuess(str(col), kind, role, note))
    return guesses


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_mapping(table: Path, guesses: list[ColumnGuess], window: int = 30) -> str:
    """The starter mapping text; every guess is marked for review."""
    role = {g.role: g for g in guesses}
    lines = [
        f"# Starter mapping written by `leadscore init --from {table.name}`.",
        "# Every line marked REVIEW (and every field with review = true) is a guess: confirm it.",
        "# Fields recorded after the outcome (call notes, statuses set by sales) must not stay:",
        "# the leakage gate flags them; set exclude = true on the ones you know.",
        "[source]",
        f"table = {_toml_str(str(table))}",
    ]
    keys = (
        ("id", "id_col"),
        ("event", "event_ts_col"),
        ("outcome_ts", "outcome_ts_col"),
        ("outcome_flag", "outcome_flag_col"),
    )
    for key, name in keys:
        if key in role:
            lines.append(f"{name} = {_toml_str(role[key].column)}  # REVIEW: guessed")
        elif key in ("id", "event"):
            lines.append(f'# {name} = "..."  # REVIEW: no column looked like one')
    if "outcome_ts" not in role and "outcome_flag" not in role:
        lines.append('outcome_flag_col = "..."  # REVIEW: name the outcome column')
    lines.append(f"label_window_days = {window}  # REVIEW")
    for g in guesses:
        if g.role == "field" and g.kind is not None:
            lines += ["", "[[fields]]", f"column = {_toml_str(g.column)}",
                      f"kind = {_toml_str(g.kind)}  # {g.note}", "review = true"]  # fmt: skip
        elif g.role == "skip":
            lines.append(f"# skipped {g.column!r}: {g.note}")
    return "\n".join(lines) + "\n"


def init_mapping(source: Path, out: Path) -> tuple[Path, list[ColumnGuess]]:
    """Inspect ``source`` and write the starter mapping to ``out``.

    Raises:
        ValueError: ``out`` exists (a reviewed mapping is never overwritten).
    """
    if out.exists():
        raise ValueError(f"{out} exists; remove it or choose another --out")
    df = read_table(source).to_pandas()
    guesses = inspect_table(df)
    rel = Path(source).resolve()
    if rel.is_relative_to(Path(out).resolve().parent):
        rel = rel.relative_to(Path(out).resolve().parent)
    return write_text(out, render_mapping(rel, guesses)), guesses
