"""Run one query read-only, with a row cap, a byte budget and a timeout, and return JSON-safe rows.

The database enforces read-only on its own; `text2sql.validation` is a second, independent layer:

- SQLite: the file is opened with ``mode=ro`` (never created), ``PRAGMA query_only = ON``, a limit of zero
  attached databases, and an authorizer that allows only reads and non-forbidden functions (so no ATTACH,
  VACUUM INTO, PRAGMA or writes: ``mode=ro`` alone lets ATTACH and VACUUM INTO create new files). sqlite3 itself
  refuses several statements in one call. A progress handler stops the query at the deadline.
- PostgreSQL (psycopg 3): a ``READ ONLY`` transaction with ``SET LOCAL statement_timeout``, always rolled back.
  The statement runs as a server-side cursor (``DECLARE ... CURSOR FOR <sql>``) over the extended protocol, so
  only one query is accepted and rows stream in batches.
- MySQL/MariaDB (pymysql): ``SET SESSION TRANSACTION READ ONLY`` (so DDL, which commits implicitly, is refused
  too) and ``START TRANSACTION READ ONLY``, ``max_statement_time`` (MariaDB, seconds) or ``max_execution_time``
  (MySQL, ms), always rolled back; pymysql's default refuses stacked statements. Rows stream (SSCursor).
- PostgreSQL and MySQL also get a client-side watchdog: at the deadline plus a grace period it cancels the query
  (psycopg's cancel, or ``KILL QUERY`` from a second connection) in case the server-side limit did not fire.

Pooled connections never carry a session changed by a query: they are rolled back and reset (PostgreSQL
``DISCARD ALL``; MySQL/MariaDB ``COM_RESET_CONNECTION``, which clears user variables, temporary tables, named
locks and session settings), and a connection is discarded when the statement returned no result set, was cut
off mid-stream, timed out or broke.

Bytes as well as rows: each row is measured as its compact UTF-8 JSON (after `to_json_safe`) as it is fetched,
in batches sized from the rows so far, and fetching stops before the row that would pass ``max_bytes``
(``truncated_by="bytes"``). Raw text and binary values are sized before they are converted, so a value far
over the budget is never turned into a (twice as large) hex string. The time limit covers fetching and
converting too. What bounds one huge value before it can be measured:

- SQLite: ``SQLITE_LIMIT_LENGTH`` is set to the budget (at least 1 MiB, as intermediate values such as a
  group_concat may be longer than what is returned), so ``zeroblob(200000000)`` or a ``replace()`` that grows
  a string fails at once with "larger than the ... byte limit" instead of allocating gigabytes in one
  uninterruptible call. A row of many columns can still hold one such value per column.
- MySQL/MariaDB: a function result longer than the server's ``max_allowed_packet`` (16 MiB by default on
  MariaDB, 64 MiB on MySQL 8; read-only per session) becomes NULL with a warning, e.g. ``REPEAT('x', 1e8)``.
- PostgreSQL: no per-value limit (a field may reach 1 GB). A row is received whole by libpq (which holds
  about twice its size while reading it) before it can be measured; it is then refused by the budget without
  being converted, the connection is dropped to free libpq's buffers, and the time limit still applies.

What the database cannot refuse here: a superuser (PostgreSQL) or a FILE-privileged account (MySQL) can still
read server files with functions such as pg_read_file or LOAD_FILE inside a read-only transaction. Validation
refuses those functions; deployments should also connect with a least-privilege, read-only account.

JSON-safe values (`to_json_safe`):
- Decimal -> float; integral values beyond ±2**53 -> int (no digits lost); NaN/±Infinity -> "NaN",
  "Infinity", "-Infinity" (also for floats, which JSON cannot carry either).
- date/datetime/time -> isoformat(); timedelta (MySQL TIME, PostgreSQL interval) -> str(), e.g. "1 day, 2:00:00".
- bytes/bytearray/memoryview -> "0x" + lowercase hex.
- UUID -> str; lists/tuples -> lists; dicts -> dicts with str keys; anything else -> str().
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, JsonValue
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from text2sql.db_urls import parse_url, scrub
from text2sql.messages import first_line
from text2sql.read_only import (
    SqliteFileMissing,
    connect_sqlite,
    create_engine,
    read_only_statements,
    sqlite_read_only_uri,
)
from text2sql.sql_functions import is_allowed_function
from text2sql.strict import StrictModel

logger = logging.getLogger(__name__)

# Time the server-side limit gets before the client-side watchdog cancels the query itself.
_WATCHDOG_GRACE_S = 1.0
# SQLite calls the progress handler every this many virtual-machine instructions.
_SQLITE_PROGRESS_STEPS = 1000
_CONNECT_TIMEOUT_S = 10
_FLOAT_EXACT_LIMIT = 2**53
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
# SQLite's limit on one string or blob is the byte budget, but never below this (intermediate values such as a
# group_concat may be longer than anything returned) nor above what the C API takes.
_SQLITE_MIN_LENGTH_LIMIT = 1024 * 1024
_SQLITE_MAX_LENGTH_LIMIT = 2**31 - 1

# MySQL/MariaDB error numbers that mean "stopped by a time limit or KILL QUERY".
_MYSQL_TIMEOUT_ERRORS = frozenset({1317, 1969, 3024})
# ... and those that mean the connection is gone.
_MYSQL_CONNECTION_ERRORS = frozenset({2006, 2013, 2055})
# The protocol's command byte; pymysql names none for it.
_COM_RESET_CONNECTION = 0x1F


class QueryResult(StrictModel):
    columns: list[str] = Field(description="Column names as the database reports them, in order.")
    rows: list[list[JsonValue]] = Field(description="At most max_rows rows of JSON-safe values.")
    row_count: int = Field(description="Number of rows returned (after the cap).", ge=0)
    truncated: bool = Field(description="True when the query had more rows than max_rows or max_bytes allow.")
    elapsed_ms: float = Field(description="Wall-clock time to execute and fetch, in milliseconds.", ge=0)
    bytes: int = Field(
        default=0,
        ge=0,
        description="Size of `rows` as compact UTF-8 JSON (plus a separator per row): what counted against max_bytes.",
    )
    truncated_by: Literal["rows", "bytes"] | None = Field(
        default=None, description="What cut the result short: the row cap or the byte budget; null when complete."
    )


class ExecutionError(Exception):
    """A query could not run to completion. Messages never contain the database URL or password."""


class QueryTimeout(ExecutionError):
    """The query ran past its time limit and was stopped."""


class QueryFailed(ExecutionError):
    """The database rejected or aborted the query (syntax, permissions, read-only violation, ...)."""


class DatabaseUnavailable(ExecutionError):
    """The database cannot be reached or opened (missing SQLite file, connection refused, bad login)."""


def execute_read_only(
    url: str, sql: str, *, max_rows: int = 1000, timeout_s: float = 10.0, max_bytes: int = DEFAULT_MAX_BYTES
) -> QueryResult:
    """Run `sql` on the database at `url` (SQLAlchemy URL) without the possibility of writing.

    At most `max_rows` rows and `max_bytes` bytes of JSON come back; `truncated_by` says which cut them short
    and `bytes` how much was used, so a caller spreading one budget over several queries passes what is left.
    Callers should pass SQL that `text2sql.validation.validate_sql` accepted (its normalised `sql`);
    this function does not parse SQL and relies on the database for read-only enforcement.
    """
    if not sql.strip():
        raise QueryFailed("the SQL is empty")
    if max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    limits = _Limits(max_rows=max_rows, max_bytes=max_bytes, timeout_s=timeout_s)
    if backend == "sqlite":
        return _run_sqlite(parsed, sql, limits)
    if backend == "postgresql":
        return _run_postgres(url, parsed, sql, limits)
    if backend in ("mysql", "mariadb"):
        return _run_mysql(url, parsed, sql, limits)
    raise ValueError(f"unsupported database {backend!r}; expected sqlite, postgresql, mysql or mariadb")


def to_json_safe(value: Any) -> JsonValue:
    """One database value as something `json.dumps` accepts without loss of meaning; see the module docstring."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite_name(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
        if value == value.to_integral_value() and abs(value) >= _FLOAT_EXACT_LIMIT:
            return int(value)
        return float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    return str(value)


def dispose_engines() -> None:
    """Close every pooled connection (tests, shutdown)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


# --- shared helpers ---------------------------------------------------------------------------------------


def _non_finite_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


@dataclass(frozen=True)
class _Limits:
    max_rows: int
    max_bytes: int
    timeout_s: float

    def timeout(self) -> QueryTimeout:
        return QueryTimeout(f"query stopped after the {self.timeout_s:g} s time limit")


class _Rows:
    """Rows converted and counted against the row cap and the byte budget one at a time, as they arrive."""

    def __init__(self, limits: _Limits, started: float) -> None:
        self._limits = limits
        self._started = started
        self._deadline = started + limits.timeout_s
        self.rows: list[list[JsonValue]] = []
        self.bytes = 0
        self.truncated_by: Literal["rows", "bytes"] | None = None
        self.complete = False  # the database said there are no more rows

    @property
    def bytes_left(self) -> int:
        return self._limits.max_bytes - self.bytes

    def take(self, stream: Iterable[Sequence[Any]]) -> None:
        """Read rows until the result ends or the cap or the budget is reached: the driver hands over one row
        at a time, so at most one row is ever held beyond the budget. QueryTimeout past the deadline, as
        reading and converting count against the time limit too."""
        for raw in stream:
            if len(self.rows) >= self._limits.max_rows:
                self.truncated_by = "rows"
                return
            left = self.bytes_left
            # Sized before converting: a 16 MB blob over the budget never becomes a 32 MB hex string.
            if _least_json_size(raw) > left:
                self.truncated_by = "bytes"
                return
            row = [to_json_safe(v) for v in raw]
            size = _json_size(row)
            if size > left:
                self.truncated_by = "bytes"
                return
            self.rows.append(row)
            self.bytes += size
            if time.monotonic() > self._deadline:
                raise self._limits.timeout()
        self.complete = True

    def result(self, columns: list[str]) -> QueryResult:
        return QueryResult(
            columns=columns,
            rows=self.rows,
            row_count=len(self.rows),
            truncated=self.truncated_by is not None,
            elapsed_ms=(time.monotonic() - self._started) * 1000.0,
            bytes=self.bytes,
            truncated_by=self.truncated_by,
        )


def _json_size(row: list[JsonValue]) -> int:
    # As a response encodes it: compact JSON in UTF-8; +1 for the comma between rows.
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", errors="surrogatepass")) + 1


def _least_json_size(values: Iterable[Any]) -> int:
    """A lower bound of the values' JSON size that needs no conversion: a string takes at least one byte per
    character plus quotes and a comma, binary two hex digits per byte plus quotes, "0x" and a comma."""
    size = 1
    for value in values:
        if isinstance(value, str):
            size += len(value) + 3
        elif isinstance(value, (bytes, bytearray)):
            size += 2 * len(value) + 5
        elif isinstance(value, memoryview):
            size += 2 * value.nbytes + 5
        elif isinstance(value, _Oversized):
            size += value.nbytes
        elif isinstance(value, (list, tuple)):  # PostgreSQL arrays
            size += _least_json_size(value)
        elif isinstance(value, dict):  # json, jsonb
            size += _least_json_size(value.values())
    return size


class _Watchdog:
    """Calls `cancel` once if the query is still running `delay_s` from now; `stop()` makes sure it will not."""

    def __init__(self, delay_s: float, cancel: Callable[[], None]) -> None:
        self._cancel = cancel
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(delay_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            try:
                self._cancel()
            except Exception:  # a failed cancel is logged, never raised in the timer thread
                logger.warning("watchdog could not cancel the query", exc_info=True)

    def stop(self) -> None:
        # Holding the lock guarantees no cancel starts after this returns.
        with self._lock:
            self._done = True
            self._timer.cancel()


# --- engines (PostgreSQL, MySQL) --------------------------------------------------------------------------

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str, parsed: URL) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = create_engine(parsed, pooled=True, timeout_s=_CONNECT_TIMEOUT_S)
            _ENGINES[url] = engine
        return engine


def _checkout(url: str, parsed: URL) -> Any:
    engine = _engine(url, parsed)
    # The pool raises the driver's own exception (not SQLAlchemy's) when a new connection fails.
    try:
        return engine.raw_connection()
    except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error, OSError) as e:
        detail = first_line(scrub(str(getattr(e, "orig", None) or e), url))
        raise DatabaseUnavailable(
            f"cannot connect to the {parsed.get_backend_name()} database: {detail}"
        ) from None


def _release(raw: Any, *, discard: bool, reset: Callable[[Any], None] | None = None) -> None:
    """Roll back, reset the session and return the connection to the pool, or drop it when that fails."""
    if not discard:
        try:
            raw.rollback()
            if reset is not None:
                reset(raw.driver_connection)
        except Exception:  # any failure here means the connection is unusable
            logger.info("session reset failed, discarding the connection", exc_info=True)
            discard = True
    if discard:
        raw.invalidate()
    raw.close()


# --- SQLite -----------------------------------------------------------------------------------------------

_SQLITE_ALLOWED_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        getattr(sqlite3, "SQLITE_RECURSIVE", 33),
    }
)


def _sqlite_authorizer(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    if action not in _SQLITE_ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    # The same allow-list as validation, on the names SQLite itself resolves (LIKE runs like(), -> runs "->").
    if action == sqlite3.SQLITE_FUNCTION and not (arg2 and is_allowed_function(arg2, "sqlite")):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _decode_sqlite_text(raw: bytes) -> str:
    # A TEXT value that is not UTF-8 must not make the whole query fail.
    return raw.decode("utf-8", errors="replace")


def _run_sqlite(parsed: URL, sql: str, limits: _Limits) -> QueryResult:
    if not parsed.database or parsed.database == ":memory:":
        raise ValueError("a SQLite URL must name a database file, e.g. sqlite:///path/to/file.db")
    name = Path(parsed.database.removeprefix("file:").split("?")[0]).name
    try:
        uri = sqlite_read_only_uri(parsed)
    except SqliteFileMissing as e:
        raise DatabaseUnavailable(f"SQLite database file not found: {e.path.name}") from None
    timeout_s = limits.timeout_s
    try:
        conn = connect_sqlite(uri, timeout_s=timeout_s)
    except sqlite3.Error as e:
        raise DatabaseUnavailable(f"cannot open SQLite database {name}: {e}") from None
    started = time.monotonic()
    deadline = started + timeout_s
    rows = _Rows(limits, started)
    length_limit = min(max(limits.max_bytes, _SQLITE_MIN_LENGTH_LIMIT), _SQLITE_MAX_LENGTH_LIMIT)
    watchdog: _Watchdog | None = None
    try:
        if hasattr(conn, "setlimit"):  # Python >= 3.11
            # mode=ro does not stop ATTACH (or VACUUM INTO) from creating a new file; no attached databases at all.
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            # One function call cannot be interrupted: zeroblob(2e8) or a replace() that grows a string would
            # allocate gigabytes past the deadline. A value longer than the budget could not be returned anyway.
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, length_limit)
        conn.text_factory = _decode_sqlite_text
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
        conn.set_authorizer(_sqlite_authorizer)
        watchdog = _Watchdog(timeout_s + _WATCHDOG_GRACE_S, conn.interrupt)
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        if cursor.description:
            rows.take(cursor)
    except (sqlite3.Error, sqlite3.Warning) as e:
        if time.monotonic() >= deadline and "interrupt" in str(e).lower():
            raise limits.timeout() from None
        if "too big" in str(e).lower():  # SQLITE_TOOBIG
            raise QueryFailed(
                f"a value in the query is larger than the {length_limit} byte limit ({e})"
            ) from None
        raise QueryFailed(str(e)) from None
    finally:
        if watchdog is not None:
            watchdog.stop()
        conn.close()
    return rows.result(columns)


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _run_postgres(url: str, parsed: URL, sql: str, limits: _Limits) -> QueryResult:
    import psycopg  # the postgres extra; imported here so SQLite-only installs work without it
    from psycopg import sql as sql_text

    raw = _checkout(url, parsed)
    pg = raw.driver_connection
    discard = False
    started = time.monotonic()
    deadline = started + limits.timeout_s
    rows = _Rows(limits, started)
    watchdog = _Watchdog(
        limits.timeout_s + _WATCHDOG_GRACE_S, pg.cancel_safe if hasattr(pg, "cancel_safe") else pg.cancel
    )
    try:
        raw.rollback()  # start from a clean transaction whatever the pool's ping did
        with pg.cursor() as setup:
            for statement in read_only_statements("postgresql", timeout_s=_remaining_s(deadline), scope="transaction"):
                setup.execute(statement)
            # DECLARE accepts only a query; the extended protocol refuses a second statement.
            with pg.cursor(name=f"text2sql_{uuid.uuid4().hex}") as cursor:
                cursor.execute(sql)
                columns = [d.name for d in cursor.description or []]
                setup.execute(f"SET LOCAL statement_timeout = {_remaining_ms(deadline)}")
                _guard_large_values(setup, rows)
                # stream() reads in libpq's single-row mode: one row in memory at a time, however many are sent.
                fetch = sql_text.SQL("FETCH FORWARD {} FROM {}").format(
                    limits.max_rows + 1, sql_text.Identifier(cursor.name)
                )
                stream = setup.stream(fetch)
                try:
                    rows.take(stream)
                    if rows.truncated_by == "rows":
                        # The FETCH asked for one row past the cap, so only its end is left: read it rather
                        # than let closing the stream send a cancel that might reach the next statement.
                        for _ in stream:
                            pass
                finally:
                    if inspect.getgeneratorstate(stream) == inspect.GEN_SUSPENDED:
                        # Stopped mid-result (budget, deadline): closing the stream would cancel and then read
                        # every row the server still sends. Drop the connection, which also frees the input
                        # buffer libpq grew for a huge row.
                        discard = True
                        pg.close()
                    stream.close()
    except psycopg.errors.QueryCanceled:
        discard = watchdog.fired
        raise limits.timeout() from None
    except QueryTimeout:
        discard = True
        raise
    except psycopg.OperationalError as e:
        discard = True
        raise QueryFailed(scrub(_psycopg_message(e), url)) from None
    except psycopg.Error as e:
        raise QueryFailed(scrub(_psycopg_message(e), url)) from None
    finally:
        watchdog.stop()
        _release(raw, discard=discard or watchdog.fired, reset=_reset_postgres_session)
    return rows.result(columns)


class _Oversized:
    """A PostgreSQL value left undecoded because it alone is larger than what is left of the byte budget."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


# Variable-length types whose text form can run to a gigabyte, and 0: psycopg's loader for any other type.
_PG_LARGE_TYPES = ("text", "varchar", "bpchar", "name", "json", "jsonb", "bytea", 0)


def _guard_large_values(cursor: Any, rows: _Rows) -> None:
    """Leave values larger than the rest of the budget undecoded: psycopg would copy a 100 MB text from libpq's
    buffer into a 100 MB str before the budget could refuse it."""
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    adapters = cursor.adapters  # the cursor's own copy: the connection and the pool are unaffected
    for name in _PG_LARGE_TYPES:
        oid = name if isinstance(name, int) else adapters.types[name].oid
        base = adapters.get_loader(oid, Format.TEXT)
        if base is None:
            continue

        class Guarded(Loader):
            _base_class = base

            def __init__(self, oid: int, context: Any = None) -> None:
                super().__init__(oid, context)
                self._base = self._base_class(oid, context)

            def load(self, data: Any) -> Any:
                if len(data) > rows.bytes_left:
                    return _Oversized(len(data))
                return self._base.load(data)

        adapters.register_loader(oid, Guarded)


def _reset_postgres_session(pg: Any) -> None:
    # A rollback undoes settings but not session-level advisory locks, LISTEN or prepared statements;
    # DISCARD ALL clears them all. It cannot run inside a transaction block.
    pg.autocommit = True
    try:
        pg.execute("DISCARD ALL")
    finally:
        pg.autocommit = False


def _remaining_ms(deadline: float) -> int:
    return max(1, int(_remaining_s(deadline) * 1000))


def _remaining_s(deadline: float) -> float:
    return deadline - time.monotonic()


def _psycopg_message(error: Exception) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or first_line(str(error))


# --- MySQL / MariaDB --------------------------------------------------------------------------------------


def _run_mysql(url: str, parsed: URL, sql: str, limits: _Limits) -> QueryResult:
    import pymysql  # the mysql extra
    from pymysql.constants import CLIENT

    engine = _engine(url, parsed)
    raw = _checkout(url, parsed)
    my = raw.driver_connection
    if my.client_flag & CLIENT.MULTI_STATEMENTS:
        _release(raw, discard=True)
        raise ValueError("the MySQL URL enables multi-statements (client_flag); remove it")
    is_mariadb = bool(getattr(engine.dialect, "is_mariadb", False))
    timeout_s = limits.timeout_s
    discard = False
    watchdog: _Watchdog | None = None
    started = time.monotonic()
    try:
        raw.rollback()
        with my.cursor() as setup:
            dialect = "mariadb" if is_mariadb else "mysql"
            for statement in read_only_statements(dialect, timeout_s=timeout_s, scope="session"):
                setup.execute(statement)
            setup.execute("START TRANSACTION READ ONLY")
            setup.execute("SELECT CONNECTION_ID()")
            (connection_id,) = setup.fetchone()
        started = time.monotonic()
        rows = _Rows(limits, started)
        watchdog = _Watchdog(timeout_s + _WATCHDOG_GRACE_S, lambda: _kill_query(engine, connection_id))
        cursor = my.cursor(pymysql.cursors.SSCursor)
        cursor.execute(sql)
        if cursor.description is None:
            # Not a query (SET, LOCK TABLES, ...): whatever it changed dies with the connection.
            discard = True
            columns = []
        else:
            columns = [d[0] for d in cursor.description]
            try:
                rows.take(cursor)
            finally:
                if rows.complete:
                    cursor.close()
                else:
                    # Closing an unbuffered cursor reads every remaining row: stop the query first, then drop
                    # the connection, whose state after a KILL is not worth trusting.
                    discard = True
                    _stop_streaming(cursor, engine, connection_id)
    except pymysql.MySQLError as e:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else None
        timed_out = code in _MYSQL_TIMEOUT_ERRORS or (watchdog is not None and watchdog.fired)
        if timed_out or code in _MYSQL_CONNECTION_ERRORS:
            discard = True
        if timed_out:
            raise limits.timeout() from None
        message = e.args[1] if len(e.args) > 1 else str(e)
        raise QueryFailed(scrub(str(message), url)) from None
    finally:
        if watchdog is not None:
            watchdog.stop()
        _release(
            raw, discard=discard or (watchdog is not None and watchdog.fired), reset=_reset_mysql_session
        )
    return rows.result(columns)


def _reset_mysql_session(my: Any) -> None:
    """COM_RESET_CONNECTION (MySQL 5.7, MariaDB 10.2): user variables, temporary tables, named locks, prepared
    statements and session settings go back to a fresh login's, without a new handshake. A server without it
    answers with an error, and `_release` then drops the connection instead."""
    # pymysql has no call for it; its command API sends the bare command and reads the OK packet.
    my._execute_command(_COM_RESET_CONNECTION, b"")
    my._read_ok_packet()
    # The reset also reverts what pymysql set after its handshake: redo it as its connect() does.
    my.set_character_set(my.charset, my.collation)
    with my.cursor() as cursor:
        if my.sql_mode is not None:
            cursor.execute("SET sql_mode=%s", (my.sql_mode,))
        if my.init_command is not None:
            cursor.execute(my.init_command)
    if my.autocommit_mode is not None:
        my.autocommit(my.autocommit_mode)


def _stop_streaming(cursor: Any, engine: Engine, connection_id: int) -> None:
    import pymysql

    try:
        _kill_query(engine, connection_id)
        cursor.close()
    except (pymysql.MySQLError, SQLAlchemyError) as e:
        logger.debug("stopping a truncated MySQL result: %s", e)


def _kill_query(engine: Engine, connection_id: int) -> None:
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cursor:
            cursor.execute(f"KILL QUERY {int(connection_id)}")
    finally:
        raw.close()
