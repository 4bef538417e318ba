"""Brand signing secrets are stored encrypted (AES-GCM under the data key), bound to their brand and channel,
and read back in clear only to verify; the migration encrypts the rows stored before it, and decrypts them back."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clearline.config import Settings, get_settings
from clearline.ingest import fastpath, signatures
from clearline.kit import sealing
from clearline.kit.db import engine_for
from clearline.kit.sealing import UnreadableSecretError
from clearline.models import Brand
from tests import factories
from tests.conftest import _fresh_database, alembic_config, drop_database
from tests.ingest.conftest import POSTBACK_SECRET, SHOPIFY_SECRET, body_hmac, order_body, signed_headers

BEFORE = "7d3b9e4a2c15"  # the revision before the one that encrypts brand_secrets
OTHER_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def switch_data_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Calling it replaces the settings' data key by another one, for the rest of the test."""

    def switch() -> None:
        monkeypatch.setenv("CLEARLINE_DATA_KEY", OTHER_KEY)
        get_settings.cache_clear()

    yield switch
    monkeypatch.delenv("CLEARLINE_DATA_KEY", raising=False)
    get_settings.cache_clear()


def _stored(session_or_conn: Session | sa.Connection, brand_id: int) -> list[tuple[int, str, str]]:
    """(id, kind, stored value) of a brand's secrets, read past the ORM."""
    rows = session_or_conn.execute(
        sa.text("SELECT id, kind, sealed_secret FROM brand_secrets WHERE brand_id = :b ORDER BY id"), {"b": brand_id}
    )
    return [(row_id, kind, value) for row_id, kind, value in rows]


class TestSealing:
    def test_a_sealed_secret_opens_to_itself_and_shows_nothing_of_it(self):
        sealed = signatures.seal_secret(POSTBACK_SECRET, brand_id=7, kind="postback")
        assert sealed.startswith("v1:")
        assert POSTBACK_SECRET not in sealed and POSTBACK_SECRET[6:] not in sealed
        assert signatures.open_secret(sealed, brand_id=7, kind="postback") == POSTBACK_SECRET

    def test_each_seal_has_its_own_nonce(self):
        first, second = (signatures.seal_secret(SHOPIFY_SECRET, brand_id=7, kind="shopify") for _ in range(2))
        assert first != second

    def test_another_data_key_is_refused_naming_the_setting(self):
        sealed = signatures.seal_secret(POSTBACK_SECRET, brand_id=7, kind="postback")
        with pytest.raises(UnreadableSecretError, match="CLEARLINE_DATA_KEY") as refused:
            signatures.open_secret(sealed, brand_id=7, kind="postback", key=sealing.parse_data_key(OTHER_KEY))
        assert refused.value.status_code == 500 and POSTBACK_SECRET not in str(refused.value)

    @pytest.mark.parametrize("at", [3, 10, 40, -1])
    def test_an_altered_value_is_refused(self, at: int):
        sealed = signatures.seal_secret(POSTBACK_SECRET, brand_id=7, kind="postback")
        altered = sealed[:at] + ("A" if sealed[at] != "A" else "B") + sealed[at + 1 :]
        with pytest.raises(UnreadableSecretError):
            signatures.open_secret(altered, brand_id=7, kind="postback")

    def test_a_value_cut_short_is_refused(self):
        sealed = signatures.seal_secret(POSTBACK_SECRET, brand_id=7, kind="postback")
        with pytest.raises(UnreadableSecretError, match="malformed"):
            signatures.open_secret(sealed[:20], brand_id=7, kind="postback")

    @pytest.mark.parametrize(("brand_id", "kind"), [(8, "postback"), (7, "shopify")])
    def test_a_value_moved_to_another_brand_or_channel_is_refused(self, brand_id: int, kind: str):
        sealed = signatures.seal_secret(POSTBACK_SECRET, brand_id=7, kind="postback")
        with pytest.raises(UnreadableSecretError, match="copied from another row"):
            signatures.open_secret(sealed, brand_id=brand_id, kind=kind)

    def test_a_secret_in_clear_is_refused_as_not_sealed(self):
        with pytest.raises(UnreadableSecretError, match="not a sealed value"):
            signatures.open_secret(POSTBACK_SECRET, brand_id=7, kind="postback")


class TestDataKey:
    def test_unset_it_is_derived_from_the_secret_key_and_differs_from_it(self):
        settings = get_settings()
        assert settings.data_key is None
        key = sealing.data_key()
        assert key == sealing.derive_data_key(settings.secret_key) and len(key) == 32
        assert key != sealing.derive_data_key(settings.secret_key + "x")
        assert settings.secret_key.encode() not in key

    def test_a_configured_key_is_the_one_used(self, switch_data_key):
        switch_data_key()
        assert sealing.data_key() == bytes(range(32))
        sealed = signatures.seal_secret(SHOPIFY_SECRET, brand_id=1, kind="shopify")
        assert signatures.open_secret(sealed, brand_id=1, kind="shopify", key=bytes(range(32))) == SHOPIFY_SECRET

    @pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"16 bytes only...").decode()])
    def test_a_malformed_key_stops_the_settings_from_loading(self, value: str):
        with pytest.raises(ValidationError, match="data key must be") as refused:
            Settings(data_key=value)  # type: ignore[arg-type]
        assert value not in str(refused.value)  # a near-miss of the real key is not echoed to the console or logs

    def test_an_empty_setting_means_derived(self):
        assert Settings(data_key="").data_key is None  # type: ignore[arg-type]


class TestStoredSecrets:
    def test_the_stored_column_never_holds_the_secret(self, db, shop):
        for _, kind, value in _stored(db, shop.brand_id):
            assert value.startswith("v1:")
            assert "secret" not in value and "whsec_" not in value and POSTBACK_SECRET[6:] not in value, kind
        assert signatures.valid_secrets(db, brand_id=shop.brand_id, kind="shopify") == [SHOPIFY_SECRET]

    def test_a_rotated_secret_is_shown_once_and_stored_sealed(self, client, db, shop):
        admin = factories.api_key(db, factories.user(db, ("admin", shop.brand_id)))
        answer = client.post(
            f"/api/v1/brands/{shop.brand_id}/secrets/postback", json={}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert answer.status_code == 201, answer.text
        secret = answer.json()["secret"]
        [(_, _, newest)] = [row for row in _stored(db, shop.brand_id) if row[1] == "postback"][-1:]
        assert secret.startswith("whsec_") and secret not in newest and secret[6:] not in newest
        assert signatures.open_secret(newest, brand_id=shop.brand_id, kind="postback") == secret
        body = order_body()
        answer = client.post(
            f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=signed_headers(body, secret=secret)
        )
        assert answer.status_code == 200, answer.text

    def test_a_value_copied_from_another_brands_row_does_not_verify(self, client, db, shop, caplog):
        other = factories.brand(db)
        signatures.rotate(db, factories.SYSTEM, brand_id=other.id, kind="shopify", secret="other-shop-secret")
        [(row_id, _, _)] = _stored(db, other.id)
        [shop_value] = [value for _, kind, value in _stored(db, shop.brand_id) if kind == "shopify"]
        db.execute(sa.text("UPDATE brand_secrets SET sealed_secret = :v WHERE id = :i"), {"v": shop_value, "i": row_id})
        db.commit()  # (a savepoint of the test's transaction: the refused request's rollback stops there)

        with caplog.at_level(logging.ERROR, logger="clearline.ingest.signatures"):
            assert signatures.valid_secrets(db, brand_id=other.id, kind="shopify") == []
            body = b'{"id": 1}'
            answer = client.post(
                f"/api/v1/integrations/shopify/{other.slug}/webhooks",
                content=body,
                headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": body_hmac(body, SHOPIFY_SECRET)},
            )
        assert answer.status_code == 401
        assert f"brand secret {row_id} left out" in caplog.text and "copied from another row" in caplog.text
        assert signatures.valid_secrets(db, brand_id=shop.brand_id, kind="shopify") == [SHOPIFY_SECRET]


class TestPostbackKeys:
    """The fast path decrypts when it loads the keys; a key that does not decrypt is left out, and said so once."""

    @pytest.fixture
    def committed(self, tmp_path: Path) -> Iterator[sa.Engine]:
        url = _fresh_database(tmp_path, "sealed_keys")
        config = alembic_config(url)
        command.upgrade(config, "head")
        engine = engine_for(url)
        try:
            yield engine
        finally:
            engine.dispose()
            drop_database(url)

    def _brand_with_secret(self, engine: sa.Engine) -> tuple[int, str]:
        with Session(engine) as session:
            brand = factories.brand(session)
            signatures.rotate(session, factories.SYSTEM, brand_id=brand.id, kind="postback", secret=POSTBACK_SECRET)
            session.commit()
            return brand.id, brand.slug

    def test_keys_load_decrypted_and_verify(self, committed: sa.Engine):
        _, slug = self._brand_with_secret(committed)
        with committed.connect() as conn:
            keys = fastpath.read_keys(conn)
        body = order_body()
        signatures.check_standard_webhook(keys[slug].valid(time.time()), body, signed_headers(body))

    def test_under_another_data_key_no_key_loads_and_the_log_says_why_once(self, committed, switch_data_key, caplog):
        _, slug = self._brand_with_secret(committed)
        switch_data_key()
        with caplog.at_level(logging.ERROR, logger="clearline.ingest.signatures"), committed.connect() as conn:
            first, second = fastpath.read_keys(conn), fastpath.read_keys(conn)
        assert first[slug].keys == () and second[slug].keys == ()
        assert len([r for r in caplog.records if "left out" in r.getMessage()]) == 1
        assert "CLEARLINE_DATA_KEY" in caplog.text and POSTBACK_SECRET not in caplog.text


class TestMigration:
    def test_existing_secrets_are_encrypted_and_decrypted_back_and_postbacks_still_verify(self, tmp_path: Path):
        url = _fresh_database(tmp_path, "sealing_migration")
        config = alembic_config(url)
        engine = engine_for(url)
        plain = sa.table(
            "brand_secrets",
            sa.column("brand_id", sa.BigInteger()),
            sa.column("kind", sa.String()),
            sa.column("secret", sa.String()),
            sa.column("created_at", sa.DateTime()),
            sa.column("expires_at", sa.DateTime()),
        )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        secrets = [("postback", POSTBACK_SECRET), ("shopify", SHOPIFY_SECRET), ("woocommerce", "woo-secret-1")]
        try:
            command.upgrade(config, BEFORE)
            with engine.begin() as conn:
                brand_ids = []
                for slug in ("acme", "globex"):
                    made = conn.execute(sa.insert(Brand.__table__).values(slug=slug, name=slug.title()))
                    brand_ids.append(made.inserted_primary_key[0])
                for brand_id in brand_ids:
                    for kind, secret in secrets:
                        values = {"brand_id": brand_id, "kind": kind, "secret": secret, "created_at": now}
                        conn.execute(sa.insert(plain).values(values))

            command.upgrade(config, "head")
            with engine.connect() as conn:
                for brand_id in brand_ids:
                    stored = _stored(conn, brand_id)
                    assert all(value.startswith("v1:") for _, _, value in stored)
                    opened = [(k, signatures.open_secret(v, brand_id=brand_id, kind=k)) for _, k, v in stored]
                    assert opened == secrets
                keys = fastpath.read_keys(conn)
            body = order_body()
            for slug in ("acme", "globex"):
                signatures.check_standard_webhook(keys[slug].valid(time.time()), body, signed_headers(body))
            with Session(engine) as session:
                shopify = signatures.valid_secrets(session, brand_id=brand_ids[0], kind="shopify")
            signatures.verify_body_hmac(shopify, body, body_hmac(body, SHOPIFY_SECRET))

            command.downgrade(config, BEFORE)
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT brand_id, kind, secret FROM brand_secrets ORDER BY id")).all()
            assert [(b, k, s) for b, k, s in rows] == [(b, k, s) for b in brand_ids for k, s in secrets]

            command.upgrade(config, "head")
            with engine.connect() as conn:
                keys = fastpath.read_keys(conn)
            signatures.check_standard_webhook(keys["acme"].valid(time.time()), body, signed_headers(body))
        finally:
            engine.dispose()
            drop_database(url)

    def test_a_downgrade_that_cannot_decrypt_stops_and_names_the_row(self, tmp_path: Path, switch_data_key):
        url = _fresh_database(tmp_path, "sealing_refused")
        config = alembic_config(url)
        engine = engine_for(url)
        try:
            command.upgrade(config, "head")
            with Session(engine, expire_on_commit=False) as session:
                brand = factories.brand(session)
                signatures.rotate(session, factories.SYSTEM, brand_id=brand.id, kind="postback")
                session.commit()
            switch_data_key()  # the configuration no longer has the key the secret was sealed with
            with pytest.raises(RuntimeError, match=r"brand_secrets row \d+ cannot be decrypted.*CLEARLINE_DATA_KEY"):
                command.downgrade(config, BEFORE)
            with engine.connect() as conn:
                [(_, kind, value)] = _stored(conn, brand.id)  # still the sealed column, still sealed
            assert kind == "postback" and value.startswith("v1:")
        finally:
            engine.dispose()
            drop_database(url)
