"""Alembic environment: one set of migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Engine

import clearline.models  # noqa: F401  (registers every table)
from clearline.config import get_settings
from clearline.kit.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _sqlite_rebuilds(engine: Engine) -> None:
    """SQLite changes a table's constraints by rebuilding it (batch mode: copy, drop the old table, rename the
    copy). With foreign keys on, dropping a table that other rows reference fails, and the driver's implicit
    transactions leave DDL outside any transaction, so a failure would leave the copy behind. SQLite's own
    procedure: foreign keys off outside the transaction, every step in one explicit transaction, then
    `foreign_key_check` before it commits (see `_run`)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN before DML only: ours below covers DDL too
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # (make_engine's listener, run first, turned it on)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        _sqlite_rebuilds(engine)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        known = set(_orphans(connection)) if sqlite else set()
        context.run_migrations()
        if sqlite:
            broken = [row for row in _orphans(connection) if row not in known]
            if broken:  # raised inside the transaction: nothing of the migration is kept
                raise RuntimeError(f"the migration leaves rows without their parent (table, rowid, parent): {broken[:5]}")


def _orphans(connection) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """SQLite's foreign key check: (table, rowid, parent, key index) per row whose parent is missing. Rows that were
    orphans before the migration (inserted with foreign keys off) are not the migration's doing."""
    return [tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()]


run_migrations()
