"""Feature catalog: the one declarative list of features (``features.yaml``) and what it implies.

``build`` compiles it into the point-in-time SQL; ``validate`` derives the schema contract and
the PII drop list from it; ``explain`` and ``score`` read display names, units and Salesforce
fields. Loading checks every expression: known columns only, no PII, no cycles.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Final, Literal, cast

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlglot import exp

from leadscore.ingest.schema import FIRMS_COLUMNS, PII_COLUMNS, REPS_COLUMNS

Source = Literal["reps", "firms", "lead", "derived"]
Kind = Literal["stable", "calculable", "mutable", "temporal"]
DType = Literal["float", "int", "bool", "category"]
FeatureType = Literal["numeric", "bool", "category"]

#: Lead-spine columns an expression may read: the point in time of the row.
LEAD_CONTEXT_COLUMNS: frozenset[str] = frozenset({"pit_ts"})
#: Raw vendor columns an expression may read (firm columns that clash with rep names are not
#: exposed: they are identifiers or bookkeeping, never features).
RAW_COLUMNS: frozenset[str] = frozenset(REPS_COLUMNS) | frozenset(FIRMS_COLUMNS)
#: Columns known only after contact; a feature computed from them is a leak by construction.
POST_CONTACT_COLUMNS: frozenset[str] = frozenset({"converted_ts"})
SQL_TYPES: dict[str, str] = {
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "category": "VARCHAR",
}
FEATURE_TYPES: dict[str, FeatureType] = {
    "float": "numeric",
    "int": "numeric",
    "bool": "bool",
    "category": "category",
}
#: The segment that per-segment calibration, the score tables and the reports key on. Its
#: values, like every segment's, are defined in ``features.yaml``.
CALIBRATION_SEGMENT: Final = "aum_tier"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CONSTANT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Constant(_Model):
    """A fixed threshold (never recomputed from data) with the reason for its value."""

    value: float
    note: str


class Segment(_Model):
    """A segment column of the output tables (e.g. AUM tier), not a model feature."""

    name: str
    sql: str
    display: str
    values: tuple[str, ...]


class Feature(_Model):
    """One feature: how it is computed, what it is, how to show it."""

    name: str
    sql: str
    source: Source
    kind: Kind
    dtype: DType
    display: str
    unit: str = ""
    nullable: bool = True
    range: tuple[float | None, float | None] | None = None
    pii: bool = False
    critical: bool = False
    salesforce_field: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> Feature:
        if not _NAME.match(self.name):
            raise ValueError(f"feature name {self.name!r} is not a plain identifier")
        if self.range is not None:
            low, high = self.range
            if low is not None and high is not None and low > high:
                raise ValueError(f"feature {self.name}: range low {low} > high {high}")
            if self.dtype in ("bool", "category"):
                raise ValueError(f"feature {self.name}: a {self.dtype} feature has no range")
        return self

    @property
    def sf_field(self) -> str:
        """The Salesforce field name (``<name>__c`` unless the catalog names one)."""
        return self.salesforce_field or f"{self.name}__c"

    @property
    def feature_type(self) -> FeatureType:
        return FEATURE_TYPES[self.dtype]


class Catalog(_Model):
    """The parsed, checked catalog. Build one with :func:`load_catalog`."""

    version: int
    constants: dict[str, Constant] = Field(default_factory=dict)
    pii: tuple[str, ...]
    segments: tuple[Segment, ...] = ()
    features: tuple[Feature, ...]

    @model_validator(mode="after")
    def _check(self) -> Catalog:
        names = [f.name for f in self.features] + [s.name for s in self.segments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {duplicates}")
        missing_pii = sorted(set(PII_COLUMNS) - set(self.pii))
        if missing_pii:
            raise ValueError(f"pii list lacks the vendor files' PII columns {missing_pii}")
        for feature in self.features:
            if feature.name in self.pii and not feature.pii:
                raise ValueError(f"feature {feature.name} is a PII column; mark it pii: true")
        if CALIBRATION_SEGMENT not in {s.name for s in self.segments}:
            raise ValueError(f"segments lack the calibration segment {CALIBRATION_SEGMENT!r}")
        _ = self._compiled  # compiles every expression: fails on unknown names and cycles
        return self

    # ------------------------------------------------------------------ helpers for stages
    def model_features(self) -> list[str]:
        """Model inputs in catalog order (PII excluded)."""
        return [f.name for f in self.features if not f.pii]

    def feature(self, name: str) -> Feature:
        """The feature called ``name``."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(f"no feature {name!r} in the catalog")

    def segment(self, name: str) -> Segment:
        """The segment called ``name``."""
        for segment in self.segments:
            if segment.name == name:
                return segment
        raise KeyError(f"no segment {name!r} in the catalog")

    def segment_names(self) -> list[str]:
        """Segment columns in catalog order."""
        return [s.name for s in self.segments]

    def feature_types(self) -> dict[str, FeatureType]:
        """Model feature -> ``numeric`` | ``bool`` | ``category``."""
        return {f.name: f.feature_type for f in self.features if not f.pii}

    def pii_columns(self) -> list[str]:
        """Columns that must never reach a model: the PII list and any feature marked PII."""
        return list(self.pii) + [f.name for f in self.features if f.pii]

    def critical_features(self) -> list[str]:
        """Features the completeness gate checks."""
        return [f.name for f in self.features if f.critical and not f.pii]

    def display(self, name: str) -> str:
        """Display name with its unit, for driver texts (``Firm AUM ($M)``)."""
        feature = self.feature(name)
        return f"{feature.display} ({feature.unit})" if feature.unit else feature.display

    def salesforce_fields(self) -> dict[str, str]:
        """Model feature -> Salesforce field name."""
        return {f.name: f.sf_field for f in self.features if not f.pii}

    def post_contact_features(self) -> list[str]:
        """Features whose expression reads a column known only after contact (probable leaks)."""
        return [
            name
            for name, refs in self._references.items()
            if refs & POST_CONTACT_COLUMNS and name in self.model_features()
        ]

    def raw_columns(self) -> set[str]:
        """Vendor columns read by any feature or segment."""
        return set().union(*self._references.values()) & RAW_COLUMNS

    def compiled_sql(self, name: str) -> str:
        """DuckDB SQL of a feature or segment, dependencies inlined, constants substituted."""
        return self._compiled[name].sql(dialect="duckdb")

    def select_sql(self, name: str) -> str:
        """``CAST(<expr> AS <type>) AS "<name>"`` for a feature, ``<expr> AS "<name>"`` else."""
        sql = self.compiled_sql(name)
        if any(f.name == name for f in self.features):
            sql = f"CAST({sql} AS {SQL_TYPES[self.feature(name).dtype]})"
        return f'{sql} AS "{name}"'

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the catalog's canonical JSON (provenance of contracts and bundles)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    # ------------------------------------------------------------------ compilation
    @cached_property
    def _parsed(self) -> dict[str, exp.Expression]:
        values = {k: repr(c.value) for k, c in self.constants.items()}
        out: dict[str, exp.Expression] = {}
        items: list[Feature | Segment] = [*self.features, *self.segments]
        for item in items:
            unknown = sorted(set(_CONSTANT.findall(item.sql)) - set(values))
            if unknown:
                raise ValueError(f"feature {item.name}: unknown constants {unknown}")
            text = _CONSTANT.sub(lambda m: values[m.group(1)], item.sql)
            try:
                out[item.name] = cast(exp.Expression, sqlglot.parse_one(text, read="duckdb"))
            except sqlglot.errors.ParseError as exc:
                raise ValueError(f"feature {item.name}: SQL does not parse: {exc}") from None
        return out

    @cached_property
    def _compiled(self) -> dict[str, exp.Expression]:
        compiled: dict[str, exp.Expression] = {}
        for name in self._parsed:
            compiled[name] = self._expand(name, (), compiled)
        for name, tree in compiled.items():
            self._check_columns(name, tree)
        return compiled

    @cached_property
    def _references(self) -> dict[str, set[str]]:
        return {n: {c.name for c in t.find_all(exp.Column)} for n, t in self._compiled.items()}

    def _expand(
        self, name: str, stack: tuple[str, ...], done: dict[str, exp.Expression]
    ) -> exp.Expression:
        if name in done:
            return done[name].copy()
        if name in stack:
            raise ValueError(f"feature cycle: {' -> '.join((*stack, name))}")

        def visit(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table:
                ref = node.name
                if ref != name and ref in self._parsed:
                    return exp.Paren(this=self._expand(ref, (*stack, name), done))
            return node

        tree = self._parsed[name].copy().transform(visit)
        done[name] = tree
        return tree.copy()

    def _check_columns(self, name: str, tree: exp.Expression) -> None:
        refs = {c.name for c in tree.find_all(exp.Column)}
        unknown = sorted(refs - RAW_COLUMNS - LEAD_CONTEXT_COLUMNS - POST_CONTACT_COLUMNS)
        if unknown:
            raise ValueError(f"feature {name}: unknown columns {unknown}")
        is_pii = any(f.name == name and f.pii for f in self.features)
        pii_refs = sorted(refs & set(self.pii))
        if pii_refs and not is_pii:
            raise ValueError(f"feature {name} reads PII columns {pii_refs}")


def default_catalog_path() -> Path:
    """The catalog packaged with leadscore."""
    return Path(str(resources.files("leadscore") / "features.yaml"))


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Read and check a feature catalog (default: the packaged ``features.yaml``).

    Raises:
        ValueError: the file names an unknown column, a PII column, a cycle or a bad field;
            the message names the feature.
    """
    path = Path(path) if path is not None else default_catalog_path()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser is ~20x faster
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a catalog is a mapping with a 'features' list")
    return Catalog.model_validate(data)


@cache
def default_catalog() -> Catalog:
    """The packaged catalog, loaded once per process (for code that is given no catalog)."""
    return load_catalog()


def calibration_segment(catalog: Catalog | None = None) -> Segment:
    """The segment calibration and the score tables key on (name and values from the catalog)."""
    return (catalog or default_catalog()).segment(CALIBRATION_SEGMENT)


def segment_column() -> str:
    """Column name of the calibration segment in training and scoring frames (``aum_tier``)."""
    return calibration_segment().name
