"""Run one query read-only, with a row cap and a timeout, and return JSON-safe rows.

The database enforces read-only on its own; `text2sql.validation` is a second, independent layer:

- SQLite: the file is opened with ``mode=ro`` (never created), ``PRAGMA query_only = ON``, a limit of zero
  attached databases, and an authorizer that allows only reads and non-forbidden functions (so no ATTACH,
  VACUUM INTO, PRAGMA or writes: ``mode=ro`` alone lets ATTACH and VACUUM INTO create new files). sqlite3 itself
  refuses several statements in one call. A progress handler stops the query at the deadline.
- PostgreSQL (psycopg 3): a ``READ ONLY`` transaction with ``SET LOCAL statement_timeout``, always rolled back.
  The statement runs as a server-side cursor (``DECLARE ... CURSOR FOR <sql>``) over the extended protocol, so
  only one query is accepted and rows stream in at most ``max_rows + 1`` at a time.
- MySQL/MariaDB (pymysql): ``SET SESSION TRANSACTION READ ONLY`` (so DDL, which commits implicitly, is refused
  too) and ``START TRANSACTION READ ONLY``, ``max_statement_time`` (MariaDB, seconds) or ``max_execution_time``
  (MySQL, ms), always rolled back; pymysql's default refuses stacked statements. Rows stream (SSCursor).
- PostgreSQL and MySQL also get a client-side watchdog: at the deadline plus a grace period it cancels the query
  (psycopg's cancel, or ``KILL QUERY`` from a second connection) in case the server-side limit did not fire.

Pooled connections never carry a session changed by a query: they are rolled back and reset (PostgreSQL
``DISCARD ALL``, MySQL ``RELEASE_ALL_LOCKS()``), and a connection is discarded when the statement returned no
result set, was cut off mid-stream, timed out or broke.

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
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy
from pydantic import Field, JsonValue
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from text2sql.messages import first_line
from text2sql.sql_functions import is_allowed_function
from text2sql.strict import StrictModel

logger = logging.getLogger(__name__)

# Time the server-side limit gets before the client-side watchdog cancels the query itself.
_WATCHDOG_GRACE_S = 1.0
# SQLite calls the progress handler every this many virtual-machine instructions.
_SQLITE_PROGRESS_STEPS = 1000
_CONNECT_TIMEOUT_S = 10
_FLOAT_EXACT_LIMIT = 2**53

# MySQL/MariaDB error numbers that mean "stopped by a time limit or KILL QUERY".
_MYSQL_TIMEOUT_ERRORS = frozenset({1317, 1969, 3024})
# ... and those that mean the connection is gone.
_MYSQL_CONNECTION_ERRORS = frozenset({2006, 2013, 2055})


class QueryResult(StrictModel):
    columns: list[str] = Field(description="Column names as the database reports them, in order.")
    rows: list[list[JsonValue]] = Field(description="At most max_rows rows of JSON-safe values.")
    row_count: int = Field(description="Number of rows returned (after the cap).", ge=0)
    truncated: bool = Field(description="True when the query had more rows than max_rows.")
    elapsed_ms: float = Field(description="Wall-clock time to execute and fetch, in milliseconds.", ge=0)


class ExecutionError(Exception):
    """A query could not run to completion. Messages never contain the database URL or password."""


class QueryTimeout(ExecutionError):
    """The query ran past its time limit and was stopped."""


class QueryFailed(ExecutionError):
    """The database rejected or aborted the query (syntax, permissions, read-only violation, ...)."""


class DatabaseUnavailable(ExecutionError):
    """The database cannot be reached or opened (missing SQLite file, connection refused, bad login)."""


def execute_read_only(url: str, sql: str, *, max_rows: int = 1000, timeout_s: float = 10.0) -> QueryResult:
    """Run `sql` on the database at `url` (SQLAlchemy URL) without the possibility of writing.

    Callers should pass SQL that `text2sql.validation.validate_sql` accepted (its normalised `sql`);
    this function does not parse SQL and relies on the database for read-only enforcement.
    """
    if not sql.strip():
        raise QueryFailed("the SQL is empty")
    if max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _run_sqlite(parsed, sql, max_rows=max_rows, timeout_s=timeout_s)
    if backend == "postgresql":
        return _run_postgres(url, parsed, sql, max_rows=max_rows, timeout_s=timeout_s)
    if backend in ("mysql", "mariadb"):
        return _run_mysql(url, parsed, sql, max_rows=max_rows, timeout_s=timeout_s)
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


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as e:
        # The URL may hold a password: say what is wrong without repeating it.
        raise ValueError("not a valid database URL (expected e.g. sqlite:///path/to/file.db)") from e


def _sanitise(message: str, url: str) -> str:
    """A driver message with the URL and password removed."""
    secrets = [url]
    try:
        parsed = make_url(url)
        secrets.append(parsed.render_as_string(hide_password=False))
        if parsed.password and len(str(parsed.password)) >= 4:
            secrets.append(str(parsed.password))
    except (ArgumentError, ValueError):
        pass
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message.strip()


def _result(
    columns: list[str], raw_rows: Sequence[Sequence[Any]], *, max_rows: int, started: float
) -> QueryResult:
    truncated = len(raw_rows) > max_rows
    rows = [[to_json_safe(v) for v in row] for row in raw_rows[:max_rows]]
    elapsed_ms = (time.monotonic() - started) * 1000.0
    return QueryResult(
        columns=columns, rows=rows, row_count=len(rows), truncated=truncated, elapsed_ms=elapsed_ms
    )


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
            engine = _create_engine(parsed)
            _ENGINES[url] = engine
        return engine


def _create_engine(parsed: URL) -> Engine:
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # psycopg 3 is required: server-side cursors and cancel() below use its API.
        # prepare_threshold=None: no automatic server-side prepared statements on pooled connections.
        url = parsed.set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {"connect_timeout": _CONNECT_TIMEOUT_S, "prepare_threshold": None}
    else:
        url = parsed.set(drivername=f"{backend}+pymysql")
        connect_args = {"connect_timeout": _CONNECT_TIMEOUT_S}
    return sqlalchemy.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
    )


def _checkout(url: str, parsed: URL) -> Any:
    engine = _engine(url, parsed)
    # The pool raises the driver's own exception (not SQLAlchemy's) when a new connection fails.
    try:
        return engine.raw_connection()
    except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error, OSError) as e:
        detail = first_line(_sanitise(str(getattr(e, "orig", None) or e), url))
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


def _run_sqlite(parsed: URL, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
    if not parsed.database or parsed.database == ":memory:":
        raise ValueError("a SQLite URL must name a database file, e.g. sqlite:///path/to/file.db")
    path = Path(parsed.database).expanduser().resolve()
    if not path.is_file():
        raise DatabaseUnavailable(f"SQLite database file not found: {path.name}")
    uri = f"file:{quote(str(path))}?mode=ro"

    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as e:
        raise DatabaseUnavailable(f"cannot open SQLite database {path.name}: {e}") from None
    started = time.monotonic()
    deadline = started + timeout_s
    watchdog: _Watchdog | None = None
    try:
        conn.execute("PRAGMA query_only = ON")
        # mode=ro does not stop ATTACH (or VACUUM INTO) from creating a new file; no attached databases at all.
        if hasattr(conn, "setlimit"):
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.text_factory = _decode_sqlite_text
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
        conn.set_authorizer(_sqlite_authorizer)
        watchdog = _Watchdog(timeout_s + _WATCHDOG_GRACE_S, conn.interrupt)
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        raw_rows = cursor.fetchmany(max_rows + 1) if cursor.description else []
    except (sqlite3.Error, sqlite3.Warning) as e:
        if time.monotonic() >= deadline and "interrupt" in str(e).lower():
            raise QueryTimeout(f"query stopped after the {timeout_s:g} s time limit") from None
        raise QueryFailed(str(e)) from None
    finally:
        if watchdog is not None:
            watchdog.stop()
        conn.close()
    return _result(columns, raw_rows, max_rows=max_rows, started=started)


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _run_postgres(url: str, parsed: URL, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
    import psycopg  # the postgres extra; imported here so SQLite-only installs work without it

    raw = _checkout(url, parsed)
    pg = raw.driver_connection
    discard = False
    started = time.monotonic()
    deadline = started + timeout_s
    watchdog = _Watchdog(
        timeout_s + _WATCHDOG_GRACE_S, pg.cancel_safe if hasattr(pg, "cancel_safe") else pg.cancel
    )
    try:
        raw.rollback()  # start from a clean transaction whatever the pool's ping did
        with pg.cursor() as setup:
            setup.execute("SET TRANSACTION READ ONLY")
            setup.execute(f"SET LOCAL statement_timeout = {_remaining_ms(deadline)}")
            # DECLARE accepts only a query; the extended protocol refuses a second statement.
            with pg.cursor(name=f"text2sql_{uuid.uuid4().hex}") as cursor:
                cursor.execute(sql)
                columns = [d.name for d in cursor.description or []]
                setup.execute(f"SET LOCAL statement_timeout = {_remaining_ms(deadline)}")
                raw_rows = cursor.fetchmany(max_rows + 1)
    except psycopg.errors.QueryCanceled:
        discard = watchdog.fired
        raise QueryTimeout(f"query stopped after the {timeout_s:g} s time limit") from None
    except psycopg.OperationalError as e:
        discard = True
        raise QueryFailed(_sanitise(_psycopg_message(e), url)) from None
    except psycopg.Error as e:
        raise QueryFailed(_sanitise(_psycopg_message(e), url)) from None
    finally:
        watchdog.stop()
        _release(raw, discard=discard or watchdog.fired, reset=_reset_postgres_session)
    return _result(columns, raw_rows, max_rows=max_rows, started=started)


def _reset_postgres_session(pg: Any) -> None:
    # A rollback undoes settings but not session-level advisory locks, LISTEN or prepared statements;
    # DISCARD ALL clears them all. It cannot run inside a transaction block.
    pg.autocommit = True
    try:
        pg.execute("DISCARD ALL")
    finally:
        pg.autocommit = False


def _remaining_ms(deadline: float) -> int:
    return max(1, int((deadline - time.monotonic()) * 1000))


def _psycopg_message(error: Exception) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or first_line(str(error))


# --- MySQL / MariaDB --------------------------------------------------------------------------------------


def _run_mysql(url: str, parsed: URL, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
    import pymysql  # the mysql extra
    from pymysql.constants import CLIENT

    engine = _engine(url, parsed)
    raw = _checkout(url, parsed)
    my = raw.driver_connection
    if my.client_flag & CLIENT.MULTI_STATEMENTS:
        _release(raw, discard=True)
        raise ValueError("the MySQL URL enables multi-statements (client_flag); remove it")
    is_mariadb = bool(getattr(engine.dialect, "is_mariadb", False))
    discard = False
    watchdog: _Watchdog | None = None
    started = time.monotonic()
    try:
        raw.rollback()
        with my.cursor() as setup:
            # Session-level too: DDL commits implicitly and would otherwise run in a fresh read-write transaction.
            setup.execute("SET SESSION TRANSACTION READ ONLY")
            if is_mariadb:
                setup.execute(f"SET SESSION max_statement_time = {max(timeout_s, 0.001):.3f}")  # 0 = no limit
            else:
                setup.execute(f"SET SESSION max_execution_time = {max(1, int(timeout_s * 1000))}")
            setup.execute("START TRANSACTION READ ONLY")
            setup.execute("SELECT CONNECTION_ID()")
            (connection_id,) = setup.fetchone()
        started = time.monotonic()
        watchdog = _Watchdog(timeout_s + _WATCHDOG_GRACE_S, lambda: _kill_query(engine, connection_id))
        cursor = my.cursor(pymysql.cursors.SSCursor)
        cursor.execute(sql)
        if cursor.description is None:
            # Not a query (SET, LOCK TABLES, ...): whatever it changed dies with the connection.
            discard = True
            columns, raw_rows = [], []
        else:
            columns = [d[0] for d in cursor.description]
            raw_rows = list(cursor.fetchmany(max_rows + 1))
            if len(raw_rows) > max_rows:
                # Closing an unbuffered cursor reads every remaining row: stop the query first, then drop
                # the connection, whose state after a KILL is not worth trusting.
                discard = True
                _stop_streaming(cursor, engine, connection_id)
            else:
                cursor.close()
    except pymysql.MySQLError as e:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else None
        timed_out = code in _MYSQL_TIMEOUT_ERRORS or (watchdog is not None and watchdog.fired)
        if timed_out or code in _MYSQL_CONNECTION_ERRORS:
            discard = True
        if timed_out:
            raise QueryTimeout(f"query stopped after the {timeout_s:g} s time limit") from None
        message = e.args[1] if len(e.args) > 1 else str(e)
        raise QueryFailed(_sanitise(str(message), url)) from None
    finally:
        if watchdog is not None:
            watchdog.stop()
        _release(
            raw, discard=discard or (watchdog is not None and watchdog.fired), reset=_reset_mysql_session
        )
    return _result(columns, raw_rows, max_rows=max_rows, started=started)


def _reset_mysql_session(my: Any) -> None:
    # Named locks (GET_LOCK) outlive a rollback. Statements that return no rows (SET, LOCK TABLES, ...)
    # already cost their connection.
    with my.cursor() as cursor:
        cursor.execute("SELECT RELEASE_ALL_LOCKS()")


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
