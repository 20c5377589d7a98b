"""Generic source, the mapping: which file is the lead table, its id, event time, outcome, label
window, feature fields and optional time-stamped enrichment tables.

Reads a mapping TOML file (written by ``leadscore init --from FILE.csv`` and reviewed by a
person); writes nothing. Every model is strict: unknown keys are errors.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FieldKind = Literal["numeric", "category", "bool", "date"]
#: Values CRMs put in a field that means "nothing chosen"; read as missing.
DEFAULT_PLACEHOLDERS: tuple[str, ...] = (
    "select",
    "--select--",
    "-- select --",
    "n/a",
    "na",
    "none",
    "null",
    "unknown",
    "-",
    "?",
    "tbd",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def safe_name(column: str) -> str:
    """A plain identifier for a column name (``Annual Revenue ($)`` -> ``Annual_Revenue``)."""
    name = _UNSAFE.sub("_", column.strip()).strip("_") or "field"
    return name if name[0].isalpha() else f"f_{name}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class FieldSpec(_Strict):
    """One field of the lead table or of an enrichment table that may become a feature.

    ``review`` marks a guess of ``init`` a person has not confirmed; ``exclude`` keeps the
    field out of the model (it is still scanned for leakage and reported).
    """

    column: str
    kind: FieldKind
    display: str = ""
    review: bool = False
    exclude: bool = False

    @property
    def name(self) -> str:
        """The feature name (a plain identifier)."""
        return safe_name(self.column)


class EnrichmentSpec(_Strict):
    """A time-stamped table joined to each lead as of its event time.

    The row joined is the latest with ``key`` equal to the lead's ``lead_key`` and
    ``available_ts_col <= event time`` (when the data was available to the team, not the
    date it describes).
    """

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    table: Path
    lead_key_col: str
    key_col: str
    available_ts_col: str
    fields: tuple[FieldSpec, ...]


class LeakageSettings(_Strict):
    """Thresholds of the leakage detector (see :mod:`leadscore.generic.leakage`)."""

    n_blocks: int = Field(6, ge=2, le=24)
    within_auc_flag: float = Field(0.70, gt=0.5, le=1.0)
    block_auc_floor: float = Field(0.60, gt=0.5, le=1.0)
    block_share: float = Field(0.75, gt=0.0, le=1.0)
    presence_auc_flag: float = Field(0.70, gt=0.5, le=1.0)
    after_event_share_flag: float = Field(0.05, gt=0.0, le=1.0)
    calendar_drop: float = Field(0.5, gt=0.0, le=1.0)
    action: Literal["stop", "drop"] = "stop"


class SourceMapping(_Strict):
    """The whole mapping of a team's CRM export onto leadscore."""

    table: Path
    id_col: str
    event_ts_col: str | None = None
    outcome_ts_col: str | None = None
    outcome_flag_col: str | None = None
    label_window_days: int = Field(30, ge=1, le=365)
    as_of: datetime | None = None
    placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS
    min_level_count: int = Field(20, ge=1)
    segment_col: str | None = None
    fields: tuple[FieldSpec, ...]
    enrichments: tuple[EnrichmentSpec, ...] = ()
    leakage: LeakageSettings = Field(default_factory=LeakageSettings)

    @model_validator(mode="after")
    def _check(self) -> SourceMapping:
        if self.outcome_ts_col is None and self.outcome_flag_col is None:
            raise ValueError("name the outcome: outcome_ts_col or outcome_flag_col")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        names = [f.name for f in self.all_fields()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two fields map to the same feature name: {dupes}")
        keys = {self.id_col, self.event_ts_col, self.outcome_ts_col, self.outcome_flag_col}
        clash = sorted(f.column for f in self.fields if f.column in keys)
        if clash:
            raise ValueError(f"id, time and outcome columns cannot be fields: {clash}")
        kinds = {f.name: f.kind for f in self.fields}
        if self.segment_col is not None and kinds.get(safe_name(self.segment_col)) != "category":
            raise ValueError(f"segment_col {self.segment_col!r} must be a category field")
        return self

    def all_fields(self) -> list[FieldSpec]:
        """Lead-table fields then each enrichment's fields, under their feature names."""
        out = list(self.fields)
        for enrichment in self.enrichments:
            out += [enrichment_field(enrichment, f) for f in enrichment.fields]
        return out

    def has_time(self) -> bool:
        """Whether the mapping names an event time (else the split is random)."""
        return self.event_ts_col is not None


def enrichment_field(enrichment: EnrichmentSpec, spec: FieldSpec) -> FieldSpec:
    """An enrichment field renamed ``<enrichment>__<column>`` so names never clash."""
    return spec.model_copy(update={"column": f"{enrichment.name}__{safe_name(spec.column)}"})


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the key."""


def load_mapping(path: Path) -> SourceMapping:
    """Read a mapping TOML file; table paths are anchored at the file's folder.

    Raises:
        MappingError: the file is missing, is not TOML, or breaks the model (one line per key).
    """
    path = Path(path)
    if not path.is_file():
        raise MappingError(f"mapping file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"mapping {path} is not valid TOML: {exc}") from None
    source = dict(data.get("source", {}))
    source["fields"] = data.get("fields", [])
    source["enrichments"] = data.get("enrichments", [])
    if "leakage" in data:
        source["leakage"] = data["leakage"]
    extra = sorted(set(data) - {"source", "fields", "enrichments", "leakage"})
    if extra:
        raise MappingError(f"mapping {path}: unknown sections {extra}")
    try:
        mapping = SourceMapping.model_validate(_anchored(source, path.parent.resolve()))
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise MappingError(f"invalid mapping {path}: " + "; ".join(lines)) from None
    return mapping


def _anchored(source: dict[str, object], root: Path) -> dict[str, object]:
    """Relative table paths -> absolute Paths; TOML datetimes stay datetimes."""
    out = dict(source)
    if isinstance(out.get("table"), str):
        out["table"] = _path(root, str(out["table"]))
    enrichments = []
    for item in out.get("enrichments", []) or []:  # type: ignore[attr-defined]
        item = dict(item)
        if isinstance(item.get("table"), str):
            item["table"] = _path(root, item["table"])
        item["fields"] = tuple(item.get("fields", []))
        enrichments.append(item)
    out["enrichments"] = tuple(enrichments)
    out["fields"] = tuple(out.get("fields", []))  # type: ignore[arg-type]
    if isinstance(out.get("placeholders"), list):
        out["placeholders"] = tuple(out["placeholders"])  # type: ignore[arg-type]
    return out


def _path(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path
