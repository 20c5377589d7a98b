"""GoogleSQL (ZetaSQL, BigQuery's SQL front end) for the tests: analyze what BigQuery would run.

No BigQuery is reachable from a test, so the BigQuery backend is checked offline in two halves:

* :class:`RecordingClient` stands in for ``google.cloud.bigquery.Client`` and records every
  query script and load job the real :class:`BigQueryWarehouse` sends it. :class:`ShadowWarehouse`
  drives that real backend *and* a real DuckDB warehouse with the same calls: DuckDB answers the
  queries (so real stage functions run end to end on a small world, with their real control
  flow), BigQuery's half records exactly what would have been sent.
* :class:`GoogleSql` analyzes the recorded scripts, in order, with Google's ZetaSQL analyzer
  (the ``zetasql`` package: the C++ analyzer compiled to WebAssembly, run by ``wasmtime``),
  against a catalog that starts empty and grows as BigQuery's would: a load job adds its table
  with the Arrow schema it loads, ``CREATE TABLE``/``VIEW`` adds the analyzed output columns,
  ``DROP`` removes. A statement that references a missing column, calls a function BigQuery
  lacks or mixes types fails here with the analyzer's own message.

Starting the analyzer compiles a 28 MB WebAssembly module (~20-90 s on a busy machine), so the
test session holds one instance (``googlesql`` fixture in ``test_bigquery_sql.py``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.warehouse.base import WriteMode
from leadscore.warehouse.bigquery import BigQueryWarehouse
from leadscore.warehouse.duckdb import DuckDBWarehouse

DATASET = "LeadScoring"


# ----------------------------------------------------------------------------- recording
@dataclass(frozen=True)
class Sent:
    """One request the BigQuery client received: a query script, or a load job."""

    label: str  # the workload that sent it
    script: str = ""  # query jobs: the SQL text, possibly several statements
    load_table: str = ""  # load jobs: "dataset.table"
    load_schema: pa.Schema | None = None
    write_disposition: str = ""
    source_format: str = ""


class _Job:
    def result(self) -> _Job:
        return self

    def to_arrow(self) -> pa.Table:
        return pa.table({})


@dataclass
class RecordingClient:
    """Stands in for ``google.cloud.bigquery.Client``: records what it is sent, runs nothing."""

    sent: list[Sent] = field(default_factory=list)
    label: str = ""

    def query(self, sql: str) -> _Job:
        self.sent.append(Sent(self.label, script=sql))
        return _Job()

    def load_table_from_file(self, file: Any, destination: str, job_config: Any = None) -> _Job:
        schema = pq.read_schema(io.BytesIO(file.read()))
        self.sent.append(
            Sent(
                self.label,
                load_table=destination,
                load_schema=schema,
                write_disposition=str(job_config.write_disposition),
                source_format=str(job_config.source_format),
            )
        )
        return _Job()

    def close(self) -> None:
        """Nothing to release."""


class ShadowWarehouse:
    """The real BigQuery backend (over a :class:`RecordingClient`) and a real DuckDB warehouse,
    driven by the same calls. Reports ``dialect = "bigquery"`` so stage code takes its BigQuery
    branches; DuckDB answers queries and table listings.

    Also checks what neither half sees alone: a ``query`` inside ``transaction()`` would return
    no rows on BigQuery (the script only runs at COMMIT), so it is recorded as a problem.
    """

    dialect = "bigquery"

    def __init__(self, path: Path, dataset: str = DATASET) -> None:
        self.client = RecordingClient()
        self.bigquery = BigQueryWarehouse(project="test", dataset=dataset, client=self.client)
        self.duckdb = DuckDBWarehouse(path)
        self.problems: list[str] = []
        self._depth = 0

    @contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        """Tag everything sent inside the block with ``label`` (the workload's name)."""
        self.client.label = label
        try:
            yield
        finally:
            self.client.label = ""

    def execute(self, sql: str) -> None:
        self.bigquery.execute(sql)
        self.duckdb.execute(sql)

    def query(self, sql: str) -> pa.Table:
        if self._depth:
            self.problems.append(f"query inside a transaction returns nothing on BigQuery: {sql}")
        self.bigquery.query(sql)
        return self.duckdb.query(sql)

    def load_arrow(self, table: str, data: pa.Table, mode: WriteMode = "replace") -> None:
        self.bigquery.load_arrow(table, data, mode)
        self.duckdb.load_arrow(table, data, mode)

    def load_parquet(self, table: str, path: Path, mode: WriteMode = "replace") -> None:
        self.bigquery.load_parquet(table, path, mode)
        self.duckdb.load_parquet(table, path, mode)

    def create_view(self, name: str, sql: str) -> None:
        self.bigquery.create_view(name, sql)
        self.duckdb.create_view(name, sql)

    def table_exists(self, name: str) -> bool:
        return self.duckdb.table_exists(name)

    def list_tables(self, prefix: str = "") -> list[str]:
        return self.duckdb.list_tables(prefix)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(self.bigquery.transaction())
            stack.enter_context(self.duckdb.transaction())
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    def close(self) -> None:
        self.bigquery.close()
        self.duckdb.close()


# ----------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class Verdict:
    """The analyzer's verdict on one statement."""

    label: str
    sql: str
    kind: str  # resolved statement kind, e.g. ResolvedMergeStmt; "" when refused
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


#: Arrow types of loaded data -> GoogleSQL type names (what a Parquet load job creates).
_ARROW_KINDS: Mapping[str, str] = {
    "string": "TYPE_STRING",
    "large_string": "TYPE_STRING",
    "int64": "TYPE_INT64",
    "int32": "TYPE_INT64",
    "double": "TYPE_DOUBLE",
    "bool": "TYPE_BOOL",
    "date32[day]": "TYPE_DATE",
}


class GoogleSql:
    """One ZetaSQL analyzer with BigQuery-like settings and a catalog that evolves with the
    statements analyzed (dataset ``LeadScoring``: tables are named ``LeadScoring.<table>``)."""

    def __init__(self, dataset: str = DATASET) -> None:
        from zetasql.api import Analyzer
        from zetasql.types import AnalyzerOptions, LanguageOptions
        from zetasql.types.proto_model import ProductMode

        # Every released language feature (the Spanner-only legacy DDL is not among them),
        # BigQuery's external product mode (FLOAT64, no INT32/UINT types), QUALIFY reserved as
        # in BigQuery.
        language = LanguageOptions.maximum_features()
        language.product_mode = ProductMode.PRODUCT_EXTERNAL
        language.reserved_keywords = ["QUALIFY"]
        self._language = language
        self._options = AnalyzerOptions(language_options=language, default_timezone="UTC")
        self._analyzer_cls = Analyzer
        self.dataset = dataset
        self.tables: dict[str, list[tuple[str, Any]]] = {}

    # --- catalog
    def simple_type(self, kind: str) -> Any:
        from zetasql.types import Type, TypeKind

        return Type(type_kind=int(getattr(TypeKind, kind)))

    def add_table(self, name: str, columns: list[tuple[str, Any]]) -> None:
        """Add (or replace) ``dataset.name`` with ``(column, zetasql Type)`` pairs."""
        self.tables[name.lower()] = [(name, None), *columns]

    def add_arrow_table(self, name: str, schema: pa.Schema) -> None:
        """Add the table a Parquet load job of ``schema`` creates."""
        self.add_table(name, [(f.name, self.simple_type(_arrow_kind(f.type))) for f in schema])

    @staticmethod
    def arrow_kinds(schema: pa.Schema) -> dict[str, str]:
        """Column -> GoogleSQL type kind name of the table a load job of ``schema`` creates."""
        return {f.name: _arrow_kind(f.type) for f in schema}

    def table_names(self) -> list[str]:
        """The tables and views in the catalog now, by their original names."""
        return sorted(entry[0][0] for entry in self.tables.values())

    def columns(self, name: str) -> dict[str, str]:
        """Column name -> GoogleSQL type kind name of a catalog table (``{}`` if absent)."""
        from zetasql.types import TypeKind

        entry = self.tables.get(name.lower(), [])[1:]
        return {c: TypeKind(t.type_kind).name for c, t in entry}

    def _catalog(self) -> Any:
        from zetasql.types import SimpleCatalog, SimpleColumn, SimpleTable
        from zetasql.types import ZetaSQLBuiltinFunctionOptions as Builtins

        tables = [
            SimpleTable(
                name=entry[0][0],
                column=[SimpleColumn(name=c, type=t, is_writable_column=True) for c, t in entry[1:]],
            )
            for entry in self.tables.values()
        ]
        root = SimpleCatalog(name="bigquery", table=[])
        root.catalog.append(SimpleCatalog(name=self.dataset, table=tables))
        root.builtin_function_options = Builtins(language_options=self._language)
        return root

    # --- analysis
    def analyze_script(self, script: str, label: str = "") -> list[Verdict]:
        """Analyze each statement of ``script`` in order, applying its DDL to the catalog."""
        from zetasql.types import ParseResumeLocation

        location = ParseResumeLocation(input=script, byte_position=0)
        verdicts: list[Verdict] = []
        while location.byte_position < len(script.encode()) and script.encode()[
            location.byte_position :
        ].strip(b" \n\t;"):
            start = location.byte_position
            analyzer = self._analyzer_cls(self._options, self._catalog())
            try:
                stmt = analyzer.analyze_next_statement(location)
            except Exception as exc:  # the service raises ServerError with the analyzer message
                text = script.encode()[start:].decode()
                verdicts.append(Verdict(label, text.split(";\n")[0], "", _message(exc)))
                break  # the script cannot be resumed past a refused statement
            text = script.encode()[start : location.byte_position].decode().strip(" \n;")
            verdicts.append(Verdict(label, text, type(stmt).__name__))
            self._apply(stmt)
        return verdicts

    def analyze(self, sql: str, label: str = "") -> Verdict:
        """Analyze one statement (no catalog change is kept when it is DDL)."""
        saved = dict(self.tables)
        try:
            verdicts = self.analyze_script(sql, label)
        finally:
            self.tables = saved
        return verdicts[0]

    def replay(self, sent: list[Sent]) -> list[Verdict]:
        """Analyze every recorded request in order; load jobs add their table."""
        verdicts: list[Verdict] = []
        for item in sent:
            if item.load_schema is not None:
                self.add_arrow_table(item.load_table.split(".")[-1], item.load_schema)
                continue
            verdicts += self.analyze_script(item.script, item.label)
        return verdicts

    def _apply(self, stmt: Any) -> None:
        kind = type(stmt).__name__
        if kind in ("ResolvedCreateTableAsSelectStmt", "ResolvedCreateViewStmt"):
            cols = [(c.name, c.column.type) for c in stmt.output_column_list]
        elif kind == "ResolvedCreateTableStmt":
            cols = [(c.name, c.type) for c in stmt.column_definition_list]
        elif kind == "ResolvedDropStmt":
            self.tables.pop(stmt.name_path[-1].lower(), None)
            return
        else:
            return
        name = stmt.name_path[-1]
        if "IF_NOT_EXISTS" in str(stmt.create_mode) and name.lower() in self.tables:
            return
        self.add_table(name, cols)


def _arrow_kind(type_: pa.DataType) -> str:
    if pa.types.is_timestamp(type_):
        return "TYPE_TIMESTAMP"
    try:
        return _ARROW_KINDS[str(type_)]
    except KeyError:
        raise ValueError(f"no BigQuery type for Arrow {type_} in a load job") from None


def _message(exc: Exception) -> str:
    return str(exc).replace("[INVALID_ARGUMENT] ", "").strip()
