"""The live database servers the tests use, and the one way a test reaches one or skips with the reason."""

from __future__ import annotations

import os
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

PG_URL_ENV = "TEXT2SQL_TEST_PG_URL"
MYSQL_URL_ENV = "TEXT2SQL_TEST_MYSQL_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
PG_URL = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
MYSQL_URL = os.environ.get(MYSQL_URL_ENV, DEFAULT_MYSQL_URL)


def reachable_engine(url: str, env_var: str, **options: Any) -> sa.Engine:
    """An engine on `url` that has connected once; skips the test, naming the server and `env_var`, when not."""
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5}, **options)
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        shown = make_url(url).render_as_string(hide_password=True)
        reason = type(getattr(e, "orig", None) or e).__name__
        pytest.skip(f"no database server at {shown} ({reason}); set {env_var} to one you can use")
    return engine
