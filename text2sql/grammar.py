"""Schema-bound decoding grammars: a GBNF grammar (llama.cpp's format) that lets a model spell only
read-only SQL over one schema's own tables and columns.

The language is a SELECT subset: DISTINCT, joins (INNER / LEFT / RIGHT / FULL / CROSS, ON or USING,
comma joins), derived tables, WHERE with comparisons, AND / OR / NOT, IN (list or subquery), BETWEEN,
LIKE, IS [NOT] NULL, EXISTS, GROUP BY / HAVING, ORDER BY with ASC / DESC and NULLS FIRST / LAST,
LIMIT / OFFSET, UNION [ALL] / INTERSECT / EXCEPT, CASE, CAST, aggregates, a few scalar functions per
dialect, arithmetic, string and number literals and scalar subqueries. One statement, an optional
trailing `;`, nothing after it. Keywords and function names are case-insensitive.

Identifiers are where the grammar earns its keep:
- A table is spelled exactly as the schema spells it; a name that needs quoting (spaces, reserved
  words, and for PostgreSQL / Snowflake letters the dialect would fold) only in the dialect's quotes.
- An unqualified column is one of the schema's columns. `Table.column` allows only that table's
  columns; `alias.column` allows any schema column.
- Aliases (tables, derived tables, output columns) are free identifiers, but never a keyword, a
  reserved word or a table name, so `FROM t WHERE` cannot read WHERE as an alias and an alias cannot
  stand in for a table to reach the columns of another one. Output-column aliases are never accepted
  as references (ORDER BY total): unqualified references are schema columns only.
Not covered, on purpose: WITH (a CTE name would have to be a free table name, and its columns free
column names), window functions, and dialect quirks beyond the listed functions; `LIMIT` is the only
row-limiting syntax. Validation after generation still checks the SQL: the grammar only keeps the
model on the rails, it does not know which tables a query has joined.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.sql.compiler import RESERVED_WORDS
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy

from text2sql.schema.model import DatabaseSchema

# At most this many whitespace characters in a row: a model stuck on spaces still has to move on.
_MAX_WHITESPACE = 20
# Words with a role in the grammar. They are never aliases, and a column or table with such a name
# must be quoted, or the grammar would be ambiguous ("SELECT a FROM t where ...").
_STRUCTURAL_KEYWORDS = (
    "all", "and", "as", "asc", "between", "by", "case", "cast", "cross", "current_date", "current_timestamp",
    "desc", "distinct", "else", "end", "except", "exists", "extract", "false", "first", "from", "full", "group",
    "having", "ilike", "in", "inner", "intersect", "interval", "is", "join", "last", "left", "like", "limit",
    "not", "null", "nulls", "offset", "on", "or", "order", "outer", "right", "select", "then", "true", "union",
    "using", "when", "where",
)  # fmt: skip
_AGGREGATES = ("sum", "avg", "min", "max")
_COMMON_FUNCTIONS = (
    "abs", "coalesce", "length", "lower", "nullif", "replace", "round", "substr", "substring", "trim", "upper",
)  # fmt: skip
_TYPE_WORDS = (
    "integer", "int", "bigint", "smallint", "real", "float", "numeric", "decimal", "text", "varchar", "char",
    "date", "timestamp", "boolean",
)  # fmt: skip
_EXTRACT_FIELDS = (
    "year", "quarter", "month", "week", "day", "hour", "minute", "second", "dow", "doy", "epoch",
)  # fmt: skip
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_IDENT_REST = _IDENT_FIRST | frozenset("0123456789")


@dataclass(frozen=True)
class _DialectFeatures:
    """What a dialect adds to the common grammar."""

    functions: tuple[str, ...] = ()
    extra_types: tuple[str, ...] = ()
    double_colon_cast: bool = False  # expr::type
    ilike: bool = False
    extract: bool = False  # EXTRACT(field FROM expr)
    interval: bool = False  # INTERVAL '1 day'
    limit_comma: bool = False  # LIMIT offset, count


_FEATURES: dict[str, _DialectFeatures] = {
    "sqlite": _DialectFeatures(
        functions=("strftime", "date", "time", "datetime", "julianday", "ifnull", "instr"), limit_comma=True
    ),
    "postgres": _DialectFeatures(
        functions=("date_trunc", "date_part", "to_char", "concat", "now"),
        extra_types=("double precision",),
        double_colon_cast=True,
        ilike=True,
        extract=True,
        interval=True,
    ),
    "mysql": _DialectFeatures(
        functions=("year", "month", "day", "date", "date_format", "datediff", "concat", "ifnull", "now"),
        extra_types=("signed", "unsigned"),
        extract=True,
        limit_comma=True,
    ),
    "duckdb": _DialectFeatures(
        functions=("date_trunc", "date_part", "strftime", "year", "month", "day", "concat", "ifnull", "now"),
        double_colon_cast=True,
        ilike=True,
        extract=True,
        interval=True,
    ),
}
# Other dialects get the common subset, which is ANSI enough to transpile.
_GENERIC_FEATURES = _DialectFeatures(extract=True)


def build_sql_grammar(schema: DatabaseSchema, *, dialect: str = "sqlite") -> str:
    """A GBNF grammar for read-only SELECT statements over `schema`'s tables and columns, in `dialect`
    (a sqlglot dialect name). Raises ValueError for a dialect sqlglot does not know."""
    return _build(_identifiers_of(schema), dialect)


def cached_sql_grammar(schema: DatabaseSchema, dialect: str = "sqlite") -> str:
    """`build_sql_grammar`, cached per set of table and column names and dialect: building walks every
    name, and the same (often reduced) schema comes back request after request."""
    return _build_cached(_identifiers_of(schema), dialect)


_TableNames = tuple[tuple[str, tuple[str, ...]], ...]


def _identifiers_of(schema: DatabaseSchema) -> _TableNames:
    """All the grammar depends on: comments, types and samples do not change it."""
    return tuple((t.name, tuple(c.name for c in t.columns)) for t in schema.tables)


@functools.lru_cache(maxsize=128)
def _build_cached(tables: _TableNames, dialect: str) -> str:
    return _build(tables, dialect)


def _build(tables: _TableNames, dialect: str) -> str:
    try:
        sql_dialect = Dialect.get_or_raise(dialect)
    except ValueError as e:
        raise ValueError(f"unknown SQL dialect {dialect!r} for the SQL grammar") from e
    features = _FEATURES.get(dialect.lower(), _GENERIC_FEATURES)
    writer = _GrammarWriter()
    _statement_rules(writer, features)
    _expression_rules(writer, features)
    _schema_rules(writer, tables, dialect=dialect, sql_dialect=sql_dialect)
    _alias_rules(writer, excluded={name for name, _ in tables})
    _output_alias_rule(writer, dialect=dialect)
    writer.add("ws", f"[ \\t\\n]{{0,{_MAX_WHITESPACE}}}")
    writer.add("sp", f"[ \\t\\n]{{1,{_MAX_WHITESPACE}}}")
    return writer.text()


# --------------------------------------------------------------------------------------------------
# Rules


def _statement_rules(w: _GrammarWriter, features: _DialectFeatures) -> None:
    kw = w.keyword
    w.add("root", 'ws query ws (";" ws)?')
    w.add("query", "select-core (sp compound-op sp select-core)* (sp order-by)? (sp limit-clause)?")
    w.add("compound-op", f"{kw('union')} (sp {kw('all')})? | {kw('intersect')} | {kw('except')}")
    w.add(
        "select-core",
        f"{kw('select')} (sp ({kw('distinct')} | {kw('all')}))? sp select-list sp {kw('from')} sp from-list"
        f" (sp {kw('where')} sp expr)? (sp group-by)?",
    )
    w.add("select-list", 'select-item (ws "," ws select-item)*')
    w.add("select-item", f'"*" | star-qualifier "." "*" | expr (sp ({kw("as")} sp)? output-alias)?')
    w.add("group-by", f"{kw('group')} sp {kw('by')} sp expr-list (sp {kw('having')} sp expr)?")
    w.add("order-by", f'{kw("order")} sp {kw("by")} sp order-item (ws "," ws order-item)*')
    # ORDER BY may name an output column by its alias (`ORDER BY album_count DESC`), the commonest way
    # models write it; forbidding it pushed them into garbage such as `album_countDESCLIMIT5.Name`. A
    # context-free grammar cannot tell which aliases the query defined: validation checks that after.
    w.add(
        "order-item",
        f"(expr | output-alias) (sp ({kw('asc')} | {kw('desc')}))?"
        f" (sp {kw('nulls')} sp ({kw('first')} | {kw('last')}))?",
    )
    limit_tail = f"sp {kw('offset')} sp integer"
    if features.limit_comma:
        limit_tail += ' | ws "," ws integer'
    w.add("limit-clause", f"{kw('limit')} sp integer ({limit_tail})?")
    w.add("from-list", "table-ref join-clause*")
    table_alias = f"(sp ({kw('as')} sp)? free-ident)?"
    w.add("table-ref", f'table-name {table_alias} | "(" ws query ws ")" {table_alias}')
    w.add(
        "join-clause",
        f'ws "," ws table-ref | sp join-op sp table-ref join-condition | sp {kw("cross")} sp {kw("join")} sp table-ref',
    )
    outer = f"({kw('left')} | {kw('right')} | {kw('full')}) (sp {kw('outer')})?"
    w.add("join-op", f"(({kw('inner')} | {outer}) sp)? {kw('join')}")
    w.add(
        "join-condition",
        f'sp {kw("on")} sp expr | sp {kw("using")} ws "(" ws any-column (ws "," ws any-column)* ws ")"',
    )


def _expression_rules(w: _GrammarWriter, features: _DialectFeatures) -> None:
    kw = w.keyword
    w.add("expr", f"and-expr (sp {kw('or')} sp and-expr)*")
    w.add("and-expr", f"not-expr (sp {kw('and')} sp not-expr)*")
    w.add("not-expr", f"({kw('not')} sp)? predicate")
    w.add("predicate", "sum-expr predicate-tail?")
    negatable = f"sp ({kw('not')} sp)?"
    like = f"({kw('like')} | {kw('ilike')})" if features.ilike else kw("like")
    w.add(
        "predicate-tail",
        " | ".join(
            [
                "ws compare-op ws sum-expr",
                f'{negatable} {kw("in")} ws "(" ws (query | expr-list) ws ")"',
                f"{negatable} {kw('between')} sp sum-expr sp {kw('and')} sp sum-expr",
                f"{negatable} {like} sp sum-expr",
                f"sp {kw('is')} sp ({kw('not')} sp)? {kw('null')}",
            ]
        ),
    )
    w.add("compare-op", '"=" | "==" | "!=" | "<>" | "<=" | ">=" | "<" | ">"')
    w.add("sum-expr", "product (ws add-op ws product)*")
    w.add("add-op", '"+" | "-" | "||"')
    w.add("product", "unary (ws mul-op ws unary)*")
    w.add("mul-op", '"*" | "/" | "%"')
    w.add("unary", '("-" ws)? primary' + (' ("::" type-name)*' if features.double_colon_cast else ""))
    primaries = [
        "literal",
        "aggregate",
        "function-call",
        "cast-call",
        "case-expr",
        "exists-expr",
        "column-ref",
        '"(" ws (query | expr) ws ")"',
    ]
    if features.extract:
        primaries.append("extract-call")
    if features.interval:
        primaries.append(f"{kw('interval')} sp string")
    w.add("primary", " | ".join(primaries))
    w.add("expr-list", 'expr (ws "," ws expr)*')
    literals = [
        "number",
        "string",
        *(kw(k) for k in ("null", "true", "false", "current_date", "current_timestamp")),
    ]
    w.add("literal", " | ".join(literals))
    w.add("number", '[0-9]+ ("." [0-9]+)?')
    w.add("integer", "[0-9]+")
    quote = _literal("'")  # a quote inside a string is doubled: 'It''s'
    w.add("string", f"{quote} ([^'\\n] | {quote} {quote})* {quote}")
    w.add(
        "aggregate",
        f'{kw("count")} ws "(" ws ("*" | ({kw("distinct")} sp)? expr) ws ")"'
        f' | ({" | ".join(kw(a) for a in _AGGREGATES)}) ws "(" ws ({kw("distinct")} sp)? expr ws ")"',
    )
    functions = sorted(set(_COMMON_FUNCTIONS) | set(features.functions))
    w.add("function-call", 'function-name ws "(" ws (expr-list ws)? ")"')
    w.add("function-name", " | ".join(kw(f) for f in functions))
    w.add("cast-call", f'{kw("cast")} ws "(" ws expr sp {kw("as")} sp type-name ws ")"')
    type_words = [" sp ".join(kw(part) for part in t.split()) for t in (*_TYPE_WORDS, *features.extra_types)]
    w.add("type-name", f'({" | ".join(type_words)}) (ws "(" ws integer (ws "," ws integer)? ws ")")?')
    w.add(
        "case-expr",
        f"{kw('case')} (sp expr)? (sp {kw('when')} sp expr sp {kw('then')} sp expr)+"
        f" (sp {kw('else')} sp expr)? sp {kw('end')}",
    )
    w.add("exists-expr", f'{kw("exists")} ws "(" ws query ws ")"')
    if features.extract:
        fields = " | ".join(kw(f) for f in _EXTRACT_FIELDS)
        w.add("extract-call", f'{kw("extract")} ws "(" ws ({fields}) sp {kw("from")} sp expr ws ")"')


def _schema_rules(w: _GrammarWriter, tables: _TableNames, *, dialect: str, sql_dialect: Dialect) -> None:
    """One rule per table and per distinct column, so `Table.` can be followed by that table's columns."""
    reserved = RESERVED_WORDS | set(_STRUCTURAL_KEYWORDS)
    column_rules: dict[str, str] = {}

    def column_rule(name: str) -> str:
        if name not in column_rules:
            column_rules[name] = rule = f"column-{len(column_rules)}"
            w.add(
                rule,
                _alternatives(_name_forms(name, dialect=dialect, sql_dialect=sql_dialect, reserved=reserved)),
            )
        return column_rules[name]

    table_rules: list[str] = []
    qualified: list[str] = []
    for index, (table, columns) in enumerate(dict(tables).items()):  # a repeated name counts once
        table_rule = f"table-{index}"
        w.add(
            table_rule,
            _alternatives(_name_forms(table, dialect=dialect, sql_dialect=sql_dialect, reserved=reserved)),
        )
        w.add(f"columns-of-{index}", " | ".join(column_rule(c) for c in dict.fromkeys(columns)))
        table_rules.append(table_rule)
        qualified.append(f'{table_rule} "." columns-of-{index}')
    w.add("table-name", " | ".join(table_rules))
    w.add("any-column", " | ".join(column_rules.values()))
    w.add("column-ref", " | ".join([*qualified, 'free-ident "." any-column', "any-column"]))
    w.add("star-qualifier", "table-name | free-ident")


def _alias_rules(w: _GrammarWriter, *, excluded: Iterable[str]) -> None:
    """Free identifiers minus every keyword, reserved word and table name (compared case-insensitively),
    written as a trie: each rule is one prefix of an excluded word, and leaving the trie frees the rest."""
    words = {
        word.lower()
        for word in (*RESERVED_WORDS, *_STRUCTURAL_KEYWORDS, *excluded)
        if _BARE_NAME.fullmatch(word)
    }
    trie = _Trie.of(words)
    names: dict[int, str] = {}

    def rule_name(node: _Trie) -> str:
        return names.setdefault(id(node), "free-ident" if node is trie else f"free-ident-{len(names)}")

    pending = [trie]
    while pending:
        node = pending.pop()
        allowed = _IDENT_FIRST if node is trie else _IDENT_REST
        branches = []
        taken = {variant for char in node.children for variant in (char.lower(), char.upper())}
        others = sorted(allowed - taken)
        if others:
            branches.append(f"{_char_class(others)} ident-rest")
        for char, child in sorted(node.children.items()):
            branches.append(f"{_char_class({char.lower(), char.upper()})} {rule_name(child)}")
            pending.append(child)
        body = " | ".join(branches)
        if node is not trie and not node.is_word:
            body = f"({body})?"  # this prefix is itself an identifier
        w.add(rule_name(node), body)
    w.add("ident-rest", f"{_char_class(_IDENT_REST)}*")


def _output_alias_rule(w: _GrammarWriter, *, dialect: str) -> None:
    """An output column may also get a quoted name ("Total Sales"): it is never referenced again."""
    quoted = exp.to_identifier("x", quoted=True).sql(dialect=dialect)
    open_quote, close_quote = quoted[0], quoted[-1]
    w.add(
        "output-alias",
        f"free-ident | {_literal(open_quote)} [^{_escape_class_char(close_quote)}\\n]+ {_literal(close_quote)}",
    )


# --------------------------------------------------------------------------------------------------
# Names


def _name_forms(name: str, *, dialect: str, sql_dialect: Dialect, reserved: set[str]) -> list[str]:
    """How `name` may be written: always quoted, and bare too when that reads back as the same name."""
    forms = [exp.to_identifier(name, quoted=True).sql(dialect=dialect)]
    if not exp.to_identifier(name).quoted and name.lower() not in reserved and not _folds(name, sql_dialect):
        forms.append(name)
    return forms


def _folds(name: str, sql_dialect: Dialect) -> bool:
    """Whether the dialect would change the case of `name` unquoted (PostgreSQL lowers, Snowflake raises)."""
    strategy = sql_dialect.NORMALIZATION_STRATEGY
    if strategy is NormalizationStrategy.LOWERCASE:
        return name != name.lower()
    if strategy is NormalizationStrategy.UPPERCASE:
        return name != name.upper()
    return False


@dataclass
class _Trie:
    children: dict[str, _Trie]
    is_word: bool = False

    @classmethod
    def of(cls, words: Iterable[str]) -> _Trie:
        root = cls(children={})
        for word in words:
            node = root
            for char in word:
                node = node.children.setdefault(char, cls(children={}))
            node.is_word = True
        return root


# --------------------------------------------------------------------------------------------------
# GBNF text


class _GrammarWriter:
    """Collects rules in order; keywords become case-insensitive rules named `kw-<word>`."""

    def __init__(self) -> None:
        self._rules: dict[str, str] = {}

    def add(self, name: str, body: str) -> None:
        if name in self._rules:
            raise ValueError(f"grammar rule {name!r} defined twice")
        self._rules[name] = body

    def keyword(self, word: str) -> str:
        name = "kw-" + word.replace("_", "-")
        if name not in self._rules:
            self._rules[name] = " ".join(
                _char_class({c.lower(), c.upper()}) if c.isalpha() else _literal(c) for c in word
            )
        return name

    def text(self) -> str:
        return "".join(f"{name} ::= {body}\n" for name, body in self._rules.items())


def _alternatives(forms: list[str]) -> str:
    return " | ".join(_literal(f) for f in forms)


def _literal(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _char_class(chars: Iterable[str]) -> str:
    """A `[...]` class of `chars`, with runs of consecutive characters written as ranges."""
    codes = sorted({ord(c) for c in chars})
    parts = []
    start = 0
    while start < len(codes):
        end = start
        while end + 1 < len(codes) and codes[end + 1] == codes[end] + 1:
            end += 1
        low, high = chr(codes[start]), chr(codes[end])
        if end - start >= 2:
            parts.append(f"{_escape_class_char(low)}-{_escape_class_char(high)}")
        else:
            parts.extend(_escape_class_char(chr(code)) for code in codes[start : end + 1])
        start = end + 1
    return "[" + "".join(parts) + "]"


def _escape_class_char(char: str) -> str:
    """Letters and digits as they are; anything else as a hex escape, so `]`, `-` and `^` stay literal.
    Always `\\u`/`\\U`, never `\\x`: xgrammar (vLLM) reads every hex digit after `\\x`, llama.cpp only two."""
    if char.isascii() and char.isalnum():
        return char
    return f"\\u{ord(char):04X}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08X}"
