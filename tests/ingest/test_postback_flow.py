"""A person posts a signed order, sees it attributed with its reason, the commission and its ledger
transfers, refunds part of it and sees the exact proportional reversal."""

from __future__ import annotations

import json

from clearline.ledger import service as ledger
from tests.ingest.conftest import order_body, signed_headers


def _post(client, shop, path: str, body: bytes, msg_id: str = "msg_1"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/postbacks/{shop.slug}/{path}", content=body, headers=signed_headers(body, msg_id=msg_id)
    )


def test_coupon_order_is_attributed_and_commissioned_then_partly_refunded(client, shop, db):
    body = order_body(coupon_codes=[shop.coupon_code.lower()])
    answer = _post(client, shop, "orders", body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "accepted", "order_id": "1001", "duplicate": False}
    auth = {"Authorization": f"Bearer {shop.finance_key}"}
    explained = client.get(f"/api/v1/brands/{shop.brand_id}/orders/1001/explain", headers=auth).json()
    assert explained["attributions"][0]["via"] == "coupon"
    assert shop.coupon_code in explained["attributions"][0]["reason"]
    amounts = {c["order"]["sku"]: c["amount"] for c in explained["commissions"]}
    assert amounts == {"SKU-A1": "16.00", "SKU-B1": "4.00"}  # CPA per unit: tier a 8.00 × 2, tier b 4.00 × 1
    first = explained["commissions"][0]
    assert [t["kind"] for t in first["ledger"]] == ["commission.accrued"]

    again = _post(client, shop, "orders", body, msg_id="msg_2")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    changed = _post(client, shop, "orders", order_body(coupon_codes=["OTHER"]), msg_id="msg_3")
    assert changed.status_code == 409

    refund = json.dumps(
        {
            "refund_id": "r-1",
            "order_id": "1001",
            "created_at": json.loads(body)["created_at"],
            "kind": "return",
            "lines": [{"sku": "SKU-A1", "quantity": 1, "amount": "23.50"}],
        }
    ).encode()
    assert _post(client, shop, "refunds", refund, msg_id="msg_4").status_code == 200
    explained = client.get(f"/api/v1/brands/{shop.brand_id}/orders/1001/explain", headers=auth).json()
    line_a = next(c for c in explained["commissions"] if c["order"]["sku"] == "SKU-A1")
    assert line_a["reversed"] == "4.00"  # 16.00 × 23.50 / 94.00
    assert [t["kind"] for t in line_a["ledger"]] == ["commission.accrued", "commission.reversed"]
    assert ledger.imbalances(db) == []


def test_bad_signature_is_401_and_nothing_is_stored(client, shop, db):
    body = order_body("2002")
    headers = signed_headers(body)
    headers["webhook-signature"] = "v1,AAAA" + headers["webhook-signature"][7:]
    assert client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=headers).status_code == 401
    stale = signed_headers(body, at=0)
    assert client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=stale).status_code == 401


def test_invalid_body_is_422_naming_each_field(client, shop):
    body = json.dumps(
        {
            "order_id": "3",
            "created_at": "yesterday",
            "currency": "XXX",
            "lines": [{"sku": "SKU-A1", "quantity": 0, "unit_price": 19.99}],
        }
    ).encode()
    answer = _post(client, shop, "orders", body)
    assert answer.status_code == 422
    named = {".".join(e["loc"]) for e in answer.json()["errors"]}
    assert {"created_at", "currency", "lines.0.quantity", "lines.0.unit_price"} <= named
