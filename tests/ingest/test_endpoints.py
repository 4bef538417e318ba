"""The intake over HTTP, as senders see it: signed postbacks, Shopify's and WooCommerce's own webhooks with
the published payloads, the bulk CSV upload, replay and secret rotation."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clearline.auth.deps import get_session
from clearline.ingest import signatures
from clearline.ledger import service as ledger
from clearline.models import InboxEvent, Order, OrderLine, Refund
from tests import factories
from tests.ingest.conftest import (
    POSTBACK_SECRET,
    SHOPIFY_ORDER,
    SHOPIFY_REFUND,
    WOO_ORDER_727,
    WOO_ORDERS_LIST,
    counts,
    fixture_bytes,
    fixture_skus,
    order_body,
    shopify_headers,
    signed_headers,
    woo_headers,
)
from tests.ingest.test_csv_import import HEADER, bad_file, good_file


def _post(client, shop, kind: str, body: bytes, **signing) -> object:  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/postbacks/{shop.slug}/{kind}", content=body, headers=signed_headers(body, **signing))


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _explain(client, shop, order_id: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    answer = client.get(f"/api/v1/brands/{shop.brand_id}/orders/{order_id}/explain", headers=_auth(shop.finance_key))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _refund_body(order_id: str = "1001", refund_id: str = "r-1", amount: str = "23.50") -> bytes:
    return json.dumps(
        {
            "refund_id": refund_id,
            "order_id": order_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "kind": "return",
            "lines": [{"sku": "SKU-A1", "quantity": 1, "amount": amount}],
        }
    ).encode()


def _error_locs(answer) -> set[str]:  # type: ignore[no-untyped-def]
    return {".".join(map(str, e["loc"])) for e in answer.json()["errors"]}


class TestOrderPostback:
    def test_a_signed_order_is_accepted_stored_and_commissioned(self, client, shop, db):
        answer = _post(client, shop, "orders", order_body("1001", coupon_codes=[shop.coupon_code]))

        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "accepted", "order_id": "1001", "duplicate": False}
        assert counts(db, shop.brand_id) == {
            "events": 1,
            "orders": 1,
            "refunds": 0,
            "commission_lines": 2,
            "ledger_entries": 2,
        }

    def test_the_same_id_and_body_again_is_a_duplicate_with_no_second_effect(self, client, shop, db):
        body = order_body("1001", coupon_codes=[shop.coupon_code])
        _post(client, shop, "orders", body, msg_id="msg_1")
        before = counts(db, shop.brand_id)

        retry = _post(client, shop, "orders", body, msg_id="msg_1")
        resent = _post(client, shop, "orders", body, msg_id="msg_2")

        assert [retry.status_code, resent.status_code] == [200, 200]
        assert retry.json()["duplicate"] is True and resent.json()["duplicate"] is True
        assert counts(db, shop.brand_id) == before

    def test_the_same_id_with_a_different_body_is_a_409_and_changes_nothing(self, client, shop, db):
        _post(client, shop, "orders", order_body("1001", coupon_codes=[shop.coupon_code]))
        before = counts(db, shop.brand_id)

        answer = _post(client, shop, "orders", order_body("1001", coupon_codes=["OTHER"]), msg_id="msg_2")

        assert answer.status_code == 409
        assert counts(db, shop.brand_id) == before

    def test_a_timestamp_more_than_300_seconds_old_is_refused(self, client, shop, db):
        answer = _post(client, shop, "orders", order_body(), at=time.time() - 310)

        assert answer.status_code == 401
        assert counts(db, shop.brand_id)["events"] == 0

    def test_a_timestamp_more_than_300_seconds_ahead_is_refused(self, client, shop):
        assert _post(client, shop, "orders", order_body(), at=time.time() + 310).status_code == 401

    def test_a_timestamp_a_little_off_is_accepted(self, client, shop):
        assert _post(client, shop, "orders", order_body(), at=time.time() - 280).status_code == 200

    def test_a_bad_signature_is_401_and_nothing_is_stored(self, client, shop, db):
        body = order_body()
        headers = signed_headers(body, secret="whsec_" + "QUJD" * 8)

        answer = client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=headers)

        assert answer.status_code == 401
        assert counts(db, shop.brand_id)["events"] == 0

    def test_a_signature_over_another_body_is_401(self, client, shop):
        headers = signed_headers(order_body("1001"))

        answer = client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=order_body("1002"), headers=headers)

        assert answer.status_code == 401

    def test_several_space_separated_signatures_pass_when_one_matches(self, client, shop):
        body = order_body()
        stranger = signed_headers(body, secret="whsec_" + "QUJD" * 8)["webhook-signature"]
        headers = signed_headers(body)
        headers["webhook-signature"] = f"{stranger} {headers['webhook-signature']}"

        answer = client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=headers)

        assert answer.status_code == 200, answer.text

    def test_an_unknown_brand_is_401_not_404_and_answers_like_a_stale_timestamp(self, client, shop):
        body = order_body()

        unknown = client.post("/api/v1/postbacks/no-such-brand/orders", content=body, headers=signed_headers(body))
        stale = _post(client, shop, "orders", body, at=time.time() - 3600)

        assert (unknown.status_code, stale.status_code) == (401, 401)
        assert unknown.json() == stale.json()  # the answer does not say whether the brand exists

    def test_money_as_a_json_number_is_422_naming_the_field(self, client, shop, db):
        body = order_body(lines=[{"sku": "SKU-A1", "quantity": 1, "unit_price": 49.0}], shipping=5)

        answer = _post(client, shop, "orders", body)

        assert answer.status_code == 422
        assert _error_locs(answer) == {"lines.0.unit_price", "shipping"}
        assert "decimal string" in answer.json()["errors"][0]["msg"]
        assert counts(db, shop.brand_id)["events"] == 0

    def test_each_bad_field_is_named(self, client, shop):
        body = json.dumps(
            {
                "created_at": "yesterday",
                "currency": "XXX",
                "customer": {"new_customer": "perhaps"},
                "lines": [
                    {"sku": "SKU-A1", "quantity": 0, "unit_price": "19.99"},
                    {"quantity": 1, "unit_price": "19.99"},
                ],
            }
        ).encode()

        answer = _post(client, shop, "orders", body)

        assert answer.status_code == 422
        assert _error_locs(answer) == {
            "order_id",
            "created_at",
            "currency",
            "customer.new_customer",
            "lines.0.quantity",
            "lines.1.sku",
        }

    def test_amounts_that_do_not_fit_are_named_line_by_line(self, client, shop):
        lines = [
            {"sku": "SKU-A1", "quantity": 1, "unit_price": "49.00"},
            {"sku": "SKU-B1", "quantity": 1, "unit_price": "24.00", "discount": "25.00"},
        ]

        answer = _post(client, shop, "orders", order_body(lines=lines, tax="0.001"))

        assert answer.status_code == 422
        assert _error_locs(answer) == {"lines.1.discount", "tax"}

    def test_a_body_that_is_not_json_is_422(self, client, shop):
        answer = _post(client, shop, "orders", b"order_id=1001")

        assert answer.status_code == 422
        assert _error_locs(answer) == {"body"}

    def test_a_body_nested_too_deeply_to_parse_is_422_not_a_server_error(self, client, shop):
        answer = _post(client, shop, "orders", b'{"order_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")

        assert answer.status_code == 422
        assert _error_locs(answer) == {"body"}

    def test_an_overlong_click_id_is_422_not_a_database_error(self, client, shop):
        answer = _post(client, shop, "orders", order_body(click_id="c" * 100))

        assert answer.status_code == 422
        assert _error_locs(answer) == {"click_id"}

    def test_the_event_is_written_before_the_200(self, app, shop, db):
        def commit_fails() -> Iterator[object]:
            yield db
            raise RuntimeError("the disk is full")

        app.dependency_overrides[get_session] = commit_fails
        body = order_body()
        with TestClient(app, raise_server_exceptions=False) as failing:
            answer = failing.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=signed_headers(body))

        assert answer.status_code == 500  # the sender sees the failure and sends again


class TestRefundPostback:
    def test_a_refund_reverses_the_commission_in_proportion(self, client, shop, db):
        _post(client, shop, "orders", order_body("1001", coupon_codes=[shop.coupon_code]))

        answer = _post(client, shop, "refunds", _refund_body(), msg_id="msg_2")

        assert answer.status_code == 200
        assert answer.json() == {"status": "accepted", "refund_id": "r-1", "duplicate": False}
        line_a = next(c for c in _explain(client, shop, "1001")["commissions"] if c["order"]["sku"] == "SKU-A1")
        assert line_a["reversed"] == "4.00"  # 16.00 × 23.50 ÷ 94.00
        assert ledger.imbalances(db) == []

    def test_the_same_refund_again_is_a_duplicate_with_no_second_effect(self, client, shop, db):
        _post(client, shop, "orders", order_body("1001", coupon_codes=[shop.coupon_code]))
        body = _refund_body()
        _post(client, shop, "refunds", body, msg_id="msg_2")
        before = counts(db, shop.brand_id)

        again = _post(client, shop, "refunds", body, msg_id="msg_3")

        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert counts(db, shop.brand_id) == before
        line_a = next(c for c in _explain(client, shop, "1001")["commissions"] if c["order"]["sku"] == "SKU-A1")
        assert line_a["reversed"] == "4.00"

    def test_the_same_refund_id_with_another_body_is_409(self, client, shop, db):
        _post(client, shop, "orders", order_body("1001", coupon_codes=[shop.coupon_code]))
        _post(client, shop, "refunds", _refund_body(amount="23.50"), msg_id="msg_2")
        before = counts(db, shop.brand_id)

        answer = _post(client, shop, "refunds", _refund_body(amount="47.00"), msg_id="msg_3")

        assert answer.status_code == 409
        assert counts(db, shop.brand_id) == before

    def test_a_refund_before_its_order_is_accepted_and_waits(self, client, shop, db):
        answer = _post(client, shop, "refunds", _refund_body())

        assert answer.status_code == 200
        assert answer.json() == {"status": "accepted", "refund_id": "r-1", "duplicate": False}
        event = db.scalar(select(InboxEvent).where(InboxEvent.brand_id == shop.brand_id))
        assert event is not None and event.handled_at is None and "not known yet" in event.error

    def test_a_bad_refund_is_422_naming_each_field(self, client, shop):
        body = json.dumps(
            {"refund_id": "r-1", "created_at": "2026-11-20T09:00:00Z", "kind": "gift", "lines": [{"amount": 17.99}]}
        ).encode()

        answer = _post(client, shop, "refunds", body)

        assert answer.status_code == 422
        assert _error_locs(answer) == {"order_id", "kind", "lines.0.sku", "lines.0.amount"}


class TestRotateSecret:
    def _admin_key(self, db, shop) -> str:  # type: ignore[no-untyped-def]
        return factories.api_key(db, factories.user(db, ("admin", shop.brand_id)))

    def test_the_old_secret_works_until_the_grace_period_ends_then_401(self, client, shop, db, monkeypatch):
        rotated = client.post(
            f"/api/v1/brands/{shop.brand_id}/secrets/postback",
            json={"grace_hours": 1},
            headers=_auth(self._admin_key(db, shop)),
        )
        assert rotated.status_code == 201, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret.startswith("whsec_") and new_secret != POSTBACK_SECRET

        assert _post(client, shop, "orders", order_body("1"), secret=POSTBACK_SECRET).status_code == 200
        assert _post(client, shop, "orders", order_body("2"), secret=new_secret).status_code == 200

        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, minutes=1)
        monkeypatch.setattr(signatures, "utcnow", lambda: later)
        old = _post(client, shop, "orders", order_body("3"), secret=POSTBACK_SECRET, at=later.timestamp())
        new = _post(client, shop, "orders", order_body("4"), secret=new_secret, at=later.timestamp())

        assert (old.status_code, new.status_code) == (401, 200)

    def test_both_signatures_together_pass_during_and_after_the_switch(self, client, shop, db):
        rotated = client.post(
            f"/api/v1/brands/{shop.brand_id}/secrets/postback",
            json={"grace_hours": 0},
            headers=_auth(self._admin_key(db, shop)),
        ).json()
        body = order_body()
        old = signed_headers(body, secret=POSTBACK_SECRET)
        new = signed_headers(body, secret=rotated["secret"])
        both = new | {"webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}"}

        refused = client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=old)
        accepted = client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=both)

        assert (refused.status_code, accepted.status_code) == (401, 200)

    def test_only_an_admin_rotates(self, client, shop):
        answer = client.post(
            f"/api/v1/brands/{shop.brand_id}/secrets/postback", json={}, headers=_auth(shop.finance_key)
        )

        assert answer.status_code == 403


def _shopify(client, shop, body: bytes, topic: str = "orders/create", **signing):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/integrations/shopify/{shop.slug}/webhooks",
        content=body,
        headers=shopify_headers(body, topic, **signing),
    )


def _woo(client, shop, body: bytes, topic: str = "order.created", **signing):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/integrations/woocommerce/{shop.slug}/webhooks",
        content=body,
        headers=woo_headers(body, topic, **signing),
    )


class TestShopifyWebhook:
    def test_the_published_order_is_attributed_by_its_coupon_and_commissioned(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)

        answer = _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER))

        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "status": "accepted",
            "order_id": "450789469",
            "duplicate": False,
            "processed": True,
            "detail": "",
        }
        explained = _explain(client, shop, "450789469")
        assert explained["source"] == "shopify"
        assert explained["created_at"].startswith("2008-01-10T16:00:00")
        assert explained["attributions"][0]["via"] == "coupon"
        assert "coupon TENOFF, issued to carla.vintage" in explained["attributions"][0]["reason"]
        assert [(c["order"]["sku"], c["amount"]) for c in explained["commissions"]] == [
            ("IPOD2008GREEN", "8.00"),
            ("IPOD2008RED", "8.00"),
            ("IPOD2008BLACK", "8.00"),
        ]
        order = db.scalar(select(Order).where(Order.brand_id == shop.brand_id))
        assert (order.tax_amount, order.shipping_amount, order.is_new_customer) == (1194, 0, True)

    def test_the_bare_order_resource_is_accepted_like_the_wrapped_one(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)
        bare = json.dumps(json.loads(fixture_bytes(SHOPIFY_ORDER))["order"]).encode()

        answer = _shopify(client, shop, bare)

        assert answer.status_code == 200
        assert (answer.json()["order_id"], answer.json()["processed"]) == ("450789469", True)
        assert len(_explain(client, shop, "450789469")["commissions"]) == 3

    def test_the_published_refund_claws_back_the_two_returned_lines(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)
        _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER))

        answer = _shopify(client, shop, fixture_bytes(SHOPIFY_REFUND), "refunds/create", webhook_id="wh-2")

        assert answer.status_code == 200, answer.text
        assert answer.json()["refund_id"] == "509562969" and answer.json()["processed"] is True
        explained = _explain(client, shop, "450789469")
        assert [(x["sku"], x["refunded"]) for x in explained["lines"]] == [
            ("IPOD2008GREEN", "199.00"),
            ("IPOD2008RED", "0.00"),
            ("IPOD2008BLACK", "199.00"),
        ]
        by_sku = {c["order"]["sku"]: c for c in explained["commissions"]}
        assert {sku: c["net"] for sku, c in by_sku.items()} == {
            "IPOD2008GREEN": "0.00",
            "IPOD2008RED": "8.00",
            "IPOD2008BLACK": "0.00",
        }
        # Returned in 2016, long after the 30-day window of a 2008 order: a clawback from available.
        kinds = [t["kind"] for t in by_sku["IPOD2008BLACK"]["ledger"]]
        assert kinds == ["commission.accrued", "commission.cleared", "commission.clawed_back"]
        assert ledger.imbalances(db) == []

    def test_a_refund_of_no_line_is_recorded_and_reverses_nothing(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)
        _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER))
        shipping_only = json.loads(fixture_bytes(SHOPIFY_REFUND))["refund"] | {"refund_line_items": []}

        answer = _shopify(client, shop, json.dumps(shipping_only).encode(), "refunds/create", webhook_id="wh-2")

        assert answer.status_code == 200, answer.text
        assert answer.json()["processed"] is True
        refund = db.scalar(select(Refund).where(Refund.brand_id == shop.brand_id))
        assert refund is not None and refund.lines == []
        assert {c["reversed"] for c in _explain(client, shop, "450789469")["commissions"]} == {"0.00"}

    def test_an_order_whose_skus_are_unknown_is_stored_and_attributed_but_earns_nothing(
        self, client, shop, archive, db
    ):
        answer = _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER))

        assert answer.status_code == 200 and answer.json()["processed"] is True
        explained = _explain(client, shop, "450789469")
        assert explained["attributions"][0]["via"] == "coupon"
        assert explained["commissions"] == []
        assert [x["ineligible_reason"] for x in explained["lines"]] == [
            "SKU IPOD2008GREEN is not in the catalog",
            "SKU IPOD2008RED is not in the catalog",
            "SKU IPOD2008BLACK is not in the catalog",
        ]
        assert counts(db, shop.brand_id)["ledger_entries"] == 0

    def test_a_refund_before_its_order_waits_and_a_replay_applies_it(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)
        early = _shopify(client, shop, fixture_bytes(SHOPIFY_REFUND), "refunds/create", webhook_id="wh-2")
        _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER))

        replayed = client.post(
            "/api/v1/events/replay", json={"brand_id": shop.brand_id}, headers=_auth(shop.finance_key)
        )

        assert (early.status_code, early.json()["processed"]) == (200, False)
        assert replayed.json() == {"seen": 1, "processed": 1, "failed": 0, "unchanged": 0}
        assert counts(db, shop.brand_id)["refunds"] == 1

    def test_the_same_webhook_again_is_a_duplicate_with_no_second_effect(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)
        _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER))
        before = counts(db, shop.brand_id)

        again = _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER))

        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert counts(db, shop.brand_id) == before

    def test_a_bad_hmac_is_401_and_nothing_is_stored(self, client, shop, db):
        answer = _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER), secret="not-the-shop-secret")

        assert answer.status_code == 401
        assert counts(db, shop.brand_id)["events"] == 0

    def test_the_hmac_of_another_body_is_401(self, client, shop, db):
        body = fixture_bytes(SHOPIFY_ORDER)
        headers = shopify_headers(body, "orders/create")

        answer = client.post(
            f"/api/v1/integrations/shopify/{shop.slug}/webhooks",
            content=body.replace(b"TENOFF", b"FREE99"),
            headers=headers,
        )

        assert answer.status_code == 401
        assert counts(db, shop.brand_id)["events"] == 0

    def test_an_unknown_topic_is_202_and_ignored(self, client, shop, db):
        answer = _shopify(client, shop, fixture_bytes(SHOPIFY_ORDER), "orders/updated")

        assert answer.status_code == 202
        assert answer.json() == {"status": "ignored", "topic": "orders/updated"}
        assert counts(db, shop.brand_id)["events"] == 0

    def test_an_unknown_brand_is_401(self, client, shop):
        body = fixture_bytes(SHOPIFY_ORDER)

        answer = client.post(
            "/api/v1/integrations/shopify/nobody/webhooks", content=body, headers=shopify_headers(body, "orders/create")
        )
        wrong = _shopify(client, shop, body, secret="not-the-shop-secret")

        assert answer.status_code == 401
        assert answer.json() == wrong.json()


def _woo_723(**changes) -> bytes:  # type: ignore[no-untyped-def]
    order = next(o for o in json.loads(fixture_bytes(WOO_ORDERS_LIST)) if o["id"] == 723)
    order.update(changes)
    return json.dumps(order).encode()


class TestWoocommerceWebhook:
    def test_the_published_order_727_is_stored_with_its_lines_but_not_attributed(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)

        answer = _woo(client, shop, fixture_bytes(WOO_ORDER_727))

        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "status": "accepted",
            "order_id": "727",
            "duplicate": False,
            "processed": True,
            "refunds": [],
            "detail": "",
        }
        explained = _explain(client, shop, "727")
        assert (explained["source"], explained["currency"]) == ("woocommerce", "USD")
        assert explained["created_at"].startswith("2017-03-22T19:28:02")
        assert [(x["sku"], x["quantity"], x["net_revenue"]) for x in explained["lines"]] == [
            ("93", 2, "6.00"),
            ("Bar3", 1, "12.00"),
        ]
        # The published order carries no coupon and no click id: stored, explained, earning nothing.
        assert explained["attributions"][0]["via"] == "none"
        assert explained["attributions"][0]["reason"].startswith("Not attributed")
        order = db.scalar(select(Order).where(Order.brand_id == shop.brand_id))
        assert (order.shipping_amount, order.tax_amount) == (1000, 135)

    def test_order_723_refund_totals_are_spread_over_its_lines_by_net_revenue_exactly(self, client, shop, db):
        answer = _woo(client, shop, _woo_723())

        assert answer.status_code == 200, answer.text
        assert answer.json()["refunds"] == ["726", "724"]
        refunds = {r.external_id: r for r in db.scalars(select(Refund).where(Refund.brand_id == shop.brand_id))}
        # 10.00 over nets 9.00 / 20.00: 3.1034 / 6.8966 → 3.10 / 6.90 (the larger remainder takes the cent);
        # then 9.00 over what is left, 5.90 / 13.10: 2.7947 / 6.2053 → 2.79 / 6.21.
        assert [x["amount"] for x in refunds["726"].lines] == [310, 690]
        assert [x["amount"] for x in refunds["724"].lines] == [279, 621]
        assert sum(x["amount"] for x in refunds["726"].lines) == 1000
        assert sum(x["amount"] for x in refunds["724"].lines) == 900
        refunded = db.scalars(select(OrderLine.refunded_amount).join(Order).order_by(OrderLine.line_no))
        assert list(refunded) == [589, 1311]  # 19.00 in all, to the cent

    def test_refunds_reverse_the_commission_of_each_line_in_proportion(self, client, shop, archive, db):
        fixture_skus(db, shop.brand_id)

        _woo(client, shop, _woo_723(coupon_lines=[{"id": 1, "code": "TENOFF", "discount": "0.00"}]))

        explained = _explain(client, shop, "723")
        assert [(c["order"]["sku"], c["amount"], c["reversed"]) for c in explained["commissions"]] == [
            ("87", "8.00", "5.24"),  # 8.00 × 3.10 ÷ 9.00 = 2.76, then 8.00 × 2.79 ÷ 9.00 = 2.48
            ("34", "4.00", "2.62"),  # 4.00 × 6.90 ÷ 20.00 = 1.38, then 4.00 × 6.21 ÷ 20.00 = 1.24
        ]
        kinds = [t["kind"] for t in explained["commissions"][0]["ledger"]]
        assert kinds == ["commission.accrued", "commission.reversed", "commission.reversed"]
        assert ledger.imbalances(db) == []

    def test_an_update_that_brings_refunds_is_accepted_not_refused_as_a_conflict(self, client, shop, db):
        created = _woo(client, shop, _woo_723(refunds=[], status="processing"), delivery_id="d-1")

        updated = _woo(client, shop, _woo_723(), "order.updated", delivery_id="d-2")

        assert (created.status_code, created.json()["refunds"]) == (200, [])
        assert updated.status_code == 200, updated.text
        assert (updated.json()["duplicate"], updated.json()["refunds"]) == (False, ["726", "724"])
        assert counts(db, shop.brand_id)["orders"] == 1
        assert counts(db, shop.brand_id)["refunds"] == 2

    def test_repeating_an_update_adds_no_refund_twice(self, client, shop, db):
        _woo(client, shop, _woo_723(), delivery_id="d-1")
        before = counts(db, shop.brand_id)

        again = _woo(client, shop, _woo_723(), "order.updated", delivery_id="d-2")
        later = _woo(
            client, shop, _woo_723(date_modified_gmt="2017-03-22T08:00:00"), "order.updated", delivery_id="d-3"
        )

        assert again.json()["duplicate"] is True
        assert (later.json()["duplicate"], later.json()["refunds"]) == (False, [])
        assert counts(db, shop.brand_id) | {"events": 0} == before | {"events": 0}
        assert counts(db, shop.brand_id)["events"] == before["events"] + 1  # the new revision, kept raw

    def test_a_bad_signature_is_401_and_nothing_is_stored(self, client, shop, db):
        answer = _woo(client, shop, fixture_bytes(WOO_ORDER_727), secret="guess")

        assert answer.status_code == 401
        assert counts(db, shop.brand_id)["events"] == 0

    @pytest.mark.parametrize("topic", ["order.deleted", "order.restored", "product.created", "coupon.updated"])
    def test_other_topics_are_202_and_ignored(self, client, shop, db, topic):
        answer = _woo(client, shop, fixture_bytes(WOO_ORDER_727), topic)

        assert answer.status_code == 202
        assert answer.json() == {"status": "ignored", "topic": topic}
        assert counts(db, shop.brand_id)["events"] == 0

    def test_the_unsigned_ping_of_a_new_webhook_is_answered_200_and_stores_nothing(self, client, shop, db):
        answer = client.post(
            f"/api/v1/integrations/woocommerce/{shop.slug}/webhooks",
            content=b"webhook_id=42",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

        assert answer.status_code == 200
        assert answer.json() == {"status": "pong"}
        assert counts(db, shop.brand_id)["events"] == 0

    def test_an_unsigned_order_is_401(self, client, shop):
        answer = client.post(
            f"/api/v1/integrations/woocommerce/{shop.slug}/webhooks",
            content=fixture_bytes(WOO_ORDER_727),
            headers={"X-WC-Webhook-Topic": "order.created"},
        )

        assert answer.status_code == 401


def _upload(client, shop, data: str, *, quarantine: bool = False, key: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/imports/orders",
        files={"file": ("orders.csv", data.encode(), "text/csv")},
        data={"brand_id": str(shop.brand_id), "quarantine": "true" if quarantine else "false"},
        headers=_auth(key or shop.finance_key),
    )


class TestImportOrders:
    def test_a_good_file_imports_every_order(self, client, shop, db):
        answer = _upload(client, shop, good_file(shop.coupon_code))

        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "orders": 2,
            "duplicates": 0,
            "failed_processing": 0,
            "rejected": [],
            "first_accepted_at": None,
        }
        assert counts(db, shop.brand_id)["commission_lines"] == 2

    def test_a_bad_file_is_422_listing_every_bad_row_and_imports_nothing(self, client, shop, db):
        answer = _upload(client, shop, bad_file(shop.coupon_code))

        assert answer.status_code == 422
        assert {tuple(e["loc"]) for e in answer.json()["errors"]} == {
            ("line 2", "order_id"),
            ("line 3", "quantity"),
            ("line 4", "unit_price"),
            ("line 5", "currency"),
            ("line 7", "order_id"),
            ("line 8", "created_at"),
            ("line 8", "new_customer"),
        }
        assert counts(db, shop.brand_id)["events"] == 0

    def test_quarantine_imports_the_good_orders_and_returns_the_rejected_rows(self, client, shop, db):
        answer = _upload(client, shop, bad_file(shop.coupon_code), quarantine=True)

        assert answer.status_code == 200
        assert answer.json()["orders"] == 1
        assert sorted({e["loc"][0] for e in answer.json()["rejected"]}) == [
            "line 2",
            "line 3",
            "line 4",
            "line 5",
            "line 7",
            "line 8",
        ]
        assert counts(db, shop.brand_id)["orders"] == 1

    def test_the_same_file_twice_counts_duplicates_and_changes_nothing(self, client, shop, db):
        _upload(client, shop, good_file(shop.coupon_code, when="2026-11-20T10:00:00Z"))
        before = counts(db, shop.brand_id)

        again = _upload(client, shop, good_file(shop.coupon_code, when="2026-11-20T10:00:00Z"))

        assert {k: v for k, v in again.json().items() if k != "first_accepted_at"} == {
            "orders": 0,
            "duplicates": 2,
            "failed_processing": 0,
            "rejected": [],
        }
        assert dt.datetime.fromisoformat(again.json()["first_accepted_at"]).utcoffset() == dt.timedelta(0)
        assert counts(db, shop.brand_id) == before

    def test_the_same_orders_in_other_bytes_are_duplicates_too_without_a_first_acceptance(self, client, shop, db):
        data = good_file(shop.coupon_code, when="2026-11-20T10:00:00Z")
        _upload(client, shop, data)
        before = counts(db, shop.brand_id)

        again = _upload(client, shop, data.replace("\n", "\r\n"))

        assert again.json() == {
            "orders": 0,
            "duplicates": 2,
            "failed_processing": 0,
            "rejected": [],
            "first_accepted_at": None,
        }
        assert counts(db, shop.brand_id) == before

    def test_a_header_only_file_is_422(self, client, shop):
        answer = _upload(client, shop, HEADER)

        assert answer.status_code == 422

    def test_a_creator_cannot_import_orders(self, client, shop, db):
        answer = _upload(client, shop, good_file(shop.coupon_code), key=shop.creator_key)

        assert answer.status_code == 403
        assert counts(db, shop.brand_id)["events"] == 0


class TestReplay:
    def test_a_refund_that_arrived_first_is_applied_once_its_order_is_in(self, client, shop, db):
        _post(client, shop, "refunds", _refund_body(), msg_id="msg_1")
        _post(client, shop, "orders", order_body("1001", coupon_codes=[shop.coupon_code]), msg_id="msg_2")

        answer = client.post("/api/v1/events/replay", json={"brand_id": shop.brand_id}, headers=_auth(shop.finance_key))

        assert answer.status_code == 200
        assert answer.json() == {"seen": 1, "processed": 1, "failed": 0, "unchanged": 0}
        line_a = next(c for c in _explain(client, shop, "1001")["commissions"] if c["order"]["sku"] == "SKU-A1")
        assert line_a["reversed"] == "4.00"

    def test_replaying_everything_changes_nothing(self, client, shop, db):
        _post(client, shop, "refunds", _refund_body(), msg_id="msg_1")
        _post(client, shop, "orders", order_body("1001", coupon_codes=[shop.coupon_code]), msg_id="msg_2")
        client.post("/api/v1/events/replay", json={"brand_id": shop.brand_id}, headers=_auth(shop.finance_key))
        before = counts(db, shop.brand_id)

        answer = client.post(
            "/api/v1/events/replay",
            json={"brand_id": shop.brand_id, "include_handled": True},
            headers=_auth(shop.finance_key),
        )

        assert answer.json() == {"seen": 2, "processed": 0, "failed": 0, "unchanged": 2}
        assert counts(db, shop.brand_id) == before

    def test_a_creator_cannot_replay(self, client, shop):
        answer = client.post("/api/v1/events/replay", json={"brand_id": shop.brand_id}, headers=_auth(shop.creator_key))

        assert answer.status_code == 403
