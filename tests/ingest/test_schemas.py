"""Shopify and WooCommerce payloads, as published, mapped onto the postback shape; the postback shape's
own rules (money as decimal strings, every bad field named)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from clearline.ingest import schemas
from tests.ingest.conftest import SHOPIFY_ORDER, SHOPIFY_REFUND, WOO_ORDER_727, WOO_ORDERS_LIST, fixture_bytes


def _shopify_order() -> dict:  # type: ignore[type-arg]
    return json.loads(fixture_bytes(SHOPIFY_ORDER))["order"]


def _woo_723() -> dict:  # type: ignore[type-arg]
    return next(o for o in json.loads(fixture_bytes(WOO_ORDERS_LIST)) if o["id"] == 723)


def _order(**overrides) -> dict:  # type: ignore[no-untyped-def, type-arg]
    body = {
        "order_id": "1",
        "created_at": "2026-11-01T12:00:00Z",
        "currency": "USD",
        "lines": [{"sku": "SKU-A1", "quantity": 1, "unit_price": "49.00"}],
    }
    body.update(overrides)
    return body


def _bad_fields(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(map(str, e["loc"])) for e in exc.value.errors()}


class TestShopifyOrder:
    def test_the_published_order_maps_every_field_clearline_reads(self):
        mapped = schemas.OrderIn.model_validate(schemas.shopify_order(_shopify_order()))

        assert mapped.order_id == "450789469"
        assert mapped.created_at == dt.datetime(2008, 1, 10, 16, 0, tzinfo=dt.UTC)  # 11:00 at -05:00
        assert mapped.currency == "USD"
        assert mapped.coupon_codes == ["TENOFF"]
        assert mapped.landing_url == "http://www.example.com?source=abc"
        assert [(x.sku, x.quantity, x.unit_price, x.discount) for x in mapped.lines] == [
            ("IPOD2008GREEN", 1, Decimal("199.00"), Decimal(0)),
            ("IPOD2008RED", 1, Decimal("199.00"), Decimal(0)),
            ("IPOD2008BLACK", 1, Decimal("199.00"), Decimal(0)),
        ]
        assert mapped.shipping == Decimal("0.00")
        assert mapped.tax == Decimal("11.94")
        assert mapped.customer is not None
        assert mapped.customer.id == "207119551"
        assert mapped.customer.new_customer is True  # orders_count 0
        assert mapped.customer.email_sha256 == schemas._sha256("bob.norman@hostmail.com")

    def test_a_relative_landing_site_keeps_its_click_id_and_utm_parameters(self):
        order = _shopify_order() | {"landing_site": "/products/x?utm_campaign=spring&clid=abc.def"}

        mapped = schemas.shopify_order(order)

        assert mapped["landing_url"] == "https://shop.invalid/products/x?utm_campaign=spring&clid=abc.def"

    def test_a_discount_in_discount_allocations_counts_once(self):
        order = _shopify_order()
        order["line_items"][0]["total_discount"] = "0.00"
        order["line_items"][0]["discount_allocations"] = [{"amount": "6.00"}, {"amount": "4.00"}]
        order["line_items"][1]["total_discount"] = "5.00"
        order["line_items"][1]["discount_allocations"] = [{"amount": "5.00"}]

        lines = schemas.shopify_order(order)["lines"]

        assert [line["discount"] for line in lines] == ["10.00", "5.00", "0"]

    def test_a_line_without_a_sku_is_known_by_its_variant_id(self):
        order = _shopify_order()
        order["line_items"][1]["sku"] = ""

        assert schemas.shopify_order(order)["lines"][1]["sku"] == "49148385"

    def test_an_unreadable_shipping_price_is_named_by_its_place_in_the_payload(self):
        order = _shopify_order() | {"shipping_lines": [{"price": "free"}]}

        with pytest.raises(schemas.MappingError) as caught:
            schemas.shopify_order(order)

        assert caught.value.loc == ("shipping_lines", 0, "price")


class TestShopifyRefund:
    def test_the_published_refund_maps_to_one_line_per_refunded_item(self):
        refund = json.loads(fixture_bytes(SHOPIFY_REFUND))["refund"]

        mapped = schemas.RefundIn.model_validate(schemas.shopify_refund(refund))

        assert mapped.refund_id == "509562969"
        assert mapped.order_id == "450789469"
        assert mapped.kind == "return"
        assert mapped.created_at == dt.datetime(2016, 6, 20, 17, 35, 6, tzinfo=dt.UTC)
        assert [(x.sku, x.quantity, x.amount) for x in mapped.lines] == [
            ("IPOD2008BLACK", 1, Decimal("199.00")),
            ("IPOD2008GREEN", 1, Decimal("199.00")),
        ]

    def test_the_subtotal_shopify_sends_today_is_preferred_to_price_times_quantity(self):
        refund = json.loads(fixture_bytes(SHOPIFY_REFUND))["refund"]
        refund["refund_line_items"][0]["subtotal"] = 189.05  # a JSON number, as Shopify sends it
        refund["refund_line_items"][1]["subtotal_set"] = {"shop_money": {"amount": "180.10", "currency_code": "USD"}}

        lines = schemas.shopify_refund(refund)["lines"]

        assert [line["amount"] for line in lines] == ["189.05", "180.10"]

    def test_a_refunded_line_without_a_sku_matches_its_order_line(self):
        order = _shopify_order()
        order["line_items"][2]["sku"] = None
        refund = json.loads(fixture_bytes(SHOPIFY_REFUND))["refund"]
        refund["refund_line_items"][0]["line_item"]["sku"] = None

        order_sku = schemas.shopify_order(order)["lines"][2]["sku"]
        refund_sku = schemas.shopify_refund(refund)["lines"][0]["sku"]

        assert order_sku == refund_sku == "457924702"

    def test_a_refund_of_no_line_maps_to_an_empty_refund(self):
        refund = json.loads(fixture_bytes(SHOPIFY_REFUND))["refund"] | {"refund_line_items": []}

        mapped = schemas.PlatformRefundIn.model_validate(schemas.shopify_refund(refund))

        assert mapped.lines == []


class TestWoocommerceOrder:
    def test_the_published_order_727_maps_lines_amounts_and_time(self):
        payload = json.loads(fixture_bytes(WOO_ORDER_727))

        mapped = schemas.OrderIn.model_validate(schemas.woocommerce_order(payload))

        assert mapped.order_id == "727"
        assert mapped.created_at == dt.datetime(2017, 3, 22, 19, 28, 2, tzinfo=dt.UTC)  # date_created_gmt
        # The first line has no SKU: it is known by its product id.
        assert [(x.sku, x.quantity, x.unit_price, x.discount) for x in mapped.lines] == [
            ("93", 2, Decimal("3.00"), Decimal("0.00")),
            ("Bar3", 1, Decimal("12.00"), Decimal("0.00")),
        ]
        assert (mapped.shipping, mapped.tax) == (Decimal("10.00"), Decimal("1.35"))
        assert mapped.coupon_codes == []
        assert mapped.customer is not None
        assert mapped.customer.id is None  # customer_id 0 is a guest checkout

    def test_order_723_keeps_its_customer_and_ip(self):
        mapped = schemas.OrderIn.model_validate(schemas.woocommerce_order(_woo_723()))

        assert mapped.customer is not None and mapped.customer.id == "26"
        assert mapped.ip == "127.0.0.1"
        assert [(x.sku, x.unit_price) for x in mapped.lines] == [("87", Decimal("9.00")), ("34", Decimal("20.00"))]

    def test_a_line_total_that_does_not_divide_evenly_keeps_its_net_revenue_exact(self):
        payload = _woo_723()
        payload["line_items"][0] |= {"quantity": 3, "subtotal": "10.00", "total": "10.00"}

        line = schemas.OrderIn.model_validate(schemas.woocommerce_order(payload)).lines[0]

        assert (line.unit_price, line.discount) == (Decimal("3.34"), Decimal("0.02"))
        assert line.unit_price * line.quantity - line.discount == Decimal("10.00")

    def test_a_coupon_discount_becomes_the_line_discount(self):
        payload = _woo_723()
        payload["line_items"][1] |= {"subtotal": "20.00", "total": "16.00"}
        payload["coupon_lines"] = [{"id": 1, "code": "anna10", "discount": "4.00"}]

        mapped = schemas.OrderIn.model_validate(schemas.woocommerce_order(payload))

        assert mapped.lines[1].discount == Decimal("4.00")
        assert mapped.coupon_codes == ["ANNA10"]

    def test_an_unreadable_quantity_is_named_by_its_place_in_the_payload(self):
        payload = _woo_723()
        payload["line_items"][1]["quantity"] = "two"

        with pytest.raises(schemas.MappingError) as caught:
            schemas.woocommerce_order(payload)

        assert caught.value.loc == ("line_items", 1, "quantity")


class TestWoocommerceRefund:
    def test_a_refund_spread_over_lines_reads_back_as_the_same_refund(self):
        resource = schemas.woocommerce_refund_resource(
            refund_id="726",
            order_id="723",
            created_at="2017-03-21T19:54:51+00:00",
            currency="USD",
            shares=[("87", 310), ("34", 690), ("99", 0)],
        )

        mapped = schemas.RefundIn.model_validate(schemas.woocommerce_refund(resource))

        assert (mapped.refund_id, mapped.order_id) == ("726", "723")
        assert [(x.sku, x.amount) for x in mapped.lines] == [("87", Decimal("3.10")), ("34", Decimal("6.90"))]


class TestOrderIn:
    @pytest.mark.parametrize("number", [19.99, 19, True])
    def test_money_as_a_json_number_is_refused(self, number):
        body = _order(lines=[{"sku": "SKU-A1", "quantity": 1, "unit_price": number}], shipping=5)

        with pytest.raises(ValidationError) as caught:
            schemas.OrderIn.model_validate(body)

        assert _bad_fields(caught) == {"lines.0.unit_price", "shipping"}

    def test_every_bad_field_is_named(self):
        body = {
            "created_at": "2026-11-01T12:00:00",
            "currency": "DOLLARS",
            "customer": {"email_sha256": "not-a-hash"},
            "lines": [{"sku": "", "quantity": 0, "unit_price": "-1.00"}],
        }

        with pytest.raises(ValidationError) as caught:
            schemas.OrderIn.model_validate(body)

        assert _bad_fields(caught) == {
            "order_id",
            "created_at",
            "currency",
            "customer.email_sha256",
            "lines.0.sku",
            "lines.0.quantity",
            "lines.0.unit_price",
        }

    def test_amounts_finer_than_the_currency_name_each_line(self):
        body = _order(
            lines=[
                {"sku": "SKU-A1", "quantity": 1, "unit_price": "49.00"},
                {"sku": "SKU-B1", "quantity": 1, "unit_price": "24.001", "discount": "30.00"},
            ],
            tax="1.005",
        )

        with pytest.raises(ValidationError) as caught:
            schemas.OrderIn.model_validate(body)

        problems = caught.value.errors()[0]["ctx"]["error"].problems
        assert [loc for loc, _ in problems] == [("lines", 1, "unit_price"), ("lines", 1, "discount"), ("tax",)]

    def test_a_click_id_longer_than_clearline_keeps_is_refused(self):
        with pytest.raises(ValidationError) as caught:
            schemas.OrderIn.model_validate(_order(click_id="x" * 65))

        assert _bad_fields(caught) == {"click_id"}


class TestRefundIn:
    def test_a_postback_refund_names_at_least_one_line(self):
        body = {"refund_id": "r-1", "order_id": "1", "created_at": "2026-11-20T09:00:00Z", "lines": []}

        with pytest.raises(ValidationError) as caught:
            schemas.RefundIn.model_validate(body)

        assert _bad_fields(caught) == {"lines"}

    def test_a_refund_time_needs_its_offset(self):
        body = {"refund_id": "r-1", "order_id": "1", "created_at": "2026-11-20T09:00:00", "lines": []}

        with pytest.raises(ValidationError) as caught:
            schemas.PlatformRefundIn.model_validate(body)

        assert _bad_fields(caught) == {"created_at"}
