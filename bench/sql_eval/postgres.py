"""Load sql-eval's dumps into a PostgreSQL server, one database per dump (`load_postgres`).

Each dump goes into ``sqleval_<db>`` with ``psql -v ON_ERROR_STOP=1 --single-transaction`` (or psycopg when psql
is not installed). A database that already holds this dump (its fingerprint is the database's COMMENT) with the
right table count is kept, so a second call takes milliseconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from bench.sql_eval.dump_text import CopyBlock, split_dump
from bench.sql_eval.files import dump_paths
from bench.sql_eval.fingerprint import Fingerprint, fingerprint_of, today_utc

logger = logging.getLogger(__name__)

DEFAULT_DSN_BASE = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_DB_PREFIX = "sqleval_"
_PSQL_TIMEOUT_S = 600
_ADVISORY_LOCK_KEY = 0x5E1E7A1  # serialises concurrent load_postgres calls on one server


def load_postgres(
    dsn_base: str = DEFAULT_DSN_BASE,
    *,
    db_prefix: str = DEFAULT_DB_PREFIX,
    base_dir: str | Path | None = None,
    force: bool = False,
    use_psql: bool | None = None,
) -> dict[str, str]:
    """Load every dump into its own database ``<db_prefix><db>``; return ``{db_name: SQLAlchemy URL}``.

    `dsn_base` is a server URL (its database, if any, is only used as the maintenance database; default
    ``postgres``). A database is dropped and recreated unless it already holds this dump (same fingerprint,
    same table count) or `force` is set. `use_psql` picks the loader: psql (default when it is on PATH) or
    psycopg. Raises RuntimeError when the server cannot be reached or a dump fails to load.
    """
    import psycopg
    from psycopg import sql

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db_prefix):
        raise ValueError(f"db_prefix must be lowercase letters, digits and _, got {db_prefix!r}")
    base = make_url(dsn_base)
    if base.get_backend_name() != "postgresql":
        raise ValueError(
            f"dsn_base must be a postgresql:// URL, got {base.render_as_string(hide_password=True)!r}"
        )
    psql = shutil.which("psql") if use_psql in (None, True) else None
    if use_psql and psql is None:
        raise RuntimeError("use_psql=True but psql is not on PATH")

    urls: dict[str, str] = {}
    try:
        admin = psycopg.connect(
            conninfo(base, base.database or "postgres"), autocommit=True, **password_kwargs(base)
        )
    except psycopg.OperationalError as e:
        shown = base.render_as_string(hide_password=True)
        raise RuntimeError(f"PostgreSQL at {shown} is unreachable: {str(e).strip()}") from e
    with admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        force_drop = admin.info.server_version >= 130000
        for name, dump in dump_paths(base_dir).items():
            database = f"{db_prefix}{name}"
            url = base.set(drivername="postgresql+psycopg", database=database)
            urls[name] = url.render_as_string(hide_password=False)
            fingerprint = fingerprint_of(dump)
            if not force and _pg_is_current(admin, base, database, fingerprint):
                logger.debug("%s already holds %s", database, dump.name)
                continue
            started = time.monotonic()
            drop = "DROP DATABASE IF EXISTS {} WITH (FORCE)" if force_drop else "DROP DATABASE IF EXISTS {}"
            admin.execute(sql.SQL(drop).format(sql.Identifier(database)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            if psql:
                _load_with_psql(psql, base, database, dump)
            else:
                _load_with_psycopg(base, database, dump)
            tables = _pg_table_count(base, database)
            if tables != fingerprint.tables:
                raise RuntimeError(
                    f"{database}: {tables} tables after loading {dump}, expected {fingerprint.tables}"
                )
            comment = json.dumps(
                {"sql_eval_dump": fingerprint.sha256, "loaded_on": today_utc().isoformat(), "tables": tables}
            )
            admin.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(database), sql.Literal(comment))
            )
            logger.info(
                "loaded %s into %s with %s in %.2fs", dump.name, database, "psql" if psql else "psycopg",
                time.monotonic() - started,
            )  # fmt: skip
        admin.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return urls


def conninfo(base: URL, database: str) -> str:
    """A libpq URI without the password (that goes in PGPASSWORD / the password argument)."""
    return base.set(drivername="postgresql", database=database, password=None).render_as_string(
        hide_password=False
    )


def password_kwargs(base: URL) -> dict[str, str]:
    return {"password": str(base.password)} if base.password is not None else {}


def _pg_is_current(admin: Any, base: URL, database: str, fingerprint: Fingerprint) -> bool:
    row = admin.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (database,)
    ).fetchone()
    if row is None or not row[0]:
        return False
    try:
        meta = json.loads(row[0])
    except json.JSONDecodeError:
        return False
    if meta.get("sql_eval_dump") != fingerprint.sha256 or not fingerprint.current_on(meta.get("loaded_on")):
        return False
    return _pg_table_count(base, database) == fingerprint.tables


def _pg_table_count(base: URL, database: str) -> int:
    import psycopg

    with psycopg.connect(conninfo(base, database), **password_kwargs(base)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    return int(row[0])


def _load_with_psql(psql: str, base: URL, database: str, dump: Path) -> None:
    env = dict(os.environ)
    if base.password is not None:
        env["PGPASSWORD"] = str(base.password)
    env.setdefault("PGTZ", "UTC")  # relative dates are computed in UTC, like the SQLite builder
    command = [
        psql,
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        "-d",
        conninfo(base, database),
    ]
    done = subprocess.run(
        [*command, "-f", str(dump)],
        env=env,
        capture_output=True,
        text=True,
        timeout=_PSQL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql failed to load {dump} into {database}: {done.stderr.strip()[-2000:]}")


def _load_with_psycopg(base: URL, database: str, dump: Path) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo(base, database), **password_kwargs(base)) as connection:  # one transaction
        connection.execute("SET TIME ZONE 'UTC'")
        for part in split_dump(dump.read_text(encoding="utf-8")):
            if isinstance(part, CopyBlock):
                target = sql.SQL("COPY {} {} FROM STDIN").format(
                    sql.Identifier(*part.table.split(".")),
                    sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, part.columns)))
                    if part.columns
                    else sql.SQL(""),
                )
                with connection.cursor().copy(target) as copy:
                    for line in part.lines:
                        copy.write(line + "\n")
            elif part.strip():
                connection.execute(
                    part.encode()
                )  # bytes: no placeholder parsing; simple protocol, many statements
