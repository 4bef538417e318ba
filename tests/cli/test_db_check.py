"""`clearline db check`: what the schema leaves to the code instead of foreign keys (ledger postings, the inbox's
brand) is checked on demand, and a problem fails the command naming it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clearline.cli.main import app as cli
from clearline.kit.db import engine_for
from tests import factories


def test_a_sound_database_passes(committed: str) -> None:
    with Session(engine_for(committed)) as session:
        factories.brand(session, slug="db-check")
        session.commit()

    result = CliRunner().invoke(cli, ["db", "check"])

    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())  # (the console wraps at its width)
    assert "database intact" in said and "every inbox event's brand exists" in said
    assert "every signing secret opens" in said


def test_an_inbox_event_of_a_missing_brand_is_named(committed: str) -> None:
    with engine_for(committed).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO inbox_events (brand_id, source, kind, external_id, delivery_id, body, body_sha256, "
                "received_at, error) VALUES (987654, 'postback', 'order', 'O-1', '', '{}', '', :at, '')"
            ),
            {"at": "2026-11-25 00:00:00"},
        )
        event_id = conn.execute(text("SELECT max(id) FROM inbox_events")).scalar_one()

    result = CliRunner().invoke(cli, ["db", "check"])

    assert result.exit_code == 1
    assert f"inbox: inbox event {event_id}: brand 987654 does not exist" in " ".join(result.output.split())


def test_a_secret_that_does_not_open_under_the_current_key_is_named(committed: str) -> None:
    from clearline.auth.actor import Actor
    from clearline.ingest import signatures
    from clearline.kit import sealing
    from clearline.models import BrandSecret

    with Session(engine_for(committed), expire_on_commit=False) as session:
        brand = factories.brand(session, slug="db-check-secrets")
        signatures.rotate(session, Actor.system("test"), brand_id=brand.id, kind="postback")
        session.flush()
        row = session.query(BrandSecret).filter_by(brand_id=brand.id).one()
        row.sealed_secret = signatures.seal_secret(
            "whsec_x", brand_id=brand.id, kind="postback", key=sealing.derive_data_key("another secret key")
        )
        session.commit()

    result = CliRunner().invoke(cli, ["db", "check"])

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert f"secrets: brand_secrets row {row.id} (brand {brand.id}, postback) does not open" in said
