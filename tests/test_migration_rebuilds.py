"""Migrations over a database that holds data: on SQLite a constraint change rebuilds the table (copy, drop,
rename), which must work while other rows reference it, all in one transaction, and leave every reference whole."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from tests.conftest import _fresh_database, alembic_config, drop_database

BEFORE = "5c2e8a1f7d43"  # before inbox_events loses its brand foreign key (a rebuild on SQLite)
AT = "2026-11-20 10:00:00+00:00"


def test_an_order_referencing_its_inbox_event_survives_the_inbox_rebuild_up_and_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = _fresh_database(tmp_path, "rebuilds")
    engine = create_engine(url)
    try:
        command.upgrade(alembic_config(url), BEFORE)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO brands (id, slug, name, default_currency, allowed_domains, gl_account, cost_center, "
                    "created_at) VALUES (1, 'acme', 'Acme', 'USD', '[]', '', '', :at)"
                ),
                {"at": AT},
            )
            connection.execute(
                text(
                    "INSERT INTO inbox_events (id, brand_id, source, kind, external_id, delivery_id, body, "
                    "body_sha256, received_at, error) VALUES (5, 1, 'postback', 'order', 'O-1', '', '{}', '', :at, '')"
                ),
                {"at": AT},
            )
            connection.execute(
                text(
                    "INSERT INTO orders (id, brand_id, external_id, source, ordered_at, currency, customer_ref, "
                    "customer_email_hash, click_id, coupon_codes, landing_url, shipping_amount, tax_amount, ip_hash, "
                    "user_agent, received_at, inbox_event_id) VALUES (9, 1, 'O-1', 'postback', :at, 'USD', '', '', "
                    "'', '[]', '', 0, 0, '', '', :at, 5)"
                ),
                {"at": AT},
            )

        command.upgrade(alembic_config(url), "head")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT inbox_event_id FROM orders WHERE id = 9")).scalar_one() == 5
            assert connection.execute(text("SELECT external_id FROM inbox_events WHERE id = 5")).scalar_one() == "O-1"

        command.downgrade(alembic_config(url), BEFORE)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT inbox_event_id FROM orders WHERE id = 9")).scalar_one() == 5
            if url.startswith("sqlite"):
                leftovers = connection.execute(
                    text("SELECT name FROM sqlite_master WHERE name LIKE '_alembic_tmp%'")
                ).all()
                assert leftovers == []
    finally:
        engine.dispose()
        drop_database(url)
