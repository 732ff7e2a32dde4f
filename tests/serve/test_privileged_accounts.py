"""Over real Serve: a database reached through the PostgreSQL superuser is refused for execution with a 403
that names the rights and the override; `allow_privileged_account: true` runs it and GET /v1/databases warns.

The model is a fake (its SQL does not matter here); the database and its account are real.
"""

from __future__ import annotations

import uuid

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from deployments.builder import build_app_with_engines
from tests.fakes import FakeEngine
from tests.live_databases import PG_URL

MODEL = "fake"


@pytest.fixture(scope="module")
def superuser_database():
    """A fresh database with three orders, reached as the configured (superuser) account."""
    admin = sa.create_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"t2s_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            if not connection.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar():
                pytest.skip("TEXT2SQL_TEST_PG_URL does not log in as a superuser")
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.SQLAlchemyError:
        pytest.skip(f"PostgreSQL unreachable at {make_url(PG_URL).render_as_string(hide_password=True)}")
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db = sa.create_engine(url, poolclass=NullPool)
    with db.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, total NUMERIC(10, 2))")
        connection.exec_driver_sql("INSERT INTO orders VALUES (1, 1.5), (2, 2.5), (3, 3.5)")
    db.dispose()
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(scope="module")
def base_url(ray_serve, superuser_database, tmp_path_factory) -> str:
    args = {
        "default_model": MODEL,
        "databases": {
            "refused": {"url": superuser_database, "timeout_s": 5},
            "allowed": {"url": superuser_database, "timeout_s": 5, "allow_privileged_account": True},
        },
        "models": [
            {"name": MODEL, "source": str(tmp_path_factory.mktemp("models") / "fake.gguf"), "ray_actor_options": {"num_cpus": 0}}
        ],
    }
    return ray_serve(build_app_with_engines(args, engines={MODEL: FakeEngine("SELECT COUNT(*) FROM orders")}))


def ask(base_url: str, **body) -> requests.Response:
    return requests.post(f"{base_url}/v1/sql/generate", json={"question": "How many orders?", **body}, timeout=120)


def test_refused_database_is_a_403_naming_the_rights_and_the_override(base_url):
    response = ask(base_url, database="refused", execute=True)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "privileged_account" and error["param"] == "database"
    assert "SUPERUSER" in error["message"] and "allow_privileged_account: true" in error["message"]
    assert "CREATE ROLE text2sql_reader" in error["message"]


def test_refused_database_still_answers_without_execute(base_url):
    response = ask(base_url, database="refused")
    assert response.status_code == 200, response.text
    assert response.json()["sql"] == "SELECT COUNT(*) FROM orders" and response.json()["rows"] is None


def test_allowed_database_executes(base_url):
    response = ask(base_url, database="allowed", execute=True)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[3]]


def test_listing_shows_which_accounts_can_do_more_than_read(base_url):
    listed = {d["name"]: d for d in requests.get(f"{base_url}/v1/databases", timeout=60).json()["data"]}
    assert listed["refused"]["privileged"] is True and "execution is refused" in listed["refused"]["warnings"][0]
    assert listed["allowed"]["privileged"] is True
    assert "SUPERUSER" in listed["allowed"]["warnings"][0]
    assert "allow_privileged_account is true" in listed["allowed"]["warnings"][0]
