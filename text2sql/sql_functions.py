"""The functions a generated query may call, per dialect: an allow-list, so what nobody vetted is refused.

A deny-list lost to names nobody had thought of (``ts_stat(text)`` runs the SQL string it is given), so every
function here was chosen: it only computes a value from its arguments, or reads the clock or a random source.
None of them evaluates SQL text, reads or writes files, touches other sessions, takes locks, uses sequences,
reads or resets statistics, touches replication/WAL/backups, reads or writes server configuration, opens large
objects, reads a table, schema or database by name (``table_to_xml``), consumes transaction ids, or sleeps.
Server and session facts (version, user, database, connection id, last insert id) are left out too: no
question about the data needs them, and they help an attacker find their way.

Names are bare and lower-case, as the dialect spells the call (``validation`` judges a parsed function by the
name sqlglot writes for it in the dialect being checked). `SQL_FORMS` are standard SQL forms that look like
calls; they are allowed in every dialect.

Deliberate calls:
- ``current_setting`` (PostgreSQL) is refused: it reads server configuration, and no question needs it.
- ``randomblob`` / ``zeroblob`` (SQLite) are allowed: their size is bounded by SQLite's SQLITE_LIMIT_LENGTH,
  which the executor sets, and by the executor's byte budget. The same holds for strings that grow
  (``repeat``, ``lpad``, ``replace``): MySQL/MariaDB cap a result at ``max_allowed_packet``, PostgreSQL at
  1 GB per value, and the statement timeout and byte budget bound the rest.
- ``random()`` and other volatile functions are allowed only with a reason in `POSTGRES_VOLATILE`.

The lists are checked against the servers' own catalogues by ``tests/security/test_function_catalogue.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Standard SQL forms sqlglot writes like a call: CAST(x AS INT), EXTRACT(YEAR FROM d), EXISTS(SELECT ...).
# Several of them are grammar rather than catalogue functions, so they are kept apart from the catalogues.
SQL_FORMS: frozenset[str] = frozenset(
    {
        "exists",
        "any",
        "all",
        "some",
        "array",
        "row",
        "cast",
        "try_cast",
        "extract",
        "trim",
        "position",
        "substring",
        "overlay",
        "coalesce",
        "nullif",
        "greatest",
        "least",
        "current_date",
        "current_time",
        "current_timestamp",
        "localtime",
        "localtimestamp",
    }
)

# --- generic: any dialect without a list of its own ---------------------------------------------------------

# Conservative: pure functions whose names mean the same read-only thing in every engine that has them,
# including the spellings sqlglot writes for other dialects (LEN in T-SQL, LISTAGG in Snowflake, IFF,
# GETDATE). Anything else, dialect-specific, is refused rather than guessed at.
GENERIC: frozenset[str] = frozenset(
    {
        # aggregates
        "count", "sum", "avg", "min", "max", "stddev", "stddev_pop", "stddev_samp", "stdev", "stdevp",
        "variance", "var_pop", "var_samp", "variance_pop", "variance_samp", "var", "varp", "median",
        "percentile_cont", "percentile_disc", "string_agg", "listagg", "group_concat", "array_agg",
        "collect_list", "collect_set",
        # window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
        "lag", "lead", "first_value", "last_value", "nth_value",
        # conditional
        "if", "iif", "iff", "ifnull", "isnull", "nvl", "nvl2",
        # math
        "abs", "ceil", "ceiling", "floor", "round", "trunc", "mod", "power", "pow", "sqrt", "exp", "ln",
        "log", "log10", "sign",
        # strings
        "upper", "lower", "length", "len", "char_length", "character_length", "substr", "concat",
        "concat_ws", "ltrim", "rtrim", "replace", "left", "right", "lpad", "rpad", "reverse", "instr",
        "strpos", "charindex", "locate", "split_part",
        # date and time
        "date", "year", "quarter", "month", "week", "day", "dayofweek", "dayofyear", "hour", "minute",
        "second", "date_trunc", "date_part", "datepart", "datename", "datediff", "date_diff", "dateadd",
        "date_add", "date_sub", "to_date", "to_char", "to_timestamp", "getdate", "now",
    }
)  # fmt: skip

# --- SQLite -------------------------------------------------------------------------------------------------

SQLITE: frozenset[str] = frozenset(
    {
        # aggregates
        "count", "sum", "total", "avg", "min", "max", "group_concat", "string_agg",
        # window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
        "lag", "lead", "first_value", "last_value", "nth_value",
        # conditional and type (iif/if, likely/unlikely/likelihood only hint the planner)
        "coalesce", "ifnull", "nullif", "iif", "if", "typeof", "likely", "unlikely", "likelihood",
        # operators SQLite runs as functions: its authorizer sees these names
        "like", "glob", "match", "->", "->>",
        # strings
        "length", "octet_length", "lower", "upper", "substr", "substring", "trim", "ltrim", "rtrim",
        "replace", "instr", "concat", "concat_ws", "printf", "format", "char", "unicode", "hex", "unhex",
        "quote", "soundex",
        # blobs and randomness: bounded by SQLITE_LIMIT_LENGTH and the byte budget (see the module docstring)
        "random", "randomblob", "zeroblob",
        # math (core, and the math functions of SQLITE_ENABLE_MATH_FUNCTIONS builds)
        "abs", "round", "sign",
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh",
        "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians",
        "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
        # date and time
        "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
        # JSON, and its table-valued functions
        "json", "json_array", "json_array_length", "json_error_position", "json_extract", "json_insert",
        "json_object", "json_patch", "json_quote", "json_remove", "json_replace", "json_set", "json_type",
        "json_valid", "json_group_array", "json_group_object", "json_each", "json_tree",
        "jsonb", "jsonb_array", "jsonb_extract", "jsonb_insert", "jsonb_object", "jsonb_patch",
        "jsonb_remove", "jsonb_replace", "jsonb_set", "jsonb_group_array", "jsonb_group_object",
    }
)  # fmt: skip

# Functions of the SQLite list that newer libraries added: a catalogue older than this cannot confirm them.
SQLITE_SINCE: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "unhex": (3, 41, 0),
        "json_error_position": (3, 42, 0),
        "octet_length": (3, 43, 0),
        "timediff": (3, 43, 0),
        "concat": (3, 44, 0),
        "concat_ws": (3, 44, 0),
        "string_agg": (3, 44, 0),
        **dict.fromkeys(
            (
                "jsonb", "jsonb_array", "jsonb_extract", "jsonb_insert", "jsonb_object", "jsonb_patch",
                "jsonb_remove", "jsonb_replace", "jsonb_set", "jsonb_group_array", "jsonb_group_object",
            ),
            (3, 45, 0),
        ),
        "if": (3, 48, 0),
    }
)  # fmt: skip

# Table-valued functions, which SQLite lists as modules (pragma_module_list), not as functions.
SQLITE_TABLE_FUNCTIONS: frozenset[str] = frozenset({"json_each", "json_tree"})

# --- PostgreSQL ---------------------------------------------------------------------------------------------

# Every name is a pg_catalog function that PUBLIC may execute; no pg_* function at all (that family is the
# server's administration and introspection API). Left out on purpose, among others: ts_stat and ts_rewrite
# (they run a query given as text), *_to_xml* (a query, cursor, table, schema or database by name), xpath,
# setseed (changes the session), txid_* / pg_current_xact_id (consume an id), nextval/currval/setval/lastval,
# set_config/current_setting, lo_*, dblink*, crosstab*, current_user/session_user/current_database/version.
POSTGRES: frozenset[str] = frozenset(
    {
        # aggregates
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or", "every",
        "bit_and", "bit_or", "bit_xor", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop",
        "var_samp", "corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy", "regr_count",
        "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy", "regr_syy",
        "percentile_cont", "percentile_disc", "mode", "json_agg", "jsonb_agg", "json_object_agg",
        "jsonb_object_agg",
        # window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
        "lag", "lead", "first_value", "last_value", "nth_value",
        # conditional (coalesce, nullif, greatest, least are SQL_FORMS)
        "num_nulls", "num_nonnulls",
        # math
        "abs", "cbrt", "ceil", "ceiling", "degrees", "div", "exp", "factorial", "floor", "gcd", "lcm", "ln",
        "log", "log10", "min_scale", "mod", "pi", "pow", "power", "radians", "round", "scale", "sign",
        "sqrt", "trim_scale", "trunc", "width_bucket", "random",
        "acos", "acosd", "asin", "asind", "atan", "atand", "atan2", "atan2d", "cos", "cosd", "cot", "cotd",
        "sin", "sind", "tan", "tand", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
        # strings
        "ascii", "bit_length", "btrim", "char_length", "character_length", "chr", "concat", "concat_ws",
        "format", "initcap", "left", "length", "lower", "lpad", "ltrim", "md5", "octet_length", "repeat",
        "replace", "reverse", "right", "rpad", "rtrim", "split_part", "starts_with", "strpos", "substr",
        "translate", "upper", "encode", "decode", "quote_ident", "quote_literal", "quote_nullable",
        "sha224", "sha256", "sha384", "sha512",
        "regexp_count", "regexp_instr", "regexp_like", "regexp_match", "regexp_matches", "regexp_replace",
        "regexp_split_to_array", "regexp_split_to_table", "regexp_substr",
        "string_to_array", "string_to_table", "array_to_string",
        # date and time
        "age", "clock_timestamp", "date", "date_bin", "date_part", "date_trunc", "isfinite",
        "justify_days", "justify_hours", "justify_interval", "make_date", "make_interval", "make_time",
        "make_timestamp", "make_timestamptz", "now", "statement_timestamp", "timeofday",
        "transaction_timestamp", "to_char", "to_date", "to_number", "to_timestamp", "timezone",
        # JSON
        "to_json", "to_jsonb", "array_to_json", "row_to_json", "json_build_array", "jsonb_build_array",
        "json_build_object", "jsonb_build_object", "json_object", "jsonb_object", "json_array_length",
        "jsonb_array_length", "json_array_elements", "jsonb_array_elements", "json_array_elements_text",
        "jsonb_array_elements_text", "json_each", "jsonb_each", "json_each_text", "jsonb_each_text",
        "json_extract_path", "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text",
        "json_object_keys", "jsonb_object_keys", "json_typeof", "jsonb_typeof", "json_strip_nulls",
        "jsonb_strip_nulls", "jsonb_pretty", "jsonb_set", "jsonb_insert", "jsonb_path_exists",
        "jsonb_path_match", "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
        # arrays and series (generate_series is bounded by the statement timeout, like a large join)
        "array_append", "array_cat", "array_dims", "array_length", "array_lower", "array_ndims",
        "array_position", "array_positions", "array_prepend", "array_remove", "array_replace",
        "array_upper", "cardinality", "trim_array", "unnest", "generate_series", "generate_subscripts",
        # full-text search over values (not ts_stat / ts_rewrite, which run a query given as text)
        "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
        "ts_rank", "ts_rank_cd", "ts_headline", "setweight", "strip", "tsvector_to_array",
        "array_to_tsvector", "numnode", "querytree",
        # identifiers
        "gen_random_uuid",
    }
)  # fmt: skip

# The allowed PostgreSQL functions pg_proc marks volatile (provolatile = 'v'), each with why it is harmless.
POSTGRES_VOLATILE: Mapping[str, str] = MappingProxyType(
    {
        "random": "a pseudo-random number; its seed is per session, and only setseed() (refused) sets it",
        "clock_timestamp": "reads the wall clock",
        "timeofday": "reads the wall clock, as text",
        "gen_random_uuid": "random bytes from the server's generator; no counter or sequence is consumed",
    }
)

# --- MySQL / MariaDB ----------------------------------------------------------------------------------------

# MariaDB's and MySQL's common built-ins (MariaDB-only names are harmless on MySQL: it reports them unknown).
# Left out on purpose, among others: load_file, sleep, benchmark, get_lock/release_lock/is_free_lock/
# is_used_lock/release_all_locks, master_pos_wait/master_gtid_wait/binlog_gtid_pos/wsrep_*, last_insert_id
# (with an argument it sets session state), found_rows, row_count, connection_id, nextval/lastval/setval,
# uuid_short (a server-wide counter), database/schema/user/current_user/version, password and the
# encryption functions, compress/uncompress, updatexml, name_const, the dynamic-column functions.
MYSQL: frozenset[str] = frozenset(
    {
        # aggregates
        "count", "sum", "avg", "min", "max", "group_concat", "bit_and", "bit_or", "bit_xor", "std",
        "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "json_arrayagg",
        "json_objectagg",
        # window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
        "lag", "lead", "first_value", "last_value", "nth_value", "median", "percentile_cont",
        "percentile_disc",
        # conditional
        "if", "ifnull", "isnull", "nvl", "nvl2", "interval",
        # strings
        "ascii", "bin", "bit_length", "char", "char_length", "character_length", "chr", "concat",
        "concat_ws", "elt", "export_set", "field", "find_in_set", "format", "from_base64", "hex", "insert",
        "instr", "lcase", "left", "length", "lengthb", "locate", "lower", "lpad", "ltrim", "make_set", "mid",
        "natural_sort_key", "octet_length", "ord", "quote", "regexp_instr", "regexp_replace",
        "regexp_substr", "repeat", "replace", "reverse", "right", "rpad", "rtrim", "sformat", "soundex",
        "space", "strcmp", "substr", "substring_index", "to_base64", "to_char", "ucase", "unhex", "upper",
        "md5", "sha", "sha1", "sha2", "crc32", "crc32c", "extractvalue", "regexp_like", "any_value",
        "match",  # MATCH (...) AGAINST (...): full-text search over indexed columns
        # math
        "abs", "acos", "asin", "atan", "atan2", "ceil", "ceiling", "conv", "cos", "cot", "degrees", "exp",
        "floor", "ln", "log", "log10", "log2", "mod", "oct", "pi", "pow", "power", "radians", "rand", "round",
        "sign", "sin", "sqrt", "tan", "truncate",
        # date and time
        "adddate", "addtime", "add_months", "convert_tz", "curdate", "curtime", "date", "date_add",
        "date_format", "date_sub", "datediff", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear",
        "from_days", "from_unixtime", "get_format", "hour", "last_day", "makedate", "maketime",
        "microsecond", "minute", "month", "monthname", "now", "period_add", "period_diff",
        "quarter", "sec_to_time", "second", "str_to_date", "subdate", "subtime", "sysdate", "time",
        "time_format", "time_to_sec", "timediff", "timestamp", "timestampadd", "timestampdiff", "to_days",
        "to_seconds", "unix_timestamp", "utc_date", "utc_time", "utc_timestamp", "week", "weekday",
        "weekofyear", "year", "yearweek",
        # JSON (the modifying ones return a new document; nothing is stored)
        "json_array", "json_array_append", "json_array_insert", "json_compact", "json_contains",
        "json_contains_path", "json_depth", "json_detailed", "json_equals", "json_exists", "json_extract",
        "json_insert", "json_keys", "json_length", "json_loose", "json_merge", "json_merge_patch",
        "json_merge_preserve", "json_normalize", "json_object", "json_overlaps", "json_pretty",
        "json_query", "json_quote", "json_remove", "json_replace", "json_search", "json_set", "json_table",
        "json_type", "json_unquote", "json_valid", "json_value",
        # network addresses and identifiers
        "inet_aton", "inet_ntoa", "inet6_aton", "inet6_ntoa", "is_ipv4", "is_ipv4_compat",
        "is_ipv4_mapped", "is_ipv6", "uuid",
    }
)  # fmt: skip

# Names of the MySQL list that MariaDB lacks: sqlglot writes `a REGEXP 'x'` as REGEXP_LIKE(a, 'x') (MySQL 8),
# and ANY_VALUE is MySQL's answer to ONLY_FULL_GROUP_BY. Both are pure; MariaDB reports them unknown.
MYSQL_ONLY: frozenset[str] = frozenset({"regexp_like", "any_value"})

ALLOWED_FUNCTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {"sqlite": SQLITE, "postgres": POSTGRES, "mysql": MYSQL}
)

# Qualifiers that name the dialect's own built-in functions: pg_catalog.upper(x) is upper(x).
BUILTIN_QUALIFIERS: Mapping[str, frozenset[str]] = MappingProxyType({"postgres": frozenset({"pg_catalog"})})


def allowed_functions(dialect: str) -> frozenset[str]:
    """The dialect's allow-list (without `SQL_FORMS`); the generic list for dialects without one."""
    return ALLOWED_FUNCTIONS.get(dialect.lower(), GENERIC)


def is_allowed_function(name: str, dialect: str) -> bool:
    """Whether a bare function name (any case) may be called in `dialect`."""
    lowered = name.lower()
    return lowered in SQL_FORMS or lowered in allowed_functions(dialect)
