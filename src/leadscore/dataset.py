"""Build stage: the point-in-time training set and the scoring set, from one SQL generator.

Reads ``crm_leads`` and the all-vintage reps/firms views; writes ``training_set`` (one row per
eligible contacted lead: features and label), ``build_exclusions`` (lead id + reason) and
``scoring_set``. Training and scoring share :func:`pit_sql`, so a lead's features are the same
in both (docs/point-in-time.md).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from leadscore.catalog import Catalog
from leadscore.config import Settings
from leadscore.ingest.schema import FIRMS_COLUMNS, REPS_COLUMNS
from leadscore.warehouse import Warehouse, tables
from leadscore.warehouse.sql import ident as _q
from leadscore.warehouse.sql import text as _str_literal
from leadscore.warehouse.sql import timestamp as _ts_literal
from leadscore.warehouse.swap import next_table, replace_tables

JoinMode = Literal["asof", "quarter"]
#: Why a contacted lead is not in the training set, in order of precedence.
CRD_REASONS: tuple[str, ...] = ("crd_missing", "crd_malformed", "crd_not_found", "no_snapshot_yet")
LABEL_REASONS: tuple[str, ...] = ("negative_days", "right_censored")
#: A contact time after ``as_of``: a data error (the data cannot know it yet); counted, kept out.
FUTURE_REASON = "future_contact"
#: Columns every output table starts with; the catalog features follow.
KEY_COLUMNS: tuple[str, ...] = ("lead_id", "RepCRD", "OwnerId", "contact_ts")
LABEL_COLUMNS: tuple[str, ...] = ("converted_ts", "days_to_conversion", "target")
VINTAGE_COLUMNS: tuple[str, ...] = (
    "reps_snapshot_quarter",
    "reps_available_at",
    "firms_snapshot_quarter",
    "firms_available_at",
)
_FIRM_ONLY = tuple(c for c in FIRMS_COLUMNS if c not in REPS_COLUMNS)


@dataclass(frozen=True)
class PitContext:
    """Everything the point-in-time SQL depends on (the feast-style template context).

    ``training`` turns on the label and the exclusion reasons (negative days, censoring);
    otherwise the point in time is ``min(contact_ts, as_of)`` (``as_of`` for leads never
    contacted) and every requested lead comes back, with its ``pit_status``.
    """

    join: JoinMode
    training: bool
    as_of: datetime
    label_window_days: int
    lead_ids: tuple[str, ...] | None = None
    #: Scoring only: leads whose vendor vintage is joined as of ``as_of`` instead of their point
    #: in time (no vintage available at contact knew their CRD); features stay at ``pit_ts``.
    vendor_at_as_of: tuple[str, ...] = ()
    leads_table: str = tables.LEADS
    reps_table: str = tables.REPS_ALL_VINTAGES
    firms_table: str = tables.FIRMS_ALL_VINTAGES
    lead_id_col: str = "Id"
    contacted_ts_col: str = "Stage_Entered_Contacting__c"
    converted_ts_col: str = "Stage_Entered_Call_Scheduled__c"
    owner_col: str = "OwnerId"

    @classmethod
    def from_settings(cls, cfg: Settings, **kwargs: Any) -> PitContext:
        """Context with the CRM column mapping and label window of ``cfg``."""
        base: dict[str, Any] = {
            "label_window_days": cfg.dataset.label_window_days,
            "lead_id_col": cfg.crm.lead_id_col,
            "contacted_ts_col": cfg.crm.contacted_ts_col,
            "converted_ts_col": cfg.crm.converted_ts_col,
            "owner_col": cfg.crm.owner_col,
        }
        return cls(**{**base, **kwargs})


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did. Invariant: ``n_rows + sum(excluded) + n_negative_days + n_censored
    + n_future_contacts == n_contacted``."""

    join: str
    table: str
    exclusions_table: str
    as_of: datetime
    as_of_source: str
    label_window_days: int
    n_leads: int
    n_contacted: int
    n_duplicate_lead_ids: int
    excluded: dict[str, int]
    n_crd_matched: int
    n_negative_days: int
    n_censored: int
    n_rows: int
    n_positives: int
    n_late_conversions: int
    n_firm_unmatched: int
    n_future_contacts: int = 0
    timing: dict[str, float] = field(default_factory=dict)
    sql: str = ""

    @property
    def crd_match_rate(self) -> float:
        """Share of contacted leads that joined a reps vintage, among those contacted after a
        vintage was available (a lead contacted before any delivery cannot match any CRD)."""
        eligible = self.n_contacted - self.excluded.get("no_snapshot_yet", 0)
        return self.n_crd_matched / eligible if eligible else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the SQL text)."""
        out = asdict(self)
        out.pop("sql")
        out["as_of"] = self.as_of.isoformat()
        out["crd_match_rate"] = self.crd_match_rate
        return out


@dataclass(frozen=True)
class ScoringSetResult:
    """What ``build_scoring_set`` wrote: one row per requested lead, with its ``pit_status``."""

    table: str
    as_of: datetime
    n_rows: int
    by_status: dict[str, int]
    sql: str = ""


# ---------------------------------------------------------------------------- SQL generator
#: Width of a wrapped catalog expression's lines (they sit 2-4 columns in).
_WIDTH = 94


def _columns(items: list[str], indent: str = "    ") -> str:
    """One select item per line (multi-line items keep their own layout, indented)."""
    return ",\n".join(indent + item.replace("\n", "\n" + indent) for item in items)


def _words(sql: str) -> list[str]:
    """``sql`` split at the spaces outside string literals and quoted names."""
    words, start, quote = [], 0, ""
    for i, char in enumerate(sql):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == " ":
            words.append(sql[start:i])
            start = i + 1
    return [w for w in [*words, sql[start:]] if w]


def _wrapped(item: str, width: int = _WIDTH) -> str:
    """A long one-line select item wrapped at spaces outside quotes (same SQL: a newline is
    whitespace); continuation lines are indented under the item."""
    if len(item) <= width:
        return item
    lines = [""]
    for word in _words(item):
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return "\n  ".join(lines)


def _spine_cte(ctx: PitContext) -> str:
    contact = f"l.{_q(ctx.contacted_ts_col)}"
    if ctx.training:
        pit = contact
    else:
        as_of = _ts_literal(ctx.as_of)
        pit = f"CASE\n  WHEN {contact} IS NULL\n    OR {contact} > {as_of}\n  THEN {as_of}\n"
        pit += f"  ELSE {contact}\nEND"
    if ctx.lead_ids is not None:
        ids = ",\n      ".join(_str_literal(i) for i in ctx.lead_ids) or "NULL"
        where = f"CAST(l.{_q(ctx.lead_id_col)} AS VARCHAR) IN (\n      {ids}\n    )"
    elif ctx.training:
        where = f"{contact} IS NOT NULL"
    else:
        where = f"{contact} IS NOT NULL\n    AND {contact} <= {_ts_literal(ctx.as_of)}"
    scope = "the contacted leads" if ctx.training else "the leads to score"
    columns = [
        f"CAST(l.{_q(ctx.lead_id_col)} AS VARCHAR) AS lead_id",
        'l."RepCRD" AS "RepCRD"',
        "l.crd_status AS crd_status",
        f'l.{_q(ctx.owner_col)} AS "OwnerId"',
        f"{contact} AS contact_ts",
        f"l.{_q(ctx.converted_ts_col)} AS converted_ts",
        f"{pit} AS pit_ts",
    ]
    if ctx.vendor_at_as_of and not ctx.training:
        # leads no vintage knew at contact: join the vintage as of the run (features stay at
        # pit_ts); only these leads, and only when asked, so every other statement is unchanged
        late = ", ".join(_str_literal(i) for i in ctx.vendor_at_as_of)
        columns.append(
            f"CASE\n  WHEN CAST(l.{_q(ctx.lead_id_col)} AS VARCHAR) IN ({late})\n"
            f"  THEN {_ts_literal(ctx.as_of)}\n  ELSE {pit}\nEND AS join_ts"
        )
    return f"""-- 1. Restrict: {scope}, one row per lead id
--    (duplicate ids: earliest contact, then lowest RepCRD).
lead_spine AS (
  SELECT
{_columns(columns)}
  FROM {ctx.leads_table} AS l
  WHERE {where}
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY l.{_q(ctx.lead_id_col)}
    ORDER BY {contact} NULLS LAST, l."RepCRD" NULLS LAST
  ) = 1
)"""


def _candidates_cte(
    name: str, source: str, key: str, columns: list[str], prefix: str, restrict: str
) -> str:
    """Step 1 for a vintage table: the only place its columns are named."""
    items = [_q(c) for c in columns]
    items += [f"snapshot_quarter AS {prefix}_snapshot_quarter"]
    items += [f"available_at AS {prefix}_available_at"]
    return f"""{name} AS (
  SELECT
{_columns(items)}
  FROM {source}
  WHERE {_q(key)} IN ({restrict})
)"""


def _vintage_ctes(ctx: PitContext, rep_cols: list[str], firm_cols: list[str]) -> str:
    if ctx.join == "asof":
        at = "s.join_ts" if ctx.vendor_at_as_of and not ctx.training else "s.pit_ts"
        reps_on = f"r.reps_available_at <= {at}"
        firms_on = f"f.firms_available_at <= {at}"
        step2 = "2. Join on key with available_at <= the lead's point in time (as-of join)."
    else:
        quarter = "CAST(DATE_TRUNC('quarter', CAST(s.pit_ts AS DATE)) AS DATE)"
        reps_on = f"r.reps_snapshot_quarter\n      = {quarter}"
        firms_on = "f.firms_snapshot_quarter = r.reps_snapshot_quarter"
        step2 = "2. Join on key and contact quarter = snapshot_quarter (leaks: for comparison)."
    reps = _candidates_cte(
        "reps_candidates", ctx.reps_table, "RepCRD", ["RepCRD", "RIAFirmCRD", *rep_cols],
        "reps", 'SELECT "RepCRD" FROM lead_spine WHERE "RepCRD" IS NOT NULL',
    )  # fmt: skip
    firms = _candidates_cte(
        "firms_candidates", ctx.firms_table, "RIAFirmCRD", ["RIAFirmCRD", *firm_cols],
        "firms", 'SELECT "RIAFirmCRD" FROM reps_pit WHERE "RIAFirmCRD" IS NOT NULL',
    )  # fmt: skip
    return f"""-- 1. Restrict the reps vintages to the spine's CRDs, so the join touches few rows.
{reps},
-- {step2}
-- 3. Break ties: latest available_at, then latest snapshot_quarter.
-- 4. Keep the latest: one reps row per lead.
reps_pit AS (
  SELECT
    s.lead_id,
    r.*
  FROM lead_spine AS s
  JOIN reps_candidates AS r
    ON r."RepCRD" = s."RepCRD"
    AND {reps_on}
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY s.lead_id
    ORDER BY r.reps_available_at DESC, r.reps_snapshot_quarter DESC
  ) = 1
),
-- 1. Restrict the firms vintages to the firms of the matched rep rows.
{firms},
-- {step2}
--    The firm is the rep row's RIAFirmCRD, at the same point in time.
-- 3. Break ties: latest available_at, then latest snapshot_quarter.
-- 4. Keep the latest: one firms row per lead.
firms_pit AS (
  SELECT
    r.lead_id,
    f.*
  FROM reps_pit AS r
  JOIN lead_spine AS s ON s.lead_id = r.lead_id
  JOIN firms_candidates AS f
    ON f."RIAFirmCRD" = r."RIAFirmCRD"
    AND {firms_on}
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY r.lead_id
    ORDER BY f.firms_available_at DESC, f.firms_snapshot_quarter DESC
  ) = 1
),
-- The CRDs present in some reps vintage (tells "not found" from "not yet delivered").
reps_seen AS (
  SELECT DISTINCT "RepCRD"
  FROM reps_candidates
)"""


def _joined_cte() -> str:
    return """-- 5. Left-join back to the lead spine, so no lead disappears silently; say why
--    a lead has no vintage.
joined AS (
  SELECT
    s.*,
    r.* EXCLUDE (lead_id, "RepCRD"),
    f.* EXCLUDE (lead_id, "RIAFirmCRD"),
    CASE
      WHEN s.crd_status = 'missing' THEN 'crd_missing'
      WHEN s.crd_status = 'malformed' OR s."RepCRD" IS NULL THEN 'crd_malformed'
      WHEN r.lead_id IS NOT NULL THEN 'ok'
      WHEN seen."RepCRD" IS NULL THEN 'crd_not_found'
      ELSE 'no_snapshot_yet'
    END AS pit_status
  FROM lead_spine AS s
  LEFT JOIN reps_pit AS r ON r.lead_id = s.lead_id
  LEFT JOIN firms_pit AS f ON f.lead_id = s.lead_id
  LEFT JOIN reps_seen AS seen ON seen."RepCRD" = s."RepCRD"
)"""


def _label_columns(ctx: PitContext) -> list[str]:
    window = f"INTERVAL {int(ctx.label_window_days)} DAY"
    return [
        "converted_ts",
        "DATE_DIFF('day', CAST(contact_ts AS DATE), CAST(converted_ts AS DATE))"
        " AS days_to_conversion",
        "CAST(\n  CASE\n    WHEN converted_ts >= contact_ts\n"
        f"    AND converted_ts <= contact_ts + {window}\n    THEN 1\n    ELSE 0\n  END\n"
        "AS BIGINT) AS target",
    ]


def _exclusion_column(ctx: PitContext) -> str:
    window = f"INTERVAL {int(ctx.label_window_days)} DAY"
    return (
        f"CASE\n  WHEN contact_ts > {_ts_literal(ctx.as_of)} THEN '{FUTURE_REASON}'\n"
        "  WHEN pit_status <> 'ok' THEN pit_status\n"
        "  WHEN converted_ts < contact_ts THEN 'negative_days'\n"
        f"  WHEN contact_ts > {_ts_literal(ctx.as_of)} - {window}\n"
        "  THEN 'right_censored'\nEND AS exclusion_reason"
    )


def _final_select(ctx: PitContext, catalog: Catalog) -> str:
    out = [_q(c) for c in KEY_COLUMNS]
    out += _label_columns(ctx) if ctx.training else ["pit_ts"]
    out += list(VINTAGE_COLUMNS)
    out += [_wrapped(catalog.select_sql(s.name)) for s in catalog.segments]
    out += [_wrapped(catalog.select_sql(name)) for name in catalog.model_features()]
    out.append("pit_status")
    if ctx.training:
        out.append(_exclusion_column(ctx))
    label = ", the label and the exclusion reason" if ctx.training else ""
    return (
        f"-- 6. Output: keys, vintages, catalog segments and features{label}.\n"
        "--    (Catalog expressions are compiled from features.yaml and wrapped at spaces.)\n"
        f"SELECT\n{_columns(out, '  ')}\nFROM joined"
    )


def pit_sql(ctx: PitContext, catalog: Catalog) -> str:
    """The one point-in-time SQL statement (DuckDB dialect) for ``ctx``.

    One output row per lead of the spine (invariant), whether or not it matched a vintage:
    ``pit_status`` says why not, and in training ``exclusion_reason`` is NULL for the rows
    that belong in the training set. Each column is on its own line and each vintage column
    is named once (in its ``*_candidates`` step); ``tests/golden/`` holds the expected text.
    """
    raw = catalog.raw_columns() | {"Home_MetropolitanArea", "TotalAssetsInMillions"}
    rep_cols = sorted(c for c in raw if c in REPS_COLUMNS and c not in ("RepCRD", "RIAFirmCRD"))
    firm_cols = sorted(c for c in raw if c in _FIRM_ONLY)
    header = (
        f"-- leadscore point-in-time query: join={ctx.join}, "
        f"{'training (label on)' if ctx.training else 'scoring (label off)'},\n"
        f"-- as_of={ctx.as_of.astimezone(UTC).isoformat()}, catalog={catalog.fingerprint[:12]}"
    )
    ctes = ",\n".join([_spine_cte(ctx), _vintage_ctes(ctx, rep_cols, firm_cols), _joined_cte()])
    return f"{header}\nWITH\n{ctes}\n{_final_select(ctx, catalog)}"


# ---------------------------------------------------------------------------- runners
def resolve_as_of(wh: Warehouse, cfg: Settings, as_of: datetime | None) -> tuple[datetime, str]:
    """The extraction time: the argument, else ``cfg.dataset.as_of``, else the latest CRM
    timestamp in the data (never the wall clock)."""
    if as_of is not None:
        return as_of, "argument"
    if cfg.dataset.as_of is not None:
        return cfg.dataset.as_of, "config"
    cols = [cfg.crm.contacted_ts_col, cfg.crm.converted_ts_col]
    latest = ", ".join(f"MAX({_q(c)})" for c in cols)
    row = wh.query(f"SELECT {latest} FROM {tables.LEADS}").to_pylist()[0]
    values = [v for v in row.values() if v is not None]
    if not values:
        raise ValueError("no as_of: set dataset.as_of; the leads carry no timestamps")
    return max(values), "data"


def build_training_set(
    wh: Warehouse,
    cfg: Settings,
    catalog: Catalog,
    join: JoinMode | None = None,
    *,
    as_of: datetime | None = None,
    table: str | None = None,
    exclusions_table: str | None = None,
) -> BuildResult:
    """Build the point-in-time training set in the warehouse.

    Args:
        join: ``asof`` (default from config) or ``quarter`` (the legacy leaky join, for
            comparison; writes ``training_set_quarter`` unless ``table`` is given).
        as_of: extraction time for right-censoring (default ``cfg.dataset.as_of``, else the
            latest CRM timestamp).

    Invariant: one row per eligible contacted lead; every other contacted lead is in the
    exclusions table with its reason.
    """
    join = join or cfg.dataset.join
    suffix = "" if join == "asof" else f"_{join}"
    table = table or tables.TRAINING_SET + suffix
    exclusions_table = exclusions_table or tables.BUILD_EXCLUSIONS + suffix
    spine = f"{table}_spine"
    timing: dict[str, float] = {}
    started = time.perf_counter()
    as_of, source = resolve_as_of(wh, cfg, as_of)
    ctx = PitContext.from_settings(cfg, join=join, training=True, as_of=as_of)
    sql = pit_sql(ctx, catalog)
    # The spine is scratch; the two outputs change together, DML-only (see warehouse.swap).
    wh.execute(f"CREATE OR REPLACE TABLE {spine} AS\n{sql}")
    timing["pit_join_s"] = time.perf_counter() - started
    wh.execute(
        f"CREATE OR REPLACE TABLE {next_table(table)} AS\n"
        f"SELECT * EXCLUDE (pit_status, exclusion_reason)\nFROM {spine}\n"
        "WHERE exclusion_reason IS NULL\nORDER BY contact_ts, lead_id"
    )
    wh.execute(
        f"CREATE OR REPLACE TABLE {next_table(exclusions_table)} AS SELECT lead_id, "
        f"exclusion_reason AS reason FROM {spine} WHERE exclusion_reason IS NOT NULL"
        " ORDER BY lead_id"
    )
    replace_tables(wh, [table, exclusions_table])
    counts = _build_counts(wh, cfg, spine, ctx)
    timing["total_s"] = time.perf_counter() - started
    return BuildResult(
        join=join,
        table=table,
        exclusions_table=exclusions_table,
        as_of=as_of,
        as_of_source=source,
        label_window_days=ctx.label_window_days,
        timing=timing,
        sql=sql,
        **counts,
    )


def _build_counts(wh: Warehouse, cfg: Settings, spine: str, ctx: PitContext) -> dict[str, Any]:
    window = f"INTERVAL {int(ctx.label_window_days)} DAY"
    rows = wh.query(
        f"""SELECT exclusion_reason, pit_status,
          COUNT(*) AS n,
          SUM(target) AS n_pos,
          SUM(CASE WHEN converted_ts > contact_ts + {window} THEN 1 ELSE 0 END) AS n_late,
          SUM(CASE WHEN pit_status = 'ok' AND firms_snapshot_quarter IS NULL
              THEN 1 ELSE 0 END) AS n_firm_unmatched
        FROM {spine} GROUP BY exclusion_reason, pit_status"""
    ).to_pylist()
    by_reason: dict[str | None, int] = {}
    for row in rows:
        by_reason[row["exclusion_reason"]] = by_reason.get(row["exclusion_reason"], 0) + row["n"]
    kept = [r for r in rows if r["exclusion_reason"] is None]
    contact = _q(cfg.crm.contacted_ts_col)
    lead_id = _q(cfg.crm.lead_id_col)
    leads = wh.query(
        f"SELECT COUNT(*) AS n, COUNT({contact}) AS n_contacted, "
        f"COUNT(DISTINCT CASE WHEN {contact} IS NOT NULL THEN {lead_id} END) AS n_distinct "
        f"FROM {tables.LEADS}"
    ).to_pylist()[0]
    return {
        "n_leads": leads["n"],
        "n_contacted": sum(r["n"] for r in rows),
        "n_duplicate_lead_ids": leads["n_contacted"] - leads["n_distinct"],
        "excluded": {reason: by_reason.get(reason, 0) for reason in CRD_REASONS},
        "n_crd_matched": sum(r["n"] for r in rows if r["pit_status"] == "ok"),
        "n_negative_days": by_reason.get("negative_days", 0),
        "n_censored": by_reason.get("right_censored", 0),
        "n_future_contacts": by_reason.get(FUTURE_REASON, 0),
        "n_rows": sum(r["n"] for r in kept),
        "n_positives": int(sum(r["n_pos"] or 0 for r in kept)),
        "n_late_conversions": int(sum(r["n_late"] or 0 for r in kept)),
        "n_firm_unmatched": int(sum(r["n_firm_unmatched"] or 0 for r in kept)),
    }


def build_scoring_set(
    wh: Warehouse,
    cfg: Settings,
    catalog: Catalog,
    lead_ids: list[str] | tuple[str, ...] | None = None,
    *,
    as_of: datetime,
    join: JoinMode | None = None,
    table: str = tables.SCORING_SET,
    vendor_at_as_of: tuple[str, ...] = (),
) -> ScoringSetResult:
    """Build the scoring set: the same SQL as training, label and censoring off.

    Args:
        lead_ids: leads to score; default every lead contacted at or before ``as_of``.
        as_of: the scoring time. Each lead's point in time is ``min(contact_ts, as_of)``, so a
            training lead scored as of its contact time gets bit-identical features.
        vendor_at_as_of: leads whose vintage is joined as of ``as_of`` (a vintage delivered
            after their contact knows their CRD); their features are still computed at their
            point in time.

    Invariant: one row per requested lead that exists, with ``pit_status`` = ``ok`` or the
    reason it has no vintage (its features are then NULL); the score stage rejects those.
    """
    ids = None if lead_ids is None else tuple(str(i) for i in lead_ids)
    ctx = PitContext.from_settings(
        cfg, join=join or cfg.dataset.join, training=False, as_of=as_of, lead_ids=ids,
        vendor_at_as_of=tuple(vendor_at_as_of),
    )  # fmt: skip
    sql = pit_sql(ctx, catalog)
    # one statement, atomic on its own (no transaction: BigQuery allows no DDL in one)
    wh.execute(f"CREATE OR REPLACE TABLE {table} AS\n{sql}\nORDER BY lead_id")
    rows = wh.query(f"SELECT pit_status, COUNT(*) AS n FROM {table} GROUP BY pit_status")
    by_status = {r["pit_status"]: r["n"] for r in rows.to_pylist()}
    return ScoringSetResult(
        table=table, as_of=as_of, n_rows=sum(by_status.values()), by_status=by_status, sql=sql
    )
