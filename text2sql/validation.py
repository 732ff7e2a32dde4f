"""Validate one generated SQL statement with sqlglot: it parses, it only reads, and it names real things.

The checks, in order:

1. the text is encodable (no lone surrogates, no NUL) and not empty;
2. no MySQL/MariaDB executable comment (``/*! ... */``, ``/*M! ... */``): the server runs those, sqlglot skips them;
3. it parses in the dialect, as exactly one statement (a trailing ``;`` and comments are fine);
4. it is read-only: the root is SELECT, a set operation or WITH ... SELECT, and nowhere in the tree is there
   a write, DDL, admin statement, ``SELECT ... INTO``, a row lock or a MySQL/MariaDB variable (``@v``, ``@v := x``,
   ``@@sysvar``: user variables keep state for the session's next statement, system variables read settings);
5. every function it calls is on the dialect's allow-list (`text2sql.sql_functions`): an unknown function by
   its name as written, a function sqlglot knows by the name it writes for it in that dialect (names sqlglot
   writes inside such a call, e.g. JULIANDAY in SQLite's form of a date difference, come from its own fixed
   templates). A call qualified by a schema is refused unless the schema is the dialect's built-in one
   (``pg_catalog``) and the bare name is allowed;
6. every schema or database qualifier it uses is one the schema exposes (`DatabaseSchema.qualifiers`), and it
   reads no system catalogue (``pg_catalog``, ``information_schema``, ``mysql``, ``sqlite_master``, ...) that
   the schema does not list. Without known qualifiers (a schema from DDL), only system catalogues are refused;
7. with a schema, every table and column it references exists (case-insensitive), with close-match suggestions.

`ValidationResult.sql` is the statement re-generated from the parse tree, without comments. Executing that text
(rather than the raw input) means the database runs exactly what was checked. The database must still enforce
read-only on its own (see `text2sql.execution`): the parser is one layer, not the only one.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import Field
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import Token, TokenType

from text2sql.dialects import check_dialect
from text2sql.schema.model import DatabaseSchema, Table
from text2sql.sql_functions import BUILTIN_QUALIFIERS, is_allowed_function
from text2sql.strict import StrictModel

logger = logging.getLogger(__name__)

IssueCode = Literal[
    "invalid_text",
    "empty",
    "executable_comment",
    "parse_error",
    "multiple_statements",
    "not_read_only",
    "forbidden_function",
    "forbidden_schema",
    "unknown_table",
    "unknown_column",
]


# Statements and clauses that write, change the schema or the session, lock rows, or run opaque commands.
# exp.DDL and exp.DML cover CREATE/INSERT and UPDATE/DELETE/MERGE/COPY; exp.Command is sqlglot's fallback
# for statements it does not model (CALL, VACUUM, EXPLAIN, DO, REPLACE, ...), so it is refused too.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = (
    exp.DDL,
    exp.DML,
    exp.Drop,
    exp.Alter,
    exp.AlterColumn,
    exp.TruncateTable,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Command,
    exp.Grant,
    exp.Revoke,
    exp.Set,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Kill,
    exp.Execute,
    exp.Analyze,
    exp.LoadData,
    exp.Refresh,
    exp.Cache,
    exp.Uncache,
    exp.Install,
    exp.Export,
    exp.Comment,
    exp.Declare,
    exp.Put,
    exp.Get,
    exp.Into,
    exp.Lock,
)

# Columns every row has without the schema listing them.
_IMPLICIT_COLUMNS: dict[str, frozenset[str]] = {
    "sqlite": frozenset({"rowid", "oid", "_rowid_"}),
    "postgres": frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"}),
}


class ValidationIssue(StrictModel):
    code: IssueCode = Field(description="Machine-readable kind of problem.")
    message: str = Field(description="What is wrong, for a human or for a repair prompt.")
    suggestions: list[str] = Field(default_factory=list, description="Close real names, best first.")


class ValidationResult(StrictModel):
    valid: bool = Field(description="True when there are no errors.")
    errors: list[ValidationIssue] = Field(default_factory=list, description="Every problem found.")
    sql: str = Field(
        description="The statement re-generated from its parse tree in the dialect, without comments; "
        "the input unchanged when it does not parse."
    )


def validate_sql(
    sql: str, *, dialect: str = "sqlite", schema: DatabaseSchema | None = None
) -> ValidationResult:
    """Check one generated statement; see the module docstring for the rules."""
    dialect = check_dialect(dialect)

    text_issue = _text_issue(sql)
    if text_issue is not None:
        return _invalid(sql, [text_issue])

    dialect_impl = Dialect.get_or_raise(dialect)
    try:
        tokens = dialect_impl.tokenize(sql)
    except SqlglotError as e:
        return _invalid(
            sql, [ValidationIssue(code="parse_error", message=f"cannot tokenize as {dialect}: {e}")]
        )
    if not any(token.token_type != TokenType.SEMICOLON for token in tokens):
        return _invalid(
            sql, [ValidationIssue(code="empty", message="the SQL is empty (only comments or ';')")]
        )

    comment_issue = _executable_comment_issue(tokens)
    if comment_issue is not None:
        return _invalid(sql, [comment_issue])

    try:
        parsed = dialect_impl.parser().parse(tokens, sql)
    except ParseError as e:
        message = f"does not parse as {dialect}: {_describe_parse_error(e)}"
        return _invalid(sql, [ValidationIssue(code="parse_error", message=message)])
    except SqlglotError as e:
        return _invalid(
            sql, [ValidationIssue(code="parse_error", message=f"does not parse as {dialect}: {e}")]
        )
    except RecursionError:
        return _invalid(sql, [ValidationIssue(code="parse_error", message="the SQL is nested too deeply")])
    except Exception as e:  # a parser bug must refuse the SQL, not crash the request
        logger.exception("sqlglot failed on a %s statement", dialect)
        return _invalid(sql, [ValidationIssue(code="parse_error", message=f"cannot parse as {dialect}: {e}")])

    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if len(statements) != 1:
        kinds = ", ".join(_statement_kind(s) for s in statements)
        issue = ValidationIssue(
            code="multiple_statements",
            message=f"expected exactly one SQL statement, found {len(statements)} ({kinds})",
        )
        return _invalid(sql, [issue])

    statement = statements[0]
    first_word = next(t.text for t in tokens if t.token_type != TokenType.SEMICOLON).upper()
    # One generation gives both the text that will run and the functions it calls.
    normalised, written = _generate(statement, dialect_impl)
    errors = _read_only_issues(statement, first_word=first_word)
    errors += _variable_issues(statement, dialect_impl)
    errors += _function_issues(statement, written, dialect, dialect_impl)
    errors += _qualifier_issues(statement, schema, dialect, dialect_impl)
    if schema is not None and not errors:
        errors += _schema_issues(statement, schema, dialect)
    return ValidationResult(valid=not errors, errors=errors, sql=normalised)


# --- text and comments -------------------------------------------------------------------------------------


def _text_issue(sql: str) -> ValidationIssue | None:
    # A lone surrogate (e.g. from bytes decoded with errors="surrogateescape") cannot be encoded as UTF-8,
    # so no driver could send it; NUL truncates or breaks statements in several C clients.
    # U+FFFD (from errors="replace") is a real character and is left to the parser.
    if not isinstance(sql, str):
        raise TypeError(f"sql must be a str, got {type(sql).__name__}")
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError as e:
        return ValidationIssue(
            code="invalid_text",
            message=f"the SQL is not valid Unicode text (undecodable bytes at position {e.start}); "
            "decode the input as UTF-8 first",
        )
    if "\x00" in sql:
        return ValidationIssue(code="invalid_text", message="the SQL contains a NUL character")
    if not sql.strip():
        return ValidationIssue(code="empty", message="the SQL is empty")
    return None


def _executable_comment_issue(tokens: Iterable[Token]) -> ValidationIssue | None:
    for token in tokens:
        for comment in token.comments:
            if comment.startswith(("!", "M!")):
                return ValidationIssue(
                    code="executable_comment",
                    message="MySQL/MariaDB executable comments (/*! ... */) are not allowed: "
                    "the server runs their content",
                )
    return None


def _describe_parse_error(error: ParseError) -> str:
    # sqlglot's own text carries terminal colour codes and token reprs; rebuild a plain one.
    if not error.errors:
        return str(error)
    first = error.errors[0]
    description = str(first.get("description") or "syntax error")
    near = first.get("highlight") or ""
    if " but got <Token" in description:
        description = description.split(" but got <Token")[0] + f" but got {near!r}"
    where = f"line {first.get('line')}, column {first.get('col')}"
    return f"{description} ({where}, near {near!r})" if near else f"{description} ({where})"


# --- read-only --------------------------------------------------------------------------------------------


def _statement_kind(statement: exp.Expression) -> str:
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    return statement.key.upper()


def _read_only_issues(statement: exp.Expression, *, first_word: str) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    root = statement.unnest() if isinstance(statement, exp.Subquery) else statement
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        # sqlglot reads some unknown statements as expressions (REINDEX -> Column); the first word names them.
        known = isinstance(root, (*_FORBIDDEN_NODES, exp.Show, exp.Describe, exp.Values))
        kind = _statement_kind(root) if known else first_word
        issues.append(
            ValidationIssue(code="not_read_only", message=f"only SELECT queries are allowed, got {kind}")
        )
    seen: set[str] = set()
    for node in statement.walk():
        if node is root and issues:
            continue
        if isinstance(node, _FORBIDDEN_NODES):
            what = _forbidden_node_description(node)
            if what not in seen:
                seen.add(what)
                issues.append(ValidationIssue(code="not_read_only", message=f"{what} is not allowed"))
    return issues


def _forbidden_node_description(node: exp.Expression) -> str:
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Lock):
        return "a row lock (FOR UPDATE / FOR SHARE)"
    where = " inside the query" if node.parent is not None else ""
    return f"{_statement_kind(node)}{where}"


# --- variables (MySQL / MariaDB) ---------------------------------------------------------------------------


def _variable_issues(statement: exp.Expression, dialect_impl: Dialect) -> list[ValidationIssue]:
    # A user variable lives as long as the session, so one statement could leave state for the next (the
    # executor also resets pooled sessions); a system variable (@@datadir, @@secure_file_priv) reads server
    # settings. An answer to a question needs neither.
    if not isinstance(dialect_impl, MySQL):
        return []
    state = "user variables keep state between requests"
    messages: list[str] = []
    for node in statement.walk():
        if isinstance(node, exp.PropertyEQ):
            message = (
                f"assigning user variable {node.this.sql(dialect=dialect_impl)} (:=) is not allowed: {state}"
            )
        elif isinstance(node, exp.Parameter):
            if isinstance(node.parent, exp.PropertyEQ) and node.arg_key == "this":
                continue  # reported as the assignment
            message = f"user variable {node.sql(dialect=dialect_impl)} is not allowed: {state}"
        elif isinstance(node, exp.SessionParameter):
            message = (
                f"system variable {node.sql(dialect=dialect_impl)} is not allowed: it reads server settings"
            )
        else:
            continue
        if message not in messages:
            messages.append(message)
    return [ValidationIssue(code="not_read_only", message=m) for m in messages]


# --- functions --------------------------------------------------------------------------------------------

# How sqlglot writes a typed function in the dialect: a name and "(" (COUNT(*), DATE_TRUNC(...)), or one bare
# word (CURRENT_USER). Any other text is syntax, not a call: CASE ..., a AND b, ARRAY[...], x ^ y.
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_$]*)\s*(\()?")


def _function_issues(
    statement: exp.Expression, written: list[tuple[exp.Func, str]], dialect: str, dialect_impl: Dialect
) -> list[ValidationIssue]:
    # Unknown functions are judged as written, wherever they are; typed ones as the dialect writes them.
    judged = [(func, _anonymous_name(func, dialect_impl)) for func in statement.find_all(exp.Anonymous)]
    judged += [(func, _written_name(func, text, dialect_impl)) for func, text in written]
    issues: list[ValidationIssue] = []
    for func, name in judged:
        issue = _function_issue(func, name, dialect, dialect_impl)
        if issue is not None and all(issue.message != known.message for known in issues):
            issues.append(issue)
    return issues


def _function_issue(
    func: exp.Func, name: str | None, dialect: str, dialect_impl: Dialect
) -> ValidationIssue | None:
    if name is None:
        return None
    qualifier = _call_qualifier(func)
    if qualifier:
        builtin = BUILTIN_QUALIFIERS.get(dialect, frozenset())
        if not (len(qualifier) == 1 and any(_same_name(qualifier[0], b, dialect_impl) for b in builtin)):
            shown = ".".join(part.sql(dialect=dialect_impl) for part in qualifier)
            only = f" (only {', '.join(sorted(builtin))} may qualify a call)" if builtin else ""
            return ValidationIssue(
                code="forbidden_function",
                message=f"function {shown}.{name}() is not allowed: a qualified call may run a user-defined "
                f"function{only}",
            )
    # Judged as the database will look it up: a quoted name keeps its case where quoting makes it exact.
    if name == name.lower() and is_allowed_function(name, dialect):
        return None
    return ValidationIssue(
        code="forbidden_function", message=f"function {name}() is not on the allow-list for {dialect}"
    )


def _anonymous_name(func: exp.Anonymous, dialect_impl: Dialect, text: str | None = None) -> str:
    this = func.this
    if isinstance(this, exp.Identifier) and this.quoted and _quoting_is_exact(dialect_impl):
        # Judge the quoted name as it will be sent: sqlglot upper-cases even a quoted name ("age"(d) becomes
        # "AGE"(d)), and quoted, that is another function.
        if text is None:
            text = func.sql(dialect=dialect_impl, comments=False)
        return dialect_impl.tokenize(text)[0].text
    return func.name.lower()


def _generate(statement: exp.Expression, dialect_impl: Dialect) -> tuple[str, list[tuple[exp.Func, str]]]:
    """The statement as the dialect writes it (without comments), and each function node written, with its text.

    Only what is written is called: CASE's branches are If nodes that T-SQL would write as IIF() on their own,
    and MySQL's YEAR(d) holds a DATE(d) it never writes. Recording each node's text as the generator writes it
    (rather than generating each node apart) finds exactly those, in time linear in the statement.
    """
    generator = dialect_impl.generator(comments=False)
    written: list[tuple[exp.Func, str]] = []
    plain_sql = generator.sql

    def recording_sql(expression: object, key: str | None = None, comment: bool = True) -> str:
        text = plain_sql(expression, key, comment)  # type: ignore[arg-type]
        if key is None and isinstance(expression, exp.Func):
            written.append((expression, text))
        return text

    generator.sql = recording_sql  # type: ignore[method-assign]
    text = generator.generate(statement)  # on a copy: the generator rewrites the tree it is given
    return text, written


def _written_name(func: exp.Func, text: str, dialect_impl: Dialect) -> str | None:
    if isinstance(func, exp.Anonymous):
        return _anonymous_name(func, dialect_impl, text)
    match = _CALL.match(text)
    if match is None:
        return None
    if match.group(2) is None:
        # One bare word is a call (CURRENT_USER), unless it is the text of an argument: a wrapper sqlglot
        # writes as just its argument (a date column it would otherwise convert) is no call at all.
        if match.end() != len(text):
            return None
        if any(arg.sql(dialect=dialect_impl, comments=False) == text for arg in func.iter_expressions()):
            return None
    return match.group(1).lower()


def _call_qualifier(func: exp.Func) -> list[exp.Expression]:
    """What qualifies a call: `pg_catalog` in pg_catalog.upper(x), or in FROM pg_catalog.generate_series(...)."""
    parent = func.parent
    if isinstance(parent, exp.Dot) and func.arg_key == "expression":
        return _dot_parts(parent.this)
    if isinstance(parent, exp.Table) and func.arg_key == "this":
        return [part for part in (parent.args.get("catalog"), parent.args.get("db")) if part is not None]
    return []


def _dot_parts(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Dot):
        return [*_dot_parts(node.this), *_dot_parts(node.expression)]
    if isinstance(node, exp.Column):
        return list(node.parts)
    return [node]


def _quoting_is_exact(dialect_impl: Dialect) -> bool:
    # PostgreSQL folds unquoted names and keeps quoted ones: "UPPER"(x) is no built-in there. MySQL and SQLite
    # look functions up case-insensitively, quoted or not.
    return dialect_impl.NORMALIZATION_STRATEGY in (
        NormalizationStrategy.LOWERCASE,
        NormalizationStrategy.UPPERCASE,
    )


def _same_name(identifier: exp.Expression, name: str, dialect_impl: Dialect) -> bool:
    """Whether an identifier names `name` (as the database spells it) under the dialect's case rules."""
    if not isinstance(identifier, exp.Identifier):
        return False
    normalized = dialect_impl.normalize_identifier(identifier.copy()).name
    if dialect_impl.NORMALIZATION_STRATEGY.name.startswith("CASE_INSENSITIVE"):
        return normalized.lower() == name.lower()
    return normalized == name


# --- schema qualifiers and system catalogues ---------------------------------------------------------------

# Qualifiers that name a system catalogue in any dialect. PostgreSQL reserves the pg_ prefix for its own
# schemas (pg_catalog, pg_toast, pg_temp_N); SQLite's temp schema belongs to the connection, not to the data.
_SYSTEM_QUALIFIERS = frozenset(
    {"information_schema", "pg_catalog", "pg_toast", "mysql", "performance_schema", "sys"}
)


def _is_system_qualifier(lowered: str, dialect: str) -> bool:
    if lowered in _SYSTEM_QUALIFIERS:
        return True
    if dialect == "postgres":
        return lowered.startswith("pg_")
    return dialect == "sqlite" and lowered == "temp"


def _is_system_table(lowered: str, dialect: str) -> bool:
    """Catalogue tables a query can name without a qualifier: pg_catalog is always on PostgreSQL's search
    path; SQLite has sqlite_master/sqlite_schema, sqlite_stat*, dbstat, sqlite_stmt and pragma_* tables."""
    if dialect == "postgres":
        return lowered.startswith("pg_")
    if dialect == "sqlite":
        return lowered.startswith(("sqlite_", "pragma_")) or lowered == "dbstat"
    return False


def _qualifier_issues(
    statement: exp.Expression, schema: DatabaseSchema | None, dialect: str, dialect_impl: Dialect
) -> list[ValidationIssue]:
    cte_names = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    messages: list[str] = []
    for node in statement.find_all(exp.Table, exp.Column):
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            continue  # a table function: judged with the functions
        found = _reference_issue(node, schema, dialect, dialect_impl, cte_names)
        if found is not None and found not in messages:
            messages.append(found)
    return [ValidationIssue(code="forbidden_schema", message=m) for m in messages]


def _reference_issue(
    node: exp.Table | exp.Column,
    schema: DatabaseSchema | None,
    dialect: str,
    dialect_impl: Dialect,
    cte_names: set[str],
) -> str | None:
    word = "database" if isinstance(dialect_impl, MySQL) else "schema"
    qualifiers = schema.qualifiers if schema is not None else []
    name = node.name if isinstance(node, exp.Table) else node.table
    catalog, db = node.args.get("catalog"), node.args.get("db")
    if catalog is not None and qualifiers:
        # catalog.schema.table: the catalog must be the database we are connected to. (Without known
        # qualifiers, e.g. BigQuery's project.dataset.table from DDL, nothing is known to compare with.)
        current = schema.name if schema is not None else None
        if current is None or not _same_name(catalog, current, dialect_impl):
            only = f"; only {current!r} is" if current else ""
            return f"database {catalog.name!r} is not exposed{only}"
    if catalog is not None and _is_system_qualifier(catalog.name.lower(), dialect):
        return f"database {catalog.name!r} is a system catalogue and is not exposed"
    if db is not None:
        system = _is_system_qualifier(db.name.lower(), dialect)
        what = f"{word} {db.name!r}" + (" is a system catalogue and" if system else "")
        if qualifiers:
            if not any(_same_name(db, q, dialect_impl) for q in qualifiers):
                return f"{what} is not exposed; only {_listed(qualifiers)}"
        elif system and (schema is None or schema.table(f"{db.name}.{name}") is None):
            return f"{what} is not exposed"
    if isinstance(node, exp.Table):
        lowered = node.name.lower()
        if _is_system_table(lowered, dialect) and lowered not in cte_names:
            if schema is None or _schema_table(schema, node) is None:
                return f"table {node.name!r} is a system catalogue and is not exposed"
    return None


def _listed(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        return f"{quoted[0]} is"
    return f"{', '.join(quoted[:-1])} and {quoted[-1]} are"


# --- identifiers against the schema -----------------------------------------------------------------------


def _schema_issues(statement: exp.Expression, schema: DatabaseSchema, dialect: str) -> list[ValidationIssue]:
    cte_names = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    issues = _table_issues(statement, schema, cte_names)
    try:
        return issues + _ColumnChecker(schema, dialect).issues(traverse_scope(statement))
    except (SqlglotError, RecursionError, ValueError, KeyError, AttributeError, TypeError) as e:
        # sqlglot's scope builder does not know every construct: keep the table check, skip columns
        # rather than report a column that may well exist.
        logger.warning("column check skipped, cannot resolve scopes: %s", e)
        return issues


def _table_issues(
    statement: exp.Expression, schema: DatabaseSchema, cte_names: set[str]
) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    reported: set[str] = set()
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table-valued function, UNNEST, ...
        name = table.name
        if not name or name.lower() in cte_names or _schema_table(schema, table) is not None:
            continue
        if name.lower() in reported:
            continue
        reported.add(name.lower())
        issues.append(
            ValidationIssue(
                code="unknown_table",
                message=f"unknown table {name!r}",
                suggestions=_close_matches(name, [t.name for t in schema.tables]),
            )
        )
    return issues


def _schema_table(schema: DatabaseSchema, table: exp.Table) -> Table | None:
    found = schema.table(table.name)
    if found is None and table.db:
        found = schema.table(f"{table.db}.{table.name}")
    return found


def _close_matches(name: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.6)
    return [by_lower[m] for m in matches]


# What a name in FROM stands for: a schema table, a CTE/subquery with known or unknown output columns,
# or something opaque (a table function, an unknown table) whose columns cannot be checked.
_Source = Table | frozenset[str] | None


class _ColumnChecker:
    def __init__(self, schema: DatabaseSchema, dialect: str) -> None:
        self.schema = schema
        self.dialect = dialect
        self.implicit = _IMPLICIT_COLUMNS.get(dialect, frozenset())

    def issues(self, scopes: list[Scope]) -> list[ValidationIssue]:
        issues: list[ValidationIssue] = []
        reported: set[str] = set()
        seen: set[int] = set()
        # traverse_scope yields inner scopes first, so a column is judged in its innermost scope; outer scopes
        # list correlated columns of their subqueries again, and those are skipped by identity.
        for scope in scopes:
            if _has_pivot(scope):
                seen.update(id(c) for c in scope.columns)
                continue
            found: list[ValidationIssue | None] = []
            for column in [*scope.columns, *_star_columns(scope)]:
                if id(column) in seen:
                    continue
                seen.add(id(column))
                found.append(self._column_issue(column, scope))
            for issue in [*found, *self._using_issues(scope)]:
                if issue is not None and issue.message not in reported:
                    reported.add(issue.message)
                    issues.append(issue)
        return issues

    def _using_issues(self, scope: Scope) -> list[ValidationIssue]:
        """A JOIN ... USING (col) needs col on both sides; sqlglot lists these names as no scope column."""
        if not isinstance(scope.expression, exp.Select):
            return []
        sources = self._sources(scope)
        # sqlglot 30 names the FROM clause "from_", earlier releases (still in our range) "from".
        from_clause = scope.expression.args.get("from_") or scope.expression.args.get("from")
        left = [from_clause.this] if from_clause is not None else []
        issues: list[ValidationIssue] = []
        for join in scope.expression.args.get("joins") or []:
            for identifier in join.args.get("using") or []:
                name = identifier.name.lower()
                for side, nodes in (("right", [join.this]), ("left", left)):
                    found = [sources.get(node.alias_or_name.lower()) for node in nodes]
                    if any(_source_has_column(source, name) for source in found):
                        continue
                    tables = [s for s in found if isinstance(s, Table)]
                    names = ", ".join(
                        repr(s.name if isinstance(s, Table) else node.alias_or_name)
                        for s, node in zip(found, nodes, strict=True)
                    )
                    issues.append(
                        ValidationIssue(
                            code="unknown_column",
                            message=f"JOIN ... USING ({identifier.name}): the {side} side ({names}) has no such column",
                            suggestions=_qualified_matches(identifier.name, tables),
                        )
                    )
            left.append(join.this)
        return issues

    def _column_issue(self, column: exp.Column, scope: Scope) -> ValidationIssue | None:
        name = column.name
        qualifier = column.table
        if qualifier:
            return self._qualified_issue(column, qualifier, name, scope)
        if isinstance(column.this, exp.Star) or name.lower() in self.implicit:
            return None
        if self.dialect == "sqlite" and column.this.args.get("quoted"):
            return None  # SQLite reads an unknown "double-quoted" name as a string literal
        if self._resolves_unqualified(name.lower(), scope, column=column):
            return None
        return ValidationIssue(
            code="unknown_column",
            message=f"unknown column {name!r}: no table in scope has it",
            suggestions=self._column_suggestions(name, scope),
        )

    def _qualified_issue(
        self, column: exp.Column, qualifier: str, name: str, scope: Scope
    ) -> ValidationIssue | None:
        found, source = self._lookup_source(qualifier, scope)
        if not found:
            # BigQuery/DuckDB struct access (alias.struct_col.field) arrives as db.table.column.
            if column.db and self._lookup_source(column.db, scope)[0]:
                return None
            if self._resolves_unqualified(qualifier.lower(), scope, column=column):
                return None
            candidates = [*self._aliases_in_scope(scope), *(t.name for t in self.schema.tables)]
            return ValidationIssue(
                code="unknown_table",
                message=f"unknown table or alias {qualifier!r} in {column.sql(self.dialect)}",
                suggestions=_close_matches(qualifier, candidates),
            )
        if isinstance(column.this, exp.Star) or source is None or name.lower() in self.implicit:
            return None
        if isinstance(source, Table):
            if source.column(name) is not None:
                return None
            return ValidationIssue(
                code="unknown_column",
                message=f"table {source.name!r} has no column {name!r}",
                suggestions=[
                    f"{source.name}.{c}" for c in _close_matches(name, [c.name for c in source.columns])
                ]
                or self._column_suggestions(name, scope),
            )
        if name.lower() in source:
            return None
        return ValidationIssue(
            code="unknown_column",
            message=f"{qualifier!r} has no column {name!r}",
            suggestions=[f"{qualifier}.{c}" for c in _close_matches(name, source)],
        )

    def _resolves_unqualified(self, lowered: str, scope: Scope, *, column: exp.Column | None = None) -> bool:
        if lowered in _select_aliases(scope.expression, outside=column):
            return True  # a select-list alias used in ORDER BY / GROUP BY / HAVING
        for current in _scope_chain(scope):
            if any(_source_has_column(source, lowered) for source in self._sources(current).values()):
                return True
        return False

    def _lookup_source(self, qualifier: str, scope: Scope) -> tuple[bool, _Source]:
        lowered = qualifier.lower()
        for current in _scope_chain(scope):
            for alias, source in self._sources(current).items():
                if alias == lowered:
                    return True, source
        return False, None

    def _aliases_in_scope(self, scope: Scope) -> list[str]:
        return [alias for current in _scope_chain(scope) for alias in current.sources if alias]

    def _sources(self, scope: Scope) -> dict[str, _Source]:
        # An unaliased table function is listed under "" and is opaque like any other.
        return {alias.lower(): self._resolve_source(source) for alias, source in scope.sources.items()}

    def _resolve_source(self, source: exp.Expression | Scope) -> _Source:
        if isinstance(source, Scope):
            names = _source_scope_names(source)
            return None if names is None else frozenset(n.lower() for n in names)
        if isinstance(source, exp.Table):
            if not isinstance(source.this, exp.Identifier):
                return None
            renamed = source.alias_column_names
            if renamed:
                return frozenset(n.lower() for n in renamed)
            return _schema_table(self.schema, source)  # None (opaque) when unknown: reported once already
        return None

    def _column_suggestions(self, name: str, scope: Scope) -> list[str]:
        in_scope: list[Table] = []
        for current in _scope_chain(scope):
            in_scope += [s for s in self._sources(current).values() if isinstance(s, Table)]
        suggestions = _qualified_matches(name, in_scope)
        # Nothing close in the joined tables: point at tables that would need a join.
        return suggestions or _qualified_matches(name, self.schema.tables)


def _source_has_column(source: _Source, lowered: str) -> bool:
    if source is None:
        return True  # opaque: nothing to check against
    if isinstance(source, Table):
        return source.column(lowered) is not None
    return lowered in source


def _qualified_matches(name: str, tables: Iterable[Table]) -> list[str]:
    by_column: dict[str, list[str]] = {}
    for table in tables:
        for column in table.columns:
            qualified = f"{table.name}.{column.name}"
            entries = by_column.setdefault(column.name.lower(), [])
            if qualified not in entries:
                entries.append(qualified)
    matches = difflib.get_close_matches(name.lower(), list(by_column), n=3, cutoff=0.6)
    return [q for m in matches for q in by_column[m]][:5]


def _scope_chain(scope: Scope) -> Iterator[Scope]:
    current: Scope | None = scope
    while current is not None:
        yield current
        current = current.parent


def _has_pivot(scope: Scope) -> bool:
    return any(
        isinstance(source, exp.Table) and source.args.get("pivots") for source in scope.sources.values()
    )


def _select_aliases(expression: exp.Expression, *, outside: exp.Expression | None) -> set[str]:
    """Names a query's select list defines; for a SELECT only explicit aliases not containing `outside`."""
    if isinstance(expression, exp.SetOperation):
        return {n.lower() for n in _output_names(expression)}
    if not isinstance(expression, exp.Select):
        return set()
    aliases: set[str] = set()
    for select in expression.selects:
        if isinstance(select, exp.Alias) and select.alias:
            if outside is not None and _is_within(outside, select):
                continue
            aliases.add(select.alias.lower())
    return aliases


def _is_within(node: exp.Expression, ancestor: exp.Expression) -> bool:
    current: exp.Expression | None = node
    while current is not None:
        if current is ancestor:
            return True
        current = current.parent
    return False


def _star_columns(scope: Scope) -> list[exp.Column]:
    """`alias.*` items of a SELECT list: sqlglot's scope leaves them out of Scope.columns."""
    if not isinstance(scope.expression, exp.Select):
        return []
    return [s for s in scope.expression.selects if isinstance(s, exp.Column) and isinstance(s.this, exp.Star)]


def _output_names(expression: exp.Expression) -> list[str]:
    if isinstance(expression, (exp.Select, exp.SetOperation)):
        return [n for n in expression.named_selects if n]
    return []


def _source_scope_names(source: Scope) -> list[str] | None:
    """Column names a CTE or subquery exposes, or None when they cannot be known (SELECT *, a UDTF)."""
    expression = source.expression
    alias_holder = expression.parent if isinstance(expression.parent, (exp.Subquery, exp.CTE)) else expression
    alias = alias_holder.args.get("alias") if alias_holder is not None else None
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return [c.name for c in alias.columns]
    if not isinstance(expression, (exp.Select, exp.SetOperation)):
        return None
    selects = (
        expression.selects if isinstance(expression, exp.Select) else _leftmost_select(expression).selects
    )
    if any(
        isinstance(s, exp.Star) or (isinstance(s, exp.Column) and isinstance(s.this, exp.Star))
        for s in selects
    ):
        return None
    return _output_names(expression)


def _leftmost_select(expression: exp.Expression) -> exp.Select:
    while isinstance(expression, exp.SetOperation):
        expression = expression.left
    return expression.unnest() if isinstance(expression, exp.Subquery) else expression


def _invalid(sql: str, issues: list[ValidationIssue]) -> ValidationResult:
    # Undecodable bytes become U+FFFD so the result can always be serialised to JSON.
    printable = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in sql)
    return ValidationResult(valid=False, errors=issues, sql=printable)
