"""Matrix rows for the selling routes: links and coupons, order intake, commissions, payouts, briefs."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy.orm import Session

from tests import factories
from tests.auth.matrix import (
    CONTRACT_READERS,
    EVERYONE,
    FOREIGN_SECRET,
    PARTIES,
    SECRETS,
    STAFF,
    V1,
    Call,
    Caller,
    Endpoint,
    Side,
    anything,
    csv_file,
    hmac_signed,
    ids,
    order_body,
    row,
    standard_signed,
)

LINK_OPS = frozenset({"admin", "social_ops"})
COUPON_OPS = frozenset({"admin", "social_ops", "marketing"})
FINANCE = frozenset({"admin", "finance"})
MARKETING = frozenset({"admin", "marketing"})
LINK_READERS = STAFF | PARTIES  # staff of the brand, the link's creator, the creator's agency
# Staff of the brand, the creative's creator, and the creator's agency (for the brands the agency works for).
CREATIVE_READERS = STAFF | PARTIES
CONTENT_MAKERS = frozenset({"admin", "social_ops", "marketing", "creator", "agency"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _postback_order(s: Side, c: Caller, secret: str = SECRETS["postback"]) -> Call:
    body = order_body("P-1", _now() - dt.timedelta(minutes=5), s.s.coupon_code)
    return standard_signed(f"{V1}/postbacks/{s.brand.slug}/orders", body, secret)


def _postback_refund(s: Side, c: Caller, secret: str = SECRETS["postback"]) -> Call:
    body = json.dumps(
        {
            "refund_id": "R-1",
            "order_id": s.s.orders[0],
            "created_at": _now().isoformat(),
            "kind": "return",
            "lines": [{"sku": "SKU-A1", "quantity": 1, "amount": "49.00"}],
        }
    ).encode()
    return standard_signed(f"{V1}/postbacks/{s.brand.slug}/refunds", body, secret)


def _shopify(s: Side, c: Caller, secret: str = SECRETS["shopify"]) -> Call:
    # A topic Clearline does not handle: verified, then answered 202 "ignored".
    headers = {"X-Shopify-Topic": "products/update", "X-Shopify-Webhook-Id": "wh-1"}
    url = f"{V1}/integrations/shopify/{s.brand.slug}/webhooks"
    return hmac_signed(url, b'{"id": 1}', secret, headers, "X-Shopify-Hmac-Sha256")


def _woocommerce(s: Side, c: Caller, secret: str = SECRETS["woocommerce"]) -> Call:
    headers = {"X-WC-Webhook-Topic": "product.created", "X-WC-Webhook-Delivery-ID": "wc-1"}
    url = f"{V1}/integrations/woocommerce/{s.brand.slug}/webhooks"
    return hmac_signed(url, b'{"id": 1}', secret, headers, "X-WC-Webhook-Signature")


def _brief_body(s: Side) -> dict[str, object]:
    return {
        "campaign_id": s.s.campaign.id,
        "title": "Holiday push",
        "skus": ["SKU-A1"],
        "offer_code": "WELCOME",
        "landing_url": "https://shop.example.com/serum",
        "call_to_action": "Shop now",
        "key_messages": ["Hydrates"],
        "disclaimers": ["#ad"],
        "measurement_note": "coupon",
    }


def _run_body(s: Side) -> dict[str, object]:
    return {"brand_id": s.brand.id, "as_of": _now().isoformat(), "minimum": "0"}


def _discard_draft(db: Session, s: Side) -> None:
    """One draft run at a time per brand: the world's draft goes, and its lines are payable again."""
    from clearline.payout import service as payout_service

    payout_service.discard_run(db, factories.SYSTEM, run_id=s.s.run_draft, reason="making room for a new run")


def _creative_body(s: Side, c: Caller) -> dict[str, object]:
    return {"brief_id": s.s.brief_approved, "creator_id": s.creator.id, "channel": "pinterest"}


def _foreign_creative(s: Side, c: Caller) -> Call:
    """Another brand's caller on this brand's brief; a creator names itself, as it would."""
    creator_id = c.user.creator_id or s.creator.id
    return Call(f"{V1}/creatives", json={**_creative_body(s, c), "creator_id": creator_id})


SALES: list[Endpoint] = [
    # Links.
    row(
        "GET", "/brands/{brand_id}/utm-template", lambda s, c: Call(f"{V1}/brands/{s.brand.id}/utm-template"), EVERYONE
    ),
    row(
        "PUT",
        "/brands/{brand_id}/utm-template",
        lambda s, c: Call(
            f"{V1}/brands/{s.brand.id}/utm-template",
            json={"params": {"utm_source": "{channel}", "utm_medium": "affiliate", "utm_campaign": "{campaign}"}},
        ),
        LINK_OPS,
    ),
    row(
        "POST",
        "/links/preview",
        lambda s, c: Call(
            f"{V1}/links/preview",
            json={
                "campaign_id": s.s.campaign.id,
                "creator_id": s.creator.id,
                "channel": "instagram",
                "destination_url": "https://shop.example.com/p",
            },
        ),
        STAFF,
        readers=STAFF,
    ),
    row(
        "POST",
        "/links",
        lambda s, c: Call(
            f"{V1}/links",
            json={
                "campaign_id": s.s.campaign.id,
                "creator_id": s.creator.id,
                "channel": "pinterest",
                "destination_url": "https://shop.example.com/p",
                "sku": "SKU-A1",
            },
        ),
        LINK_OPS,
        ok=201,
        readers=STAFF,
    ),
    row(
        "GET",
        "/links",
        lambda s, c: Call(f"{V1}/links"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.s.link_pending, s.s.link_draft},
    ),
    row(
        "GET",
        "/links/{link_id}",
        lambda s, c: Call(f"{V1}/links/{s.s.link_pending}"),
        LINK_READERS,
        readers=LINK_READERS,
    ),
    row(
        "POST",
        "/links/{link_id}/submit",
        lambda s, c: Call(f"{V1}/links/{s.s.link_draft}/submit"),
        LINK_OPS,
        readers=LINK_READERS,
    ),
    row(
        "POST",
        "/links/{link_id}/signoff",
        lambda s, c: Call(f"{V1}/links/{s.s.link_pending}/signoff", json={"comment": "checked"}),
        LINK_OPS,
        readers=LINK_READERS,
    ),
    row(
        "POST",
        "/links/{link_id}/rotate",
        lambda s, c: Call(
            f"{V1}/links/{s.s.link_pending}/rotate",
            json={"destination_url": "https://shop.example.com/new", "reason": "new landing page"},
        ),
        LINK_OPS,
        readers=LINK_READERS,
    ),
    row(
        "POST",
        "/links/{link_id}/retire",
        lambda s, c: Call(f"{V1}/links/{s.s.link_pending}/retire", json={"reason": "campaign over"}),
        LINK_OPS,
        readers=LINK_READERS,
    ),
    row("GET", "/brands/{brand_id}/signoffs", lambda s, c: Call(f"{V1}/brands/{s.brand.id}/signoffs"), EVERYONE),
    # Coupons.
    row(
        "POST",
        "/campaigns/{campaign_id}/coupons",
        lambda s, c: Call(f"{V1}/campaigns/{s.s.campaign.id}/coupons", json={"creator_id": s.spare_creator.id}),
        COUPON_OPS,
        ok=201,
        readers=STAFF,
    ),
    row(
        "POST",
        "/campaigns/{campaign_id}/coupon-batches",
        lambda s, c: Call(f"{V1}/campaigns/{s.s.campaign.id}/coupon-batches", json={"count": 2}),
        COUPON_OPS,
        ok=201,
        readers=STAFF,
    ),
    row(
        "POST",
        "/campaigns/{campaign_id}/coupons/import",
        lambda s, c: Call(
            f"{V1}/campaigns/{s.s.campaign.id}/coupons/import",
            files=csv_file(f"code,creator_handle\nIMPORTED1,{s.spare_creator.handle}\n"),
        ),
        COUPON_OPS,
        readers=STAFF,
    ),
    row(
        "GET",
        "/coupons",
        lambda s, c: Call(f"{V1}/coupons"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.s.coupon_id},
    ),
    row(
        "GET",
        "/notifications",
        lambda s, c: Call(f"{V1}/notifications"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: set(),
    ),
    # Order intake: signed by the brand's secret, never by an API key.
    row(
        "POST",
        "/postbacks/{brand_slug}/orders",
        _postback_order,
        frozenset(),
        signed=True,
        foreign_request=lambda s, c: _postback_order(s, c, FOREIGN_SECRET),
    ),
    row(
        "POST",
        "/postbacks/{brand_slug}/refunds",
        _postback_refund,
        frozenset(),
        signed=True,
        foreign_request=lambda s, c: _postback_refund(s, c, FOREIGN_SECRET),
    ),
    row(
        "POST",
        "/integrations/shopify/{brand_slug}/webhooks",
        _shopify,
        frozenset(),
        ok=202,
        signed=True,
        foreign_request=lambda s, c: _shopify(s, c, "not-the-brands-secret"),
    ),
    row(
        "POST",
        "/integrations/woocommerce/{brand_slug}/webhooks",
        _woocommerce,
        frozenset(),
        ok=202,
        signed=True,
        foreign_request=lambda s, c: _woocommerce(s, c, "not-the-brands-secret"),
    ),
    row(
        "POST",
        "/imports/orders",
        lambda s, c: Call(
            f"{V1}/imports/orders",
            files=csv_file(
                "order_id,created_at,currency,sku,quantity,unit_price\n"
                f"C-1,{(_now() - dt.timedelta(hours=2)).isoformat()},USD,SKU-A1,1,49.00\n"
            ),
            data={"brand_id": str(s.brand.id)},
        ),
        FINANCE,
    ),
    row("POST", "/events/replay", lambda s, c: Call(f"{V1}/events/replay", json={"brand_id": s.brand.id}), FINANCE),
    row(
        "POST",
        "/brands/{brand_id}/secrets/{kind}",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}/secrets/postback", json={}),
        frozenset({"admin"}),
        ok=201,
    ),
    # Orders and commissions.
    row("GET", "/brands/{brand_id}/orders", lambda s, c: Call(f"{V1}/brands/{s.brand.id}/orders"), CONTRACT_READERS),
    row(
        "GET",
        "/brands/{brand_id}/orders/{order_id}/explain",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}/orders/{s.s.orders[0]}/explain"),
        CONTRACT_READERS,
        readers=CONTRACT_READERS,
    ),
    row(
        "GET",
        "/commissions",
        lambda s, c: Call(f"{V1}/commissions"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.s.line_paid, s.s.line_open},
    ),
    row(
        "GET",
        "/commissions/{line_id}/explain",
        lambda s, c: Call(f"{V1}/commissions/{s.s.line_paid}/explain"),
        CONTRACT_READERS | PARTIES,
        readers=CONTRACT_READERS | PARTIES,
    ),
    row(
        "POST",
        "/brands/{brand_id}/orders/{order_id}/reattribute",
        lambda s, c: Call(
            f"{V1}/brands/{s.brand.id}/orders/{s.s.orders[2]}/reattribute",
            json={"creator_id": None, "reason": "came through paid search"},
        ),
        FINANCE,
    ),
    row(
        "POST",
        "/fx-rates/import",
        lambda s, c: Call(f"{V1}/fx-rates/import", files=csv_file("day,base,quote,rate\n2026-11-02,EUR,USD,1.08\n")),
        FINANCE,
        everywhere=True,
        foreign=403,
    ),
    # Payouts and disputes.
    row(
        "POST",
        "/payout-runs",
        lambda s, c: Call(f"{V1}/payout-runs", json=_run_body(s)),
        FINANCE,
        ok=201,
        prepare=_discard_draft,
    ),
    row("GET", "/brands/{brand_id}/payout-runs", lambda s, c: Call(f"{V1}/brands/{s.brand.id}/payout-runs"), FINANCE),
    row("GET", "/payout-runs/{run_id}", lambda s, c: Call(f"{V1}/payout-runs/{s.s.run_approved}"), FINANCE),
    row(
        "POST", "/payout-runs/{run_id}/approve", lambda s, c: Call(f"{V1}/payout-runs/{s.s.run_draft}/approve"), FINANCE
    ),
    row(
        "POST",
        "/payout-runs/{run_id}/paid",
        lambda s, c: Call(f"{V1}/payout-runs/{s.s.run_approved}/paid", params={"reference": "BANK-1"}),
        FINANCE,
    ),
    row(
        "GET",
        "/payout-runs/{run_id}/payout.csv",
        lambda s, c: Call(f"{V1}/payout-runs/{s.s.run_approved}/payout.csv"),
        FINANCE,
    ),
    row(
        "GET",
        "/payout-runs/{run_id}/detail.csv",
        lambda s, c: Call(f"{V1}/payout-runs/{s.s.run_approved}/detail.csv"),
        FINANCE,
    ),
    row(
        "POST",
        "/payout-runs/{run_id}/reconcile",
        lambda s, c: Call(
            f"{V1}/payout-runs/{s.s.run_approved}/reconcile",
            files=csv_file(
                "payout_line_id,paid_amount,currency,paid_at,reference\n"
                f"{s.s.payout_line_id},{s.s.payout_line_amount},USD,,BANK-1\n"
            ),
        ),
        FINANCE,
    ),
    row(
        "POST",
        "/disputes",
        lambda s, c: Call(f"{V1}/disputes", json={"commission_line_id": s.s.line_open, "reason": "wrong amount"}),
        PARTIES,
        ok=201,
        readers=CONTRACT_READERS | PARTIES,
    ),
    row(
        "GET",
        "/disputes",
        lambda s, c: Call(f"{V1}/disputes"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.s.dispute_id},
    ),
    row(
        "POST",
        "/disputes/{dispute_id}/resolve",
        lambda s, c: Call(
            f"{V1}/disputes/{s.s.dispute_id}/resolve", json={"decision": "rejected", "reason": "order was returned"}
        ),
        FINANCE,
        readers=FINANCE,
    ),
    # Briefs, approvals and creatives.
    row(
        "POST",
        "/brands/{brand_id}/briefs",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}/briefs", json=_brief_body(s)),
        MARKETING,
        ok=201,
    ),
    row(
        "GET",
        "/briefs",
        lambda s, c: Call(f"{V1}/briefs"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.s.brief_approved, s.s.brief_draft},
    ),
    row(
        "GET",
        "/briefs/{brief_id}",
        lambda s, c: Call(f"{V1}/briefs/{s.s.brief_approved}"),
        CREATIVE_READERS,
        readers=CREATIVE_READERS,
    ),
    row(
        "PUT",
        "/briefs/{brief_id}",
        lambda s, c: Call(f"{V1}/briefs/{s.s.brief_draft}", json=_brief_body(s)),
        MARKETING,
        readers=STAFF,
    ),
    row(
        "POST",
        "/briefs/{brief_id}/submit",
        lambda s, c: Call(f"{V1}/briefs/{s.s.brief_draft}/submit"),
        MARKETING,
        readers=STAFF,
    ),
    row(
        "POST",
        "/brands/{brand_id}/brief-templates",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}/brief-templates", json={"name": "Holiday", "defaults": {}}),
        MARKETING,
        ok=201,
    ),
    row(
        "GET",
        "/briefs-duplicates",
        lambda s, c: Call(f"{V1}/briefs-duplicates"),
        EVERYONE,
        foreign="list",
        listed=anything,
        owned=lambda s: {1},
    ),
    row(
        "GET",
        "/offer-collisions",
        lambda s, c: Call(f"{V1}/offer-collisions"),
        EVERYONE,
        foreign="list",
        listed=anything,
        owned=lambda s: {1},
    ),
    row(
        "GET",
        "/approvals",
        lambda s, c: Call(f"{V1}/approvals"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.s.step_open},
    ),
    row(
        "POST",
        "/approvals/{step_id}/decision",
        lambda s, c: Call(f"{V1}/approvals/{s.s.step_open}/decision", json={"decision": "approved", "comment": "ok"}),
        frozenset({"admin", "legal"}),
        readers=STAFF,
    ),
    row(
        "POST",
        "/creatives",
        lambda s, c: Call(f"{V1}/creatives", json=_creative_body(s, c)),
        CONTENT_MAKERS,
        ok=201,
        readers=CREATIVE_READERS,
        foreign_request=_foreign_creative,
    ),
    row(
        "GET",
        "/creatives",
        lambda s, c: Call(f"{V1}/creatives"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.s.creative_draft, s.s.creative_approved, s.s.creative_scheduled, s.s.creative_posted},
    ),
    row(
        "POST",
        "/creatives/{creative_id}/versions",
        lambda s, c: Call(f"{V1}/creatives/{s.s.creative_draft}/versions", data={"caption": "First cut"}),
        CONTENT_MAKERS,
        ok=201,
        readers=CREATIVE_READERS,
    ),
    row(
        "POST",
        "/creatives/{creative_id}/schedule",
        lambda s, c: Call(
            f"{V1}/creatives/{s.s.creative_approved}/schedule",
            json={"scheduled_for": (_now() + dt.timedelta(days=1)).isoformat()},
        ),
        LINK_OPS,
        ok=201,
        readers=CREATIVE_READERS,
    ),
    row(
        "POST",
        "/creatives/{creative_id}/proofs",
        lambda s, c: Call(
            f"{V1}/creatives/{s.s.creative_scheduled}/proofs",
            json={"url": "https://www.instagram.com/p/abc", "posted_at": _now().isoformat()},
        ),
        frozenset({"admin", "social_ops", "creator", "agency"}),
        ok=201,
        readers=CREATIVE_READERS,
    ),
    row(
        "GET",
        "/creatives/{creative_id}/versions/{version_id}/file",
        lambda s, c: Call(f"{V1}/creatives/{s.s.creative_posted}/versions/{s.s.version_file}/file"),
        CREATIVE_READERS,
        readers=CREATIVE_READERS,
    ),
    row(
        "GET",
        "/creatives/{creative_id}/proofs/{proof_id}/file",
        lambda s, c: Call(f"{V1}/creatives/{s.s.creative_posted}/proofs/{s.s.proof_file}/file"),
        CREATIVE_READERS,
        readers=CREATIVE_READERS,
    ),
]
