"""The account check against real servers: administrators and accounts with file or write rights are refused,
accounts that can only read are accepted. Every role, user and database made here is dropped afterwards.

Servers come from TEXT2SQL_TEST_PG_URL and TEXT2SQL_TEST_MYSQL_URL (administrator accounts); one that cannot be
reached skips its tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.live_databases import MYSQL_URL_ENV, PG_URL_ENV
from text2sql.execution import dispose_engines, execute_read_only
from text2sql.privileges import AccountCheckError, AccountReport, check_account

PASSWORD = "Rd-0nly-pw"


def admin_engine(url: str, env_var: str) -> sa.Engine:
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError:
        engine.dispose()
        pytest.skip(f"no database server at {make_url(url).render_as_string(hide_password=True)}; set {env_var}")
    return engine


def rights(report: AccountReport) -> list[str]:
    return [r.right for r in report.excess]


# --- PostgreSQL -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_world(pg_url: str) -> Iterator[Callable[..., str]]:
    """A fresh database with one table; yields `role(*grants) -> url` that makes a login role with SELECT on the
    table plus the given extra statements ({role} in them is replaced)."""
    admin = admin_engine(pg_url, PG_URL_ENV)
    database = f"t2s_priv_{uuid.uuid4().hex[:10]}"
    roles: list[str] = []
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {database}")
    db_url = make_url(pg_url).set(database=database)
    in_db = sa.create_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with in_db.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1, 9.5)")

    def role(*extra: str) -> str:
        name = f"t2s_role_{uuid.uuid4().hex[:10]}"
        roles.append(name)
        with in_db.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
            conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {database} TO {name}")
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {name}")
            conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
            for statement in extra:
                conn.exec_driver_sql(statement.format(role=name))
        return db_url.set(username=name, password=PASSWORD).render_as_string(hide_password=False)

    try:
        yield role
    finally:
        dispose_engines()
        in_db.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {database} WITH (FORCE)")
            for name in reversed(roles):
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
            conn.exec_driver_sql("DROP ROLE IF EXISTS " + ", ".join(f"{name}_group" for name in roles))
        admin.dispose()


def test_postgres_superuser_is_refused(pg_url: str) -> None:
    admin_engine(pg_url, PG_URL_ENV).dispose()
    report = check_account(pg_url)
    if "SUPERUSER" not in rights(report):
        pytest.skip(f"{PG_URL_ENV} does not log in as a superuser")
    assert not report.read_only
    assert "pg_read_file" in report.rights_text()
    assert 'NOSUPERUSER' in report.fix_text() and "CREATE ROLE text2sql_reader LOGIN" in report.fix_text()


def test_postgres_least_privilege_role_is_accepted(pg_world: Callable[..., str]) -> None:
    url = pg_world()
    report = check_account(url)
    assert report.read_only, report.rights_text()
    assert report.account and report.account.startswith("t2s_role_")
    assert execute_read_only(url, "SELECT total FROM orders").rows == [[9.5]]


def test_postgres_role_in_pg_read_server_files_is_refused(pg_world: Callable[..., str]) -> None:
    report = check_account(pg_world("GRANT pg_read_server_files TO {role}"))
    assert rights(report) == ["member of pg_read_server_files"]
    assert "REVOKE pg_read_server_files FROM" in report.fix_text()


def test_postgres_membership_through_another_role_is_refused(pg_world: Callable[..., str]) -> None:
    url = pg_world("CREATE ROLE {role}_group NOLOGIN", "GRANT pg_signal_backend TO {role}_group", "GRANT {role}_group TO {role}")
    assert rights(check_account(url)) == ["member of pg_signal_backend"]


def test_postgres_write_grant_is_refused(pg_world: Callable[..., str]) -> None:
    report = check_account(pg_world("GRANT INSERT ON orders TO {role}"))
    assert rights(report) == ["INSERT/UPDATE/DELETE/TRUNCATE on 1 tables in schema public (orders)"]
    assert "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA \"public\"" in report.fix_text()


def test_postgres_createrole_is_refused(pg_world: Callable[..., str]) -> None:
    assert rights(check_account(pg_world("ALTER ROLE {role} CREATEROLE"))) == ["CREATEROLE"]


def test_unreachable_server_is_an_error_without_the_password() -> None:
    secret = "s3cret-Passw0rd"
    for url in (
        f"postgresql+psycopg://app:{secret}@127.0.0.1:1/db",
        f"postgresql+psycopg://app@127.0.0.1:1/db?password={secret}",
        f"mysql+pymysql://app@127.0.0.1:1/db?password={secret}",
    ):
        with pytest.raises(AccountCheckError) as info:
            check_account(url, connect_timeout_s=2)
        assert secret not in str(info.value) and "***" in str(info.value)


# --- MariaDB / MySQL --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mysql_world(mysql_url: str) -> Iterator[Callable[..., str]]:
    """A fresh database with one table; yields `user(*grants) -> url` that makes a user with SELECT on it plus
    the given extra statements ({user} is the quoted account, {role} a role name made for it)."""
    admin = admin_engine(mysql_url, MYSQL_URL_ENV)
    database = f"t2s_priv_{uuid.uuid4().hex[:10]}"
    users: list[str] = []
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {database}")
        conn.exec_driver_sql(f"CREATE TABLE {database}.orders (id INT PRIMARY KEY, total DECIMAL(10, 2))")
        conn.exec_driver_sql(f"INSERT INTO {database}.orders VALUES (1, 9.5)")

    def user(*extra: str) -> str:
        name = f"t2s_user_{uuid.uuid4().hex[:10]}"
        users.append(name)
        account = f"'{name}'@'%%'"  # pymysql formats statements: %% is %
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE USER {account} IDENTIFIED BY '{PASSWORD}'")
            conn.exec_driver_sql(f"GRANT SELECT ON {database}.* TO {account}")
            for statement in extra:
                conn.exec_driver_sql(statement.format(user=account, role=f"{name}_role", database=database))
        return make_url(mysql_url).set(username=name, password=PASSWORD, database=database).render_as_string(
            hide_password=False
        )

    try:
        yield user
    finally:
        dispose_engines()
        with admin.connect() as conn:
            for name in users:
                conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}_role")
            conn.exec_driver_sql(f"DROP DATABASE {database}")
        admin.dispose()


def test_mysql_root_is_refused(mysql_url: str) -> None:
    admin_engine(mysql_url, MYSQL_URL_ENV).dispose()
    report = check_account(mysql_url)
    if not any(r.startswith("ALL PRIVILEGES ON *.*") for r in rights(report)):
        pytest.skip(f"{MYSQL_URL_ENV} does not log in as an administrator")
    assert not report.read_only
    assert "CREATE USER 'text2sql_reader'@'%'" in report.fix_text()


def test_mysql_select_only_user_is_accepted(mysql_world: Callable[..., str]) -> None:
    url = mysql_world()
    report = check_account(url)
    assert report.read_only, report.rights_text()
    assert execute_read_only(url, "SELECT total FROM orders").rows == [[9.5]]


def test_mysql_user_with_file_is_refused(mysql_world: Callable[..., str]) -> None:
    report = check_account(mysql_world("GRANT FILE ON *.* TO {user}"))
    assert rights(report) == ["FILE ON *.*"]
    assert "LOAD_FILE" in report.rights_text()
    assert "REVOKE FILE ON *.* FROM `t2s_user_" in report.fix_text()


def test_mysql_write_grant_on_the_database_is_refused(mysql_world: Callable[..., str]) -> None:
    report = check_account(mysql_world("GRANT INSERT, UPDATE ON {database}.* TO {user}"))
    assert [r.split(" ON ")[0] for r in rights(report)] == ["INSERT", "UPDATE"]


def test_mysql_write_grant_through_an_inactive_role_is_refused(mysql_world: Callable[..., str]) -> None:
    # Not a default role, but a query could SET ROLE it.
    report = check_account(
        mysql_world("CREATE ROLE {role}", "GRANT DELETE ON {database}.* TO {role}", "GRANT {role} TO {user}")
    )
    assert [r.split(" ON ")[0] for r in rights(report)] == ["DELETE"]


def test_mysql_role_with_only_select_is_accepted(mysql_world: Callable[..., str]) -> None:
    url = mysql_world("CREATE ROLE {role}", "GRANT SELECT ON {database}.* TO {role}", "GRANT {role} TO {user}")
    assert check_account(url).read_only


def test_sqlite_is_always_fine(tmp_path) -> None:
    report = check_account(f"sqlite:///{tmp_path / 'any.db'}")
    assert report.read_only and report.account is None
