"""Signature checks: Standard Webhooks for postbacks, the platforms' body HMAC, secret rotation."""

from __future__ import annotations

import base64
import datetime as dt
import logging

import pytest
from standardwebhooks.webhooks import Webhook

from clearline.ingest import signatures
from clearline.kit.errors import ForbiddenError, UnauthenticatedError
from tests import factories
from tests.ingest.conftest import POSTBACK_SECRET, body_hmac

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
BODY = b'{"order_id": "1001"}'
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()


def _headers(*, secret: str = POSTBACK_SECRET, at: dt.datetime = NOW, msg_id: str = "msg_1") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=BODY.decode()),
    }


class TestVerifyStandardWebhook:
    def test_a_signature_made_by_the_standard_webhooks_library_verifies(self):
        signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, _headers(), now=NOW)

    @pytest.mark.parametrize("seconds", [-300, 300])
    def test_a_timestamp_300_seconds_off_is_still_accepted(self, seconds):
        headers = _headers(at=NOW + dt.timedelta(seconds=seconds))

        signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

    @pytest.mark.parametrize("seconds", [-301, 301, -86_400])
    def test_a_timestamp_more_than_300_seconds_off_is_refused_even_when_signed(self, seconds, caplog):
        headers = _headers(at=NOW + dt.timedelta(seconds=seconds))

        with caplog.at_level(logging.INFO, logger="clearline.ingest.signatures"), pytest.raises(UnauthenticatedError):
            signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

        assert "more than 300 s from the server's clock" in caplog.text

    def test_every_refusal_gives_the_same_answer(self):
        answers = set()
        for headers in (_headers(at=NOW - dt.timedelta(hours=1)), _headers(secret=OTHER_SECRET), {}):
            with pytest.raises(UnauthenticatedError) as caught:
                signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)
            answers.add(caught.value.message)

        assert answers == {signatures.REFUSED}

    def test_a_tampered_body_is_refused(self):
        with pytest.raises(UnauthenticatedError):
            signatures.verify_standard_webhook([POSTBACK_SECRET], b'{"order_id": "1002"}', _headers(), now=NOW)

    def test_a_changed_message_id_is_refused(self):
        headers = _headers() | {"webhook-id": "msg_2"}

        with pytest.raises(UnauthenticatedError):
            signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

    def test_several_signatures_pass_when_one_is_made_with_a_valid_secret(self):
        old = _headers(secret=OTHER_SECRET)["webhook-signature"]
        new = _headers()["webhook-signature"]
        headers = _headers() | {"webhook-signature": f"{old} {new}"}

        signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

    def test_a_malformed_or_unknown_entry_does_not_spoil_a_good_one(self):
        good = _headers()["webhook-signature"]
        headers = _headers() | {"webhook-signature": f"v1,not*base64  v2,AAAA nonsense {good}"}

        signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

    def test_any_valid_secret_of_the_brand_verifies(self):
        headers = _headers(secret=OTHER_SECRET)

        signatures.verify_standard_webhook([POSTBACK_SECRET, OTHER_SECRET], BODY, headers, now=NOW)

    @pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_a_missing_header_is_refused(self, missing):
        headers = _headers()
        del headers[missing]

        with pytest.raises(UnauthenticatedError):
            signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

    def test_a_timestamp_that_is_not_unix_seconds_is_refused(self):
        headers = _headers() | {"webhook-timestamp": "2026-11-24T12:00:00Z"}

        with pytest.raises(UnauthenticatedError):
            signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

    @pytest.mark.parametrize("stamp", ["\u00b2", "1764\u00b3"])  # digits to str.isdigit, not to int()
    def test_a_timestamp_of_other_digits_is_refused_not_an_error(self, stamp):
        headers = _headers() | {"webhook-timestamp": stamp}

        with pytest.raises(UnauthenticatedError):
            signatures.verify_standard_webhook([POSTBACK_SECRET], BODY, headers, now=NOW)

    def test_a_brand_without_a_secret_verifies_nothing(self):
        with pytest.raises(UnauthenticatedError):
            signatures.verify_standard_webhook([], BODY, _headers(), now=NOW)


class TestVerifyBodyHmac:
    def test_the_base64_hmac_of_the_raw_body_verifies(self):
        signatures.verify_body_hmac(["shop-secret"], BODY, body_hmac(BODY, "shop-secret"))

    def test_a_signature_with_another_secret_is_refused(self):
        with pytest.raises(UnauthenticatedError):
            signatures.verify_body_hmac(["shop-secret"], BODY, body_hmac(BODY, "guess"))

    def test_a_signature_of_a_reformatted_body_is_refused(self):
        with pytest.raises(UnauthenticatedError):
            signatures.verify_body_hmac(["shop-secret"], BODY, body_hmac(b'{"order_id":"1001"}', "shop-secret"))

    @pytest.mark.parametrize("header", [None, ""])
    def test_a_missing_signature_is_refused(self, header):
        with pytest.raises(UnauthenticatedError):
            signatures.verify_body_hmac(["shop-secret"], BODY, header)


class TestValidSecrets:
    def test_the_old_secret_stays_valid_until_its_grace_period_ends(self, db):
        brand = factories.brand(db)
        signatures.rotate(db, factories.SYSTEM, brand_id=brand.id, kind="postback", secret=POSTBACK_SECRET)
        new, until = signatures.rotate(db, factories.SYSTEM, brand_id=brand.id, kind="postback", grace_hours=2)

        during = signatures.valid_secrets(db, brand_id=brand.id, kind="postback", now=until - dt.timedelta(seconds=1))
        after = signatures.valid_secrets(db, brand_id=brand.id, kind="postback", now=until)

        assert during == [new, POSTBACK_SECRET]
        assert after == [new]

    def test_secrets_of_another_kind_do_not_count(self, db):
        brand = factories.brand(db)
        signatures.rotate(db, factories.SYSTEM, brand_id=brand.id, kind="shopify", secret="shpss_x")

        assert signatures.valid_secrets(db, brand_id=brand.id, kind="postback") == []


class TestRotate:
    def test_a_generated_postback_secret_is_a_standard_webhooks_secret(self, db):
        brand = factories.brand(db)

        secret, _ = signatures.rotate(db, factories.SYSTEM, brand_id=brand.id, kind="postback")

        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    def test_only_an_admin_rotates(self, db):
        brand = factories.brand(db)
        finance = factories.actor(db, ("finance", brand.id))

        with pytest.raises(ForbiddenError):
            signatures.rotate(db, finance, brand_id=brand.id, kind="postback")
