"""Carrying SQL across dialects with sqlglot: write once (DuckDB), run on BigQuery too."""

from __future__ import annotations

import sqlglot
from sqlglot import exp


def transpile(sql: str, dialect: str, dataset: str | None = None) -> list[str]:
    """Translate DuckDB-dialect SQL to ``dialect``, qualifying bare table names with ``dataset``.

    Raises:
        sqlglot.errors.ParseError: the statement is not valid DuckDB SQL.
    """
    statements = sqlglot.parse(sql, read="duckdb")
    out = []
    for stmt in statements:
        if stmt is None:
            continue
        if dataset:
            stmt = _qualify(stmt, dataset)
        out.append(stmt.sql(dialect=dialect, pretty=True))
    return out


def _qualify(stmt: exp.Expr, dataset: str) -> exp.Expr:
    ctes = {cte.alias_or_name for cte in stmt.find_all(exp.CTE)}

    def visit(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Table)
            and node.name
            and not node.args.get("db")
            and node.name not in ctes
            and not isinstance(node.this, exp.Func)
        ):
            node.set("db", exp.to_identifier(dataset))
        return node

    return stmt.transform(visit)
