"""Test harness: real Alembic migrations once per session, one rolled-back transaction per test.

The same suite runs on SQLite (default) and on PostgreSQL when CLEARLINE_TEST_DATABASE_URL points at
a server (``make test`` does both when PostgreSQL is reachable).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]


def _fresh_database(tmp_dir: Path, label: str) -> str:
    base = os.environ.get("CLEARLINE_TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        return f"sqlite:///{tmp_dir / f'{label}.db'}"
    name = f"clearline_test_{label}_{uuid.uuid4().hex[:8]}"
    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def alembic_config(url: str) -> Config:
    """The project's Alembic configuration pointed at ``url``."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    return config


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def use_database(url: str) -> None:
    """Point settings (and so the app, the CLI and jobs) at ``url``."""
    from clearline.config import get_settings

    os.environ["CLEARLINE_DATABASE_URL"] = url
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = _fresh_database(tmp_path_factory.mktemp("db"), worker)
    migrate(url)
    use_database(url)
    yield url
    from clearline.kit.db import engine_for

    engine_for(url).dispose()
    drop_database(url)


def _real_sqlite_transactions(engine: Engine) -> None:
    """pysqlite begins a transaction only before DML, so a test's savepoint became the outermost
    transaction and the app's commit (RELEASE SAVEPOINT) really committed, leaking rows into later
    tests. Emitting BEGIN ourselves makes the per-test transaction wrap every savepoint."""

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")

    engine.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    from clearline.kit.db import engine_for

    engine = engine_for(database_url)
    if engine.dialect.name == "sqlite":
        _real_sqlite_transactions(engine)
    return engine


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def app(db: Session):  # type: ignore[no-untyped-def]
    from clearline.app import create_app
    from clearline.auth.deps import get_session

    application = create_app()

    def _session() -> Iterator[Session]:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    application.dependency_overrides[get_session] = _session
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client
