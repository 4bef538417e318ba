from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.committed import committed_database, pointed_at


@pytest.fixture(scope="session")
def committed_url(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[str]:
    with committed_database(tmp_path_factory.mktemp("committed"), "committed") as url:
        yield url


@pytest.fixture
def committed(committed_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings point at a separate migrated database that commands commit to; emptied after the test."""
    monkeypatch.delenv("CLEARLINE_ACTOR", raising=False)
    with pointed_at(committed_url, database_url):
        yield committed_url
