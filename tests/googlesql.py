"""GoogleSQL (ZetaSQL, BigQuery's SQL front end) for the tests: analyze what BigQuery would run.

No BigQuery is reachable from a test, so the BigQuery backend is checked offline in two halves:

* ``bigquery_shadow.py``: :class:`RecordingClient` stands in for the BigQuery client and records
  every query script and load job the real :class:`BigQueryWarehouse` sends it;
  :class:`ShadowWarehouse` drives that real backend *and* a real DuckDB warehouse with the same
  calls: DuckDB answers the queries (so real stage functions run end to end on a small world, with
  their real control flow), BigQuery's half records exactly what would have been sent.
* :class:`GoogleSql` analyzes the recorded scripts, in order, with Google's ZetaSQL analyzer
  (the ``zetasql`` package: the C++ analyzer compiled to WebAssembly, run by ``wasmtime``),
  against a catalog that starts empty and grows as BigQuery's would: a load job adds its table
  with the Arrow schema it loads, ``CREATE TABLE``/``VIEW`` adds the analyzed output columns,
  ``DROP`` removes. A statement that references a missing column, calls a function BigQuery
  lacks or mixes types fails here with the analyzer's own message.

Starting the analyzer compiles a 28 MB WebAssembly module (about 30 s of CPU; 1-2 minutes of wall
time on a busy machine), so the test session holds one instance (``googlesql`` fixture in
``test_bigquery_sql.py``).
"""

from __future__ import annotations

import ctypes
import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from bigquery_shadow import DATASET, Sent


# ----------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class Verdict:
    """The analyzer's verdict on one statement."""

    label: str
    sql: str
    kind: str  # resolved statement kind, e.g. ResolvedMergeStmt; "" when refused
    error: str = ""
    in_transaction: bool = False  # between BEGIN TRANSACTION and COMMIT in its script

    @property
    def is_ddl(self) -> bool:
        """Creates, alters or drops a table or view (BigQuery refuses that in a transaction)."""
        return self.kind.startswith(("ResolvedCreate", "ResolvedDrop", "ResolvedAlter"))

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
        from zetasql.types import AnalyzerOptions, LanguageOptions
        from zetasql.types.proto_model import ProductMode

        # Every released language feature (the Spanner-only legacy DDL is not among them),
        # BigQuery's external product mode (FLOAT64, no INT32/UINT types), QUALIFY reserved as
        # in BigQuery.
        language = LanguageOptions.maximum_features()
        language.product_mode = ProductMode.PRODUCT_EXTERNAL
        language.reserved_keywords = ["QUALIFY"]
        self._language = language
        options = AnalyzerOptions(language_options=language, default_timezone="UTC")
        self._options_proto = options.to_proto()
        self.dataset = dataset
        #: lower-case name -> [(name, serial), (column, zetasql Type), ...]; the serials key
        #: the registered catalog, so entries are replaced, never changed in place.
        self.tables: dict[str, list[tuple[str, Any]]] = {}
        self._serial = itertools.count()
        self._cached: tuple[tuple[Any, ...], int | None] = ((), None)

    # --- catalog
    def simple_type(self, kind: str) -> Any:
        from zetasql.types import Type, TypeKind

        return Type(type_kind=int(getattr(TypeKind, kind)))

    def add_table(self, name: str, columns: list[tuple[str, Any]]) -> None:
        """Add (or replace) ``dataset.name`` with ``(column, zetasql Type)`` pairs."""
        self.tables[name.lower()] = [(name, next(self._serial)), *columns]

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

    def _registered_catalog(self, client: Any) -> int:
        """Id of the current catalog in the analyzer service, registered again only when a
        table changed (building a catalog's built-in functions is the costly part of a call)."""
        from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as service

        key = tuple(entry[0] for entry in self.tables.values())
        if self._cached[0] == key and self._cached[1] is not None:
            return self._cached[1]
        if self._cached[1] is not None:
            request = service.UnregisterRequest(registered_id=self._cached[1])
            _call(client, "ZetaSqlLocalService_UnregisterCatalog", request.SerializeToString())
        request = service.RegisterCatalogRequest()
        request.simple_catalog.ParseFromString(self._catalog().to_proto().SerializeToString())
        raw = _call(client, "ZetaSqlLocalService_RegisterCatalog", request.SerializeToString())
        registered = service.RegisterResponse.FromString(raw).registered_id
        self._cached = (key, registered)
        return registered

    def _catalog(self) -> Any:
        from zetasql.types import SimpleCatalog, SimpleColumn, SimpleTable
        from zetasql.types import ZetaSQLBuiltinFunctionOptions as Builtins

        tables = [
            SimpleTable(
                name=entry[0][0],
                column=[
                    SimpleColumn(name=c, type=t, is_writable_column=True) for c, t in entry[1:]
                ],
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
        data = script.encode()
        position, verdicts, in_transaction = 0, [], False
        while data[position:].strip(b" \n\t;"):
            try:
                kind, stmt, position_after = self._analyze_at(script, position)
            except Exception as exc:  # ServerError, carrying the analyzer's message
                text = data[position:].decode().split(";\n")[0].strip()
                verdicts.append(Verdict(label, text, "", _message(exc)))
                break  # the script cannot be resumed past a refused statement
            text = data[position:position_after].decode().strip(" \n;")
            in_transaction = in_transaction or kind == "ResolvedBeginStmt"
            verdicts.append(Verdict(label, text, kind, in_transaction=in_transaction))
            in_transaction = in_transaction and kind not in ("ResolvedCommitStmt",)
            self._apply(kind, stmt)
            position = position_after
        return verdicts

    def _analyze_at(self, script: str, position: int) -> tuple[str, Any, int]:
        """Analyze the statement at byte ``position``: (kind, resolved proto, next position).

        The response is decoded without the resolved query and expression trees (see
        :func:`_lite_response`): deep expressions, such as a sum over forty columns, exceed
        protobuf's nesting limit, and only the statement's kind and output columns are needed.
        """
        from zetasql.core.local_service import ZetaSqlLocalService
        from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2

        client = ZetaSqlLocalService.get_instance().wasm_client
        request = local_service_pb2.AnalyzeRequest()
        request.options.CopyFrom(self._options_proto)
        request.registered_catalog_id = self._registered_catalog(client)
        request.parse_resume_location.input = script
        request.parse_resume_location.byte_position = position
        raw = _call(client, "ZetaSqlLocalService_Analyze", request.SerializeToString())
        response = _lite_response().FromString(raw)
        stmt = response.resolved_statement
        while stmt.DESCRIPTOR.name.startswith("AnyResolved"):
            stmt = getattr(stmt, stmt.WhichOneof("node"))
        return stmt.DESCRIPTOR.name.removesuffix("Proto"), stmt, response.resume_byte_position

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

    def _apply(self, kind: str, stmt: Any) -> None:
        if kind == "ResolvedDropStmt":
            self.tables.pop(stmt.name_path[-1].lower(), None)
            return
        if kind in ("ResolvedCreateTableAsSelectStmt", "ResolvedCreateViewStmt"):
            outputs = _field(stmt, "output_column_list")
            cols = [(c.name, self._type(c.column.type)) for c in outputs]
        elif kind == "ResolvedCreateTableStmt":
            cols = [(c.name, self._type(c.type)) for c in _field(stmt, "column_definition_list")]
        else:
            return
        name = _field(stmt, "name_path")[-1]
        if _field(stmt, "create_mode") == _CREATE_IF_NOT_EXISTS and name.lower() in self.tables:
            return
        self.add_table(name, cols)

    @staticmethod
    def _type(lite: Any) -> Any:
        from zetasql.types import Type, parse_proto
        from zetasql.wasi._pb2.zetasql.public import type_pb2

        return parse_proto(type_pb2.TypeProto.FromString(lite.SerializeToString())).as_type(Type)


_CREATE_IF_NOT_EXISTS = 2  # ResolvedCreateStatementEnums.CreateMode.CREATE_IF_NOT_EXISTS
_DEEP = frozenset({".zetasql.AnyResolvedScanProto", ".zetasql.AnyResolvedExprProto"})


def _call(client: Any, method: str, request: bytes) -> bytes:
    """The package's ``WasmClient._call_grpc_method`` with whole-buffer memory copies (it
    copies byte by byte in Python, which dominates the time for a catalog of many tables)."""
    from zetasql.core.exceptions import ServerError

    store = client.store
    request_ptr = client.allocate_bytes(len(request))
    size_ptr = client.allocate_bytes(4)
    try:
        base = ctypes.cast(client.memory.data_ptr(), ctypes.c_void_p).value or 0
        ctypes.memmove(base + request_ptr, request, len(request))
        response_ptr = client.exports[method](store, request_ptr, len(request), size_ptr)
        if response_ptr == 0:
            raise ServerError.from_error_string(client.get_last_error())
        base = ctypes.cast(client.memory.data_ptr(), ctypes.c_void_p).value or 0
        size = int.from_bytes(ctypes.string_at(base + size_ptr, 4), "little")
        response = ctypes.string_at(base + response_ptr, size)
        client.free_bytes(response_ptr)
        return response
    finally:
        client.free_bytes(request_ptr)
        client.free_bytes(size_ptr)


def _field(stmt: Any, name: str) -> Any:
    """Field ``name`` of a resolved statement proto or of its ``parent`` chain."""
    while name not in stmt.DESCRIPTOR.fields_by_name:
        stmt = stmt.parent
    return getattr(stmt, name)


@functools.cache
def _lite_response() -> Any:
    """``AnalyzeResponse`` as a message class whose resolved scans and expressions are unknown
    fields: skipped by length when decoding, never descended into."""
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2

    files: dict[str, Any] = {}

    def collect(fd: Any) -> None:
        if fd.name not in files:
            for dep in fd.dependencies:
                collect(dep)
            files[fd.name] = fd

    def strip(messages: Any) -> None:
        for message in messages:
            keep = [f for f in message.field if f.type_name not in _DEEP]
            del message.field[:]
            message.field.extend(keep)
            strip(message.nested_type)

    collect(local_service_pb2.DESCRIPTOR)
    pool = descriptor_pool.DescriptorPool()
    for fd in files.values():
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        strip(proto.message_type)
        pool.Add(proto)
    name = "zetasql.local_service.AnalyzeResponse"
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def _arrow_kind(type_: pa.DataType) -> str:
    if pa.types.is_timestamp(type_):
        return "TYPE_TIMESTAMP"
    try:
        return _ARROW_KINDS[str(type_)]
    except KeyError:
        raise ValueError(f"no BigQuery type for Arrow {type_} in a load job") from None


def _message(exc: Exception) -> str:
    return str(exc).replace("[INVALID_ARGUMENT] ", "").strip()
