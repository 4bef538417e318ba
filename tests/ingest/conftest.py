"""A brand with a catalog, a live campaign, a contracted creator with a link and a coupon, and secrets."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from clearline.auth import service as auth_service
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.contract import service as contract_service
from clearline.contract.schemas import ContractCreate
from clearline.contract.terms import ContractTerms
from clearline.ingest import signatures
from clearline.link import coupon
from clearline.link import service as link_service
from clearline.models import CommissionLine, InboxEvent, LedgerEntry, Order, Refund
from tests import factories

FIXTURES = Path(__file__).parent / "fixtures"

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


# --- real payloads and their platforms' signatures --------------------------------------------------


def fixture_bytes(name: str) -> bytes:
    """A file from tests/ingest/fixtures, byte for byte as published (see the README there)."""
    return (FIXTURES / name).read_bytes()


SHOPIFY_ORDER = "shopify/shopify_python_api__order.json"
SHOPIFY_REFUND = "shopify/shopify_python_api__refund.json"
WOO_ORDER_727 = "woocommerce/wc_rest_api_docs_v3__order_727_retrieve.json"
WOO_ORDERS_LIST = "woocommerce/wc_rest_api_docs_v3__orders_list_727_723.json"


def body_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_headers(body: bytes, topic: str, *, secret: str = SHOPIFY_SECRET, webhook_id: str = "wh-1") -> dict:  # type: ignore[type-arg]
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": body_hmac(body, secret),
        "X-Shopify-Webhook-Id": webhook_id,
        "Content-Type": "application/json",
    }


def woo_headers(body: bytes, topic: str, *, secret: str = WOO_SECRET, delivery_id: str = "d-1") -> dict:  # type: ignore[type-arg]
    return {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Signature": body_hmac(body, secret),
        "X-WC-Webhook-Delivery-ID": delivery_id,
        "Content-Type": "application/json",
    }


@dataclass
class Archive:
    """A program old enough for the published payloads (2008 to 2017): campaign, contract, coupon TENOFF."""

    campaign_id: int
    creator_id: int
    coupon_code: str


ARCHIVE_START = dt.datetime(2007, 1, 1, tzinfo=dt.UTC)

FIXTURE_SKUS = (
    "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
    "IPOD2008GREEN,IPod Nano green,audio,a,199.00,USD,120.00,,4\n"
    "IPOD2008RED,IPod Nano red,audio,a,199.00,USD,120.00,,4\n"
    "IPOD2008BLACK,IPod Nano black,audio,a,199.00,USD,120.00,,4\n"
    "93,Woo Single #1,music,c,3.00,USD,1.00,,4\n"
    "Bar3,Ship Your Idea,clothing,b,12.00,USD,5.00,,4\n"
    "87,Woo Album #2,music,a,9.00,USD,3.00,,4\n"
    "34,Woo Ninja,clothing,b,20.00,USD,8.00,,4\n"
)


def fixture_skus(db: Session, brand_id: int) -> None:
    """The SKUs the published Shopify and WooCommerce payloads sell (WooCommerce lines without a SKU are
    known by their product id)."""
    factories.skus(db, brand_id, FIXTURE_SKUS)


@pytest.fixture
def archive(db: Session, shop: Shop) -> Archive:
    now = dt.datetime.now(dt.UTC)
    campaign = campaign_service.create_campaign(
        db,
        factories.SYSTEM,
        brand_id=shop.brand_id,
        data=CampaignCreate(
            slug="archive",
            name="Archive",
            payment_model="cpa",
            starts_at=ARCHIVE_START,
            ends_at=now + dt.timedelta(days=365),
            fallback_url="https://shop.example.com/",
        ),
    )
    creator = factories.creator(db, shop.brand_id, handle="carla.vintage")
    contract = contract_service.create_contract(
        db,
        factories.SYSTEM,
        brand_id=shop.brand_id,
        data=ContractCreate(
            creator_id=creator.id,
            template_version_id=factories.template_version_id(db, shop.brand_id),
            terms=ContractTerms.model_validate(factories.CPA_TERMS),
            starts_at=ARCHIVE_START,
        ),
    )
    user = factories.user(db, ("creator", shop.brand_id), creator_id=creator.id, password=None)
    contract_service.accept_contract(db, auth_service.actor_for(db, user), contract_id=contract.id)
    ops = factories.actor(db, ("social_ops", shop.brand_id))
    code = coupon.issue_creator_code(db, ops, campaign_id=campaign.id, creator_id=creator.id, code="TENOFF")
    db.flush()
    return Archive(campaign.id, creator.id, code.code)


# --- what "no second effect" is measured by ---------------------------------------------------------


def counts(db: Session, brand_id: int) -> dict[str, int]:
    def count(model, column) -> int:  # type: ignore[no-untyped-def]
        return int(db.scalar(select(func.count()).select_from(model).where(column == brand_id)) or 0)

    return {
        "events": count(InboxEvent, InboxEvent.brand_id),
        "orders": count(Order, Order.brand_id),
        "refunds": count(Refund, Refund.brand_id),
        "commission_lines": count(CommissionLine, CommissionLine.brand_id),
        "ledger_entries": count(LedgerEntry, LedgerEntry.brand_id),
    }
