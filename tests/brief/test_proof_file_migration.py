"""The migration that gives proofs their file's name, type and size: proofs kept before it get sensible values."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import _fresh_database, alembic_config, drop_database

BEFORE = "9a4d2e7c1b30"
KEY = "ab" * 32 + ".png"


def test_existing_proofs_get_the_type_of_their_key_and_a_name_from_their_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = _fresh_database(tmp_path, "proofmeta")
    engine = create_engine(url)
    try:
        command.upgrade(alembic_config(url), BEFORE)
        with engine.begin() as connection:
            if make_url(url).get_backend_name() == "postgresql":
                # Only the proofs' own columns matter here: their creative need not exist.
                connection.execute(text("SET LOCAL session_replication_role = replica"))
            for proof_id, key in ((7, KEY), (8, "")):
                connection.execute(
                    text(
                        "INSERT INTO proofs_of_posting (id, creative_id, url, posted_at, file_key) "
                        "VALUES (:id, 1, 'https://example.com/p', '2026-11-01 10:00:00+00:00', :key)"
                    ),
                    {"id": proof_id, "key": key},
                )
        command.upgrade(alembic_config(url), "head")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, file_name, content_type, size_bytes FROM proofs_of_posting ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [(7, "proof-7.png", "image/png", 0), (8, "", "", 0)]
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM proofs_of_posting"))  # SQLite's downgrade copies the table
        command.downgrade(alembic_config(url), BEFORE)
    finally:
        engine.dispose()
        drop_database(url)
