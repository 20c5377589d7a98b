"""Generic source, the catalog: a :class:`~leadscore.catalog.Catalog` generated from a mapping.

Reads the mapping and the category level counts of the development rows; returns a catalog
whose expressions read the cleaned lead table (numeric casts, rare levels grouped, booleans,
dates turned into ages at the event time). Training, scoring, drivers and the schema contract
read it exactly as they read ``features.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import model_validator
from sqlglot import exp

from leadscore.catalog import CALIBRATION_SEGMENT, DType, Feature, Segment
from leadscore.catalog import Catalog as _BaseCatalog
from leadscore.generic.mapping import FieldSpec, SourceMapping, safe_name
from leadscore.warehouse.sql import ident as _q
from leadscore.warehouse.sql import text as _lit

#: Level that rare categories are grouped into.
OTHER_LEVEL = "Other"
ALL_SEGMENT = "All"
_DTYPES: dict[str, DType] = {"numeric": "float", "category": "category", "bool": "bool"}


class GenericCatalog(_BaseCatalog):
    """A catalog over a team's own columns: expressions may read ``columns`` and ``pit_ts``.

    The vendor checks of the packaged catalog (its PII list, its AUM segment values) do not
    apply; the calibration segment is the mapping's ``segment_col`` or one ``All`` segment,
    under the column name the training and scoring code keys on.
    """

    columns: tuple[str, ...]

    @model_validator(mode="after")
    def _check(self) -> GenericCatalog:
        names = [f.name for f in self.features] + [s.name for s in self.segments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {duplicates}")
        if CALIBRATION_SEGMENT not in {s.name for s in self.segments}:
            raise ValueError(f"segments lack the calibration segment {CALIBRATION_SEGMENT!r}")
        _ = self._compiled
        return self

    def _check_columns(self, name: str, tree: exp.Expression) -> None:
        refs = {c.name for c in tree.find_all(exp.Column)}
        unknown = sorted(refs - set(self.columns) - {"pit_ts"})
        if unknown:
            raise ValueError(f"feature {name}: unknown columns {unknown}")

    def raw_columns(self) -> set[str]:
        """Cleaned source columns read by any feature or segment."""
        return set().union(*self._references.values()) & set(self.columns)


def feature_sql(spec: FieldSpec, levels: tuple[str, ...]) -> str:
    """The catalog expression of one field over the cleaned column (typed already)."""
    col = _q(spec.name)
    if spec.kind == "date":
        # Age in days at the point in time; a date after it is not known yet: NULL.
        return (
            f"CASE WHEN {col} IS NULL OR {col} > pit_ts THEN NULL "
            f"ELSE DATE_DIFF('day', CAST({col} AS DATE), CAST(pit_ts AS DATE)) END"
        )
    if spec.kind == "category":
        if not levels:
            return f"CASE WHEN {col} IS NULL THEN NULL ELSE {_lit(OTHER_LEVEL)} END"
        kept = ", ".join(_lit(v) for v in levels)
        return (
            f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} IN ({kept}) THEN {col} "
            f"ELSE {_lit(OTHER_LEVEL)} END"
        )
    return col


def _feature(spec: FieldSpec, levels: tuple[str, ...]) -> Feature:
    is_date = spec.kind == "date"
    return Feature(
        name=f"{spec.name}_age_days" if is_date else spec.name,
        sql=feature_sql(spec, levels),
        source="lead",
        kind="calculable" if is_date else "mutable",
        dtype="float" if is_date else _DTYPES[spec.kind],
        display=spec.display or (f"Days since {spec.column}" if is_date else spec.column),
        unit="days" if is_date else "",
        description=f"from column {spec.column!r} ({spec.kind})",
    )


def kept_levels(counts: Mapping[str, int], min_count: int) -> tuple[str, ...]:
    """Levels seen at least ``min_count`` times, sorted (the rest become ``Other``)."""
    return tuple(sorted(v for v, n in counts.items() if n >= min_count and v != OTHER_LEVEL))


def _segment(mapping: SourceMapping, levels: Mapping[str, tuple[str, ...]]) -> Segment:
    if mapping.segment_col is None:
        return Segment(
            name=CALIBRATION_SEGMENT, sql=_lit(ALL_SEGMENT), display="All leads",
            values=(ALL_SEGMENT,),
        )  # fmt: skip
    name = safe_name(mapping.segment_col)
    values = (*levels.get(name, ()), OTHER_LEVEL, "Unknown")
    sql = feature_sql(FieldSpec(column=name, kind="category"), levels.get(name, ()))
    return Segment(
        name=CALIBRATION_SEGMENT, sql=f"COALESCE({sql}, 'Unknown')",
        display=mapping.segment_col, values=values,
    )  # fmt: skip


def catalog_from_mapping(
    mapping: SourceMapping,
    level_counts: Mapping[str, Mapping[str, int]],
    drop: frozenset[str] = frozenset(),
) -> GenericCatalog:
    """The catalog of every field the mapping does not exclude (and not in ``drop``).

    Args:
        level_counts: field name -> level -> count over the development rows (never the
            holdout, so the grouping of rare levels does not look ahead).
        drop: feature names to leave out (fields the leakage detector flagged).
    """
    specs = mapping.all_fields()
    levels = {
        s.name: kept_levels(level_counts.get(s.name, {}), mapping.min_level_count)
        for s in specs
        if s.kind == "category"
    }
    features = tuple(
        _feature(s, levels.get(s.name, ())) for s in specs if not s.exclude and s.name not in drop
    )
    return GenericCatalog(
        version=1,
        pii=(),
        segments=(_segment(mapping, levels),),
        features=features,
        columns=tuple(s.name for s in specs),
    )
