"""Table and column names spelled the way the database will look them up.

The validator matches names without regard to case, as the model writes them (`FirstName`, `customer`). The
database may not: PostgreSQL folds an unquoted name to lower case, so `SELECT FirstName FROM Customer` finds
no table "Customer"; Oracle and Snowflake fold to upper case; MySQL and MariaDB compare table names as file
names, with case on Linux. A name that resolves to exactly one schema name which the database would not find
as written is rewritten to that name, quoted where folding would change it. The join fixer's added names go
through the same pass.

Only names that resolve to a schema table or a column of one at their own query level are touched: aliases,
CTE names, select aliases in ORDER BY and GROUP BY, and the columns of a subquery in FROM are left as written.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

from text2sql.pipeline.scopes import own_columns, select_aliases, tables_by_alias
from text2sql.schema import DatabaseSchema, Table

# How each dialect looks up an unquoted name; a dialect not listed finds names whatever their case.
_FOLDED = {"postgres": str.lower, "redshift": str.lower, "oracle": str.upper, "snowflake": str.upper}
_CASE_SENSITIVE_TABLES = {"mysql"}  # table names are file names; unquoted names are not folded


def respell_identifiers(
    sql: str, *, dialect: str, schema: DatabaseSchema, database_dialect: str | None = None
) -> tuple[str, list[str]] | None:
    """`sql` (written in `dialect`) with every name the database (speaking `database_dialect`, by default the
    same) would miss spelled as the schema does, and a note per name; None when all are found as written."""
    lookup = database_dialect or dialect
    if lookup not in _FOLDED and lookup not in _CASE_SENSITIVE_TABLES:
        return None
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        scopes = traverse_scope(tree)
    except (SqlglotError, RecursionError):
        return None
    notes: list[str] = []
    known_by_scope: dict[int, dict[str, Table]] = {}
    for scope in scopes:
        known: dict[str, Table] = {}  # this level's schema tables by lower-cased alias
        for alias, source in scope.sources.items():
            if isinstance(source, exp.Table) and (table := schema.table(source.name)) is not None:
                known[alias.lower()] = table
                _respell(source.this, table.name, lookup, notes)
                if not source.alias:
                    _respell_qualifiers(scope, alias, table.name, lookup, notes)
        known_by_scope[id(scope)] = known
    if lookup in _FOLDED:
        for scope in scopes:
            # An unqualified name may belong to any source: only when all are schema tables is its table known.
            _respell_columns(
                scope, known_by_scope[id(scope)], _visible(scope, known_by_scope), lookup, notes,
                all_known=tables_by_alias(scope, schema) is not None,
            )
    if not notes:
        return None
    return tree.sql(dialect=dialect), list(dict.fromkeys(notes))


def _respell_qualifiers(scope: Scope, alias: str, table_name: str, dialect: str, notes: list[str]) -> None:
    """`Customer.FirstName` where Customer is the table itself, not an alias: the qualifier names the table."""
    for column in own_columns(scope):
        qualifier = column.args.get("table")
        if isinstance(qualifier, exp.Identifier) and qualifier.name.lower() == alias.lower():
            _respell(qualifier, table_name, dialect, notes)


def _visible(scope: Scope, known_by_scope: dict[int, dict[str, Table]]) -> dict[str, Table]:
    """The tables a qualified name can reach from this level: its own, then those of the levels around it (a
    correlated subquery's `c.CustomerId` names the outer query's c); an inner alias hides an outer one."""
    chain = []
    while scope is not None:
        chain.append(known_by_scope.get(id(scope), {}))
        scope = scope.parent
    visible: dict[str, Table] = {}
    for known in reversed(chain):
        visible.update(known)
    return visible


def _respell_columns(
    scope: Scope, tables: dict[str, Table], visible: dict[str, Table], dialect: str, notes: list[str], *,
    all_known: bool,
) -> None:
    aliases = select_aliases(scope)
    for column in own_columns(scope):
        name = column.this
        if not isinstance(name, exp.Identifier) or name.quoted:
            continue
        clause = column.find_ancestor(exp.Order, exp.Group, exp.Select)
        if column.table:
            candidates = [visible[column.table.lower()]] if column.table.lower() in visible else []
        elif not all_known or (name.name.lower() in aliases and isinstance(clause, (exp.Order, exp.Group))):
            continue  # another source's column, or a select alias: written, and folded, the way it was
        else:
            candidates = list(tables.values())
        spellings = {c.name for t in candidates for c in t.columns if c.name.lower() == name.name.lower()}
        if len(spellings) == 1:
            _respell(name, spellings.pop(), dialect, notes)


def _respell(identifier: exp.Identifier, exact: str, dialect: str, notes: list[str]) -> None:
    """Make an unquoted name find `exact`: quote it with the schema's spelling where the lookup would miss."""
    if not isinstance(identifier, exp.Identifier) or identifier.quoted:
        return
    written = identifier.name
    fold = _FOLDED.get(dialect)
    found_as = fold(written) if fold else written
    if found_as == exact:
        return
    identifier.set("this", exact)
    identifier.set("quoted", fold is not None and fold(exact) != exact)
    notes.append(f"{written} -> {identifier.sql(dialect=dialect)} (as the database spells it)")
