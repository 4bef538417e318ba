"""A separate, migrated database for code that opens its own unit of work and commits (the CLI, jobs).

The rolled-back ``db`` fixture cannot see what a command commits, so these tests point the settings at
their own database, and every table is emptied after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, inspect
from sqlalchemy.orm import Session

import clearline.models  # noqa: F401  (registers every table on the metadata)
from clearline.kit.db import Base, engine_for
from tests.conftest import _fresh_database, drop_database, migrate, use_database


@contextmanager
def committed_database(tmp_dir: Path, label: str) -> Iterator[str]:
    """A freshly migrated database, dropped at the end."""
    url = _fresh_database(tmp_dir, label)
    try:
        migrate(url)
        yield url
    finally:
        engine_for(url).dispose()
        drop_database(url)


def wipe(url: str) -> None:
    """Empty every table, children first."""
    engine = engine_for(url)
    present = set(inspect(engine).get_table_names())
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in present:
                connection.execute(delete(table))


@contextmanager
def pointed_at(url: str, previous: str) -> Iterator[None]:
    """Point the settings (so the CLI and the app) at ``url`` for one test, then empty it and point back."""
    use_database(url)
    try:
        yield
    finally:
        use_database(previous)
        wipe(url)


def session_on(url: str) -> Session:
    return Session(bind=engine_for(url), expire_on_commit=False)
