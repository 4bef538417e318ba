"""A brand with a catalog, a live campaign, a contracted creator with a link and a coupon, and secrets."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from clearline.auth import service as auth_service
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.contract import service as contract_service
from clearline.ingest import signatures
from clearline.link import coupon
from clearline.link import service as link_service
from tests import factories

POSTBACK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes
SHOPIFY_SECRET = "shpss_test_secret_value"
WOO_SECRET = "woo-test-secret-value"


@dataclass
class Shop:
    brand_id: int
    slug: str
    campaign_id: int
    creator_id: int
    other_creator_id: int
    coupon_code: str
    link_code: str
    finance_key: str
    creator_key: str


@pytest.fixture
def shop(db: Session) -> Shop:
    brand = factories.brand(db, domains=("shop.example.com",))
    factories.skus(db, brand.id)
    now = dt.datetime.now(dt.UTC)
    campaign = campaign_service.create_campaign(
        db,
        factories.SYSTEM,
        brand_id=brand.id,
        data=CampaignCreate(
            slug="spring",
            name="Spring",
            payment_model="cpa",
            starts_at=now - dt.timedelta(days=20),
            ends_at=now + dt.timedelta(days=20),
            fallback_url="https://shop.example.com/",
        ),
    )
    creators = []
    for handle in ("anna.glow", "ben.makes"):
        creator = factories.creator(db, brand.id, handle=handle)
        contract = factories.contract(db, brand.id, creator_id=creator.id)
        user = factories.user(db, ("creator", brand.id), creator_id=creator.id)
        contract_service.accept_contract(db, auth_service.actor_for(db, user), contract_id=contract.id)
        creators.append((creator, user))
    ops = factories.actor(db, ("social_ops", brand.id), ("marketing", brand.id))
    link = link_service.issue_link(
        db,
        ops,
        campaign_id=campaign.id,
        creator_id=creators[0][0].id,
        channel="instagram",
        destination_url="https://shop.example.com/p",
    )
    link_service.sign_off(db, ops, link_id=link.id)
    code = coupon.issue_creator_code(db, ops, campaign_id=campaign.id, creator_id=creators[1][0].id)
    for kind, secret in (("postback", POSTBACK_SECRET), ("shopify", SHOPIFY_SECRET), ("woocommerce", WOO_SECRET)):
        signatures.rotate(db, factories.SYSTEM, brand_id=brand.id, kind=kind, secret=secret)
    finance = factories.user(db, ("finance", brand.id))
    db.flush()
    return Shop(
        brand.id,
        brand.slug,
        campaign.id,
        creators[0][0].id,
        creators[1][0].id,
        code.code,
        link.code,
        factories.api_key(db, finance),
        factories.api_key(db, creators[0][1]),
    )


def signed_headers(
    body: bytes, *, secret: str = POSTBACK_SECRET, msg_id: str = "msg_1", at: float | None = None
) -> dict[str, str]:
    timestamp = dt.datetime.fromtimestamp(at if at is not None else time.time(), dt.UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def order_body(order_id: str = "1001", **overrides) -> bytes:  # type: ignore[no-untyped-def]
    body = {
        "order_id": order_id,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "currency": "USD",
        "customer": {"id": "c-17", "new_customer": True},
        "lines": [
            {"sku": "SKU-A1", "quantity": 2, "unit_price": "49.00", "discount": "4.00"},
            {"sku": "SKU-B1", "quantity": 1, "unit_price": "24.00"},
        ],
        "shipping": "5.00",
        "tax": "3.20",
    }
    body.update(overrides)
    return json.dumps(body).encode()
