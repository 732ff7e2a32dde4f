"""Whether a database account can do more than read, and the SQL that makes it read-only.

Execution runs every query in a read-only transaction and validation refuses file and admin functions
(`text2sql.execution`, `text2sql.validation`). Some rights work inside a read-only transaction all the same
(a PostgreSQL superuser's ``pg_read_file`` and ``COPY ... TO PROGRAM``, MySQL's FILE with ``LOAD_FILE`` and
``INTO OUTFILE``, ``pg_terminate_backend``), and write grants leave the read-only transaction as the only
guard. `check_account` lists every such right of the account a URL logs in as, each with what it allows and
the SQL that removes it.

What is checked:

- PostgreSQL: SUPERUSER, CREATEROLE, CREATEDB and REPLICATION; membership, direct or inherited, in
  ``pg_read_server_files``, ``pg_write_server_files``, ``pg_execute_server_program``, ``pg_signal_backend`` and
  ``pg_write_all_data`` (PostgreSQL 14+); CREATE on the database; INSERT, UPDATE, DELETE or TRUNCATE on any
  table or view outside the system schemas (an owner has them all). Not checked, as they only read or are
  PUBLIC's by default: BYPASSRLS, ``pg_read_all_data``, EXECUTE on functions, CREATE on schema ``public``
  before PostgreSQL 15 (a read-only transaction refuses CREATE anyway).
- MySQL/MariaDB: every privilege in ``SHOW GRANTS`` other than SELECT, SHOW VIEW, SHOW DATABASES and USAGE,
  whether global, per database, table, column or routine (EXECUTE too: a SQL SECURITY DEFINER routine runs
  with its definer's rights), WITH GRANT OPTION, PROXY, and the same for every role granted to the account,
  active or not (a query could SET ROLE).
- SQLite: nothing; execution opens the file read-only.
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.pool import NullPool

from text2sql.db_urls import masked_url, parse_url, scrub, with_driver
from text2sql.messages import first_line
from text2sql.strict import StrictModel

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
DOCS = "docs/read-only-accounts.md"
# How many tables a message names before it says "and N more".
_NAMED_TABLES = 5


class ExcessRight(StrictModel):
    right: str = Field(description="The right, as the database names it, e.g. 'SUPERUSER' or 'FILE ON *.*'.")
    allows: str = Field(description="What it lets a query do beyond reading.")
    fix: str = Field(description="SQL that removes it, run as an administrator.")


class AccountReport(StrictModel):
    backend: str = Field(description="SQLAlchemy backend name: sqlite, postgresql, mysql or mariadb.")
    account: str | None = Field(default=None, description="The account the URL logs in as; null for SQLite.")
    excess: list[ExcessRight] = Field(
        default_factory=list, description="Rights beyond reading; empty when the account can only read."
    )
    read_only_setup: str | None = Field(
        default=None, description="SQL that creates a dedicated read-only account instead, when some right is in excess."
    )

    @property
    def read_only(self) -> bool:
        return not self.excess

    def rights_text(self) -> str:
        """The excess rights with what each allows, on one line: 'SUPERUSER (reads ...); FILE ON *.* (...)'."""
        return "; ".join(f"{r.right} ({r.allows})" for r in self.excess)

    def fix_text(self) -> str:
        """How to get to a read-only account: a dedicated one (best when this is an administrator), or the SQL
        that removes each excess right from this one."""
        revokes = " ".join(dict.fromkeys(r.fix for r in self.excess))
        dedicated = f"connect as a dedicated read-only account ({self.read_only_setup}), or " if self.read_only_setup else ""
        return f"{dedicated}remove the rights as an administrator: {revokes}"


class AccountCheckError(Exception):
    """The account could not be checked (unreachable database, bad login); the message names no secret."""


def check_account(url: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> AccountReport:
    """What the account `url` logs in as can do beyond reading; see the module docstring for the rights checked."""
    try:
        parsed = parse_url(url)
    except ValueError as e:
        raise AccountCheckError(str(e)) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return AccountReport(backend=backend)
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise AccountCheckError(f"cannot check accounts of {backend!r} databases")
    engine = sa.create_engine(
        with_driver(parsed), poolclass=NullPool, connect_args={"connect_timeout": max(1, int(connect_timeout_s))}
    )
    try:
        with engine.connect() as connection:
            if backend == "postgresql":
                return _postgres_report(connection)
            return _mysql_report(connection, backend)
    except sa.exc.SQLAlchemyError as e:
        detail = first_line(scrub(str(getattr(e, "orig", None) or e), url))
        raise AccountCheckError(f"cannot check the account of {masked_url(parsed)}: {detail}") from None
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------------
# PostgreSQL

_PG_ROLE_ATTRIBUTES = {
    "rolsuper": (
        "SUPERUSER", "NOSUPERUSER",
        "bypasses every permission: reads and writes server files (pg_read_file, COPY ... TO PROGRAM)",
    ),
    "rolcreaterole": ("CREATEROLE", "NOCREATEROLE", "creates roles and can grant itself their rights"),
    "rolcreatedb": ("CREATEDB", "NOCREATEDB", "creates databases"),
    "rolreplication": ("REPLICATION", "NOREPLICATION", "streams every change to every database"),
}
_PG_ROLES = {
    "pg_read_server_files": "reads any file the server can (pg_read_file, COPY FROM a file)",
    "pg_write_server_files": "writes files on the server (COPY TO a file)",
    "pg_execute_server_program": "runs programs on the server (COPY ... PROGRAM)",
    "pg_signal_backend": "cancels and terminates other sessions (pg_terminate_backend)",
    "pg_write_all_data": "writes every table",
}


def _postgres_report(connection: sa.Connection) -> AccountReport:
    role = connection.exec_driver_sql(
        "SELECT current_user, current_database(), current_schema(), rolsuper, rolcreaterole, rolcreatedb, "
        "rolreplication, has_database_privilege(current_database(), 'CREATE') "
        "FROM pg_roles WHERE rolname = current_user"
    ).one()
    user, database, schema = role[0], role[1], role[2] or "public"
    who = _pg_ident(user)
    excess = [
        ExcessRight(right=name, allows=allows, fix=f"ALTER ROLE {who} {removal};")
        for attribute, (name, removal, allows) in _PG_ROLE_ATTRIBUTES.items()
        if getattr(role, attribute)
    ]
    # A superuser has every other right too: naming them all would only bury the one that matters.
    if not role.rolsuper:
        members = connection.exec_driver_sql(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%(names)s) "
            "AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY rolname",
            {"names": list(_PG_ROLES)},
        ).scalars()
        excess += [
            ExcessRight(
                right=f"member of {name}",
                allows=_PG_ROLES[name],
                fix=f"REVOKE {name} FROM {who}; (or from the role {user} inherits it through)",
            )
            for name in members
        ]
        if role[7]:
            excess.append(
                ExcessRight(
                    right=f"CREATE ON DATABASE {database}",
                    allows="creates schemas",
                    fix=f"REVOKE CREATE ON DATABASE {_pg_ident(database)} FROM {who}, PUBLIC; "
                    "(an owner keeps it: connect as a role that does not own the database)",
                )
            )
        excess += _pg_table_writes(connection, who)
    setup = None
    if excess:
        setup = (
            "CREATE ROLE text2sql_reader LOGIN PASSWORD '<password>'; "
            f"GRANT CONNECT ON DATABASE {_pg_ident(database)} TO text2sql_reader; "
            f"GRANT USAGE ON SCHEMA {_pg_ident(schema)} TO text2sql_reader; "
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {_pg_ident(schema)} TO text2sql_reader;"
        )
    return AccountReport(backend="postgresql", account=user, excess=excess, read_only_setup=setup)


def _pg_table_writes(connection: sa.Connection, who: str) -> list[ExcessRight]:
    writable = connection.exec_driver_sql(
        "SELECT n.nspname, c.relname, pg_has_role(c.relowner, 'USAGE') AS owned "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%' "
        "AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') "
        "ORDER BY 1, 2"
    ).all()
    rights = []
    for schema in dict.fromkeys(row.nspname for row in writable):
        tables = [row for row in writable if row.nspname == schema]
        named = ", ".join(row.relname for row in tables[:_NAMED_TABLES])
        more = f" and {len(tables) - _NAMED_TABLES} more" if len(tables) > _NAMED_TABLES else ""
        fix = f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {_pg_ident(schema)} FROM {who}, PUBLIC;"
        if any(row.owned for row in tables):
            fix += " (an owner keeps these rights: connect as a role that does not own the tables)"
        rights.append(
            ExcessRight(
                right=f"INSERT/UPDATE/DELETE/TRUNCATE on {len(tables)} tables in schema {schema} ({named}{more})",
                allows="changes data",
                fix=fix,
            )
        )
    return rights


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------------
# MySQL / MariaDB

_MYSQL_READ_PRIVILEGES = frozenset({"SELECT", "SHOW VIEW", "SHOW DATABASES", "USAGE"})
_MYSQL_ALLOWS = {
    "ALL PRIVILEGES": "everything: writes data, reads and writes server files, administers the server",
    "FILE": "reads and writes server files (LOAD_FILE, SELECT ... INTO OUTFILE)",
    "SUPER": "administers the server: kills sessions, changes global settings, writes despite read_only",
    "PROCESS": "sees every session's running statements",
    "SHUTDOWN": "stops the server",
    "RELOAD": "flushes logs, caches and privileges",
    "EXECUTE": "runs stored routines, which may write or run with their definer's rights",
    "GRANT OPTION": "grants its rights to other accounts",
    "PROXY": "acts as other accounts",
    "LOCK TABLES": "locks tables against other sessions",
    "EVENT": "schedules statements the server runs by itself",
    "TRIGGER": "attaches statements to other accounts' writes",
    "CREATE USER": "creates and changes accounts",
    "REPLICATION SLAVE": "reads every change to every database from the binary log",
    "BINLOG MONITOR": "reads every change to every database from the binary log",
}
_MYSQL_WRITES = "changes data or the schema"
_MYSQL_OTHER = "more than reading"
_BACKTICKED = r"`(?:[^`]|``)*`"
_QUOTED = r"'(?:[^']|'')*'"
_IDENT = rf"(?:{_BACKTICKED}|[^\s.`]+)"
_OBJECT = rf"(?:(?:FUNCTION|PROCEDURE|PACKAGE\s+BODY|PACKAGE)\s+)?{_IDENT}(?:\.{_IDENT})?"
_ACCOUNT = rf"(?:{_BACKTICKED}|{_QUOTED}|[^\s@]+)(?:@(?:{_BACKTICKED}|{_QUOTED}|\S+))?"
_PRIVILEGE_GRANT = re.compile(
    rf"^GRANT\s+(?P<privileges>.+?)\s+ON\s+(?P<object>{_OBJECT})\s+TO\s+(?P<grantee>{_ACCOUNT})(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ROLE_GRANT = re.compile(rf"^GRANT\s+(?P<roles>.+?)\s+TO\s+(?P<grantee>{_ACCOUNT})(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)


def _mysql_report(connection: sa.Connection, backend: str) -> AccountReport:
    user, database = connection.exec_driver_sql("SELECT CURRENT_USER(), DATABASE()").one()
    excess: list[ExcessRight] = []
    seen_roles: set[str] = set()
    pending: list[str | None] = [None]  # None: the account itself
    while pending:
        role = pending.pop()
        for line in _show_grants(connection, role, _my_account(str(user)), excess):
            rights, roles = parse_mysql_grant(line)
            excess += rights
            for granted in roles:
                if granted not in seen_roles:
                    seen_roles.add(granted)
                    pending.append(granted)
    setup = None
    if excess:
        setup = (
            "CREATE USER 'text2sql_reader'@'%' IDENTIFIED BY '<password>'; "
            f"GRANT SELECT, SHOW VIEW ON {_my_ident(database or '<database>')}.* TO 'text2sql_reader'@'%';"
        )
    return AccountReport(backend=backend, account=str(user), excess=excess, read_only_setup=setup)


def _show_grants(connection: sa.Connection, role: str | None, account: str, excess: list[ExcessRight]) -> list[str]:
    if role is None:
        return _lines(connection, "SHOW GRANTS")
    # SHOW GRANTS FOR a role needs read access to the mysql schema, except for a role that is active (MariaDB)
    # or named in USING (MySQL 8): try each in turn.
    attempts = [
        [f"SHOW GRANTS FOR {role}"],
        [f"SET ROLE {role}", "SHOW GRANTS FOR CURRENT_ROLE", "SET ROLE NONE"],
        [f"SHOW GRANTS FOR CURRENT_USER() USING {role}"],
    ]
    for statements in attempts:
        try:
            lines: list[str] = []
            for statement in statements:
                lines += _lines(connection, statement)
            return lines
        except sa.exc.DBAPIError as e:
            logger.debug("%s: %s", statements[0], first_line(e.orig or e))
    # Unknown rights count as too many: the role could hold anything.
    excess.append(
        ExcessRight(
            right=f"role {role}",
            allows="unknown: this account cannot read the role's grants",
            fix=f"REVOKE {role} FROM {account};",
        )
    )
    return []


def _lines(connection: sa.Connection, statement: str) -> list[str]:
    # pymysql formats every statement with %-style parameters: a host such as `%` must be doubled.
    result = connection.exec_driver_sql(statement.replace("%", "%%"))
    return [str(row[0]) for row in result] if result.returns_rows else []


def parse_mysql_grant(line: str) -> tuple[list[ExcessRight], list[str]]:
    """One line of SHOW GRANTS: the rights beyond reading it gives, and the roles it grants (as written)."""
    line = line.strip().rstrip(";")
    match = _PRIVILEGE_GRANT.match(line)
    if match is not None:
        target, grantee, rest = match["object"], match["grantee"], match["rest"]
        names = [_privilege_name(p) for p in _split_top_level(match["privileges"])]
        rights = []
        beyond = [name for name in names if name not in _MYSQL_READ_PRIVILEGES]
        if beyond:
            revoke = f"REVOKE {', '.join(beyond)} ON {target} FROM {grantee};"
            if "ALL PRIVILEGES" in beyond or "ALL" in beyond:
                revoke += f" GRANT SELECT, SHOW VIEW ON {target} TO {grantee};"
            rights += [
                ExcessRight(right=f"{name} ON {target}", allows=_mysql_allows(name), fix=revoke) for name in beyond
            ]
        if re.search(r"\bWITH\s+GRANT\s+OPTION\b", rest, re.IGNORECASE):
            rights.append(
                ExcessRight(
                    right=f"GRANT OPTION ON {target}",
                    allows=_MYSQL_ALLOWS["GRANT OPTION"],
                    fix=f"REVOKE GRANT OPTION ON {target} FROM {grantee};",
                )
            )
        return rights, []
    match = _ROLE_GRANT.match(line)
    if match is not None:
        return [], [role.strip() for role in _split_top_level(match["roles"]) if role.strip()]
    return [], []  # SET DEFAULT ROLE, REVOKE (partial revokes) and the like only take rights away


def _privilege_name(privilege: str) -> str:
    # "SELECT (`a`, `b`)" -> "SELECT"; "ALL" is MySQL's spelling of ALL PRIVILEGES.
    name = " ".join(privilege.split("(", 1)[0].split()).upper()
    return "ALL PRIVILEGES" if name == "ALL" else name


def _mysql_allows(name: str) -> str:
    if name in _MYSQL_ALLOWS:
        return _MYSQL_ALLOWS[name]
    writes = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES", "DELETE HISTORY")
    if name.startswith(writes):
        return _MYSQL_WRITES
    return _MYSQL_OTHER


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes: 'SELECT (`a`, `b`), INSERT' -> two items."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "`'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _my_account(current_user: str) -> str:
    # CURRENT_USER() says user@host; GRANT and REVOKE want 'user'@'host'.
    name, _, host = current_user.rpartition("@")
    return "'" + name.replace("'", "''") + "'@'" + host.replace("'", "''") + "'"
