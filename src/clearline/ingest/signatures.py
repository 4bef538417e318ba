"""Signature checks for incoming events; every comparison is constant-time."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.kit.clock import utcnow
from clearline.kit.errors import NotFoundError, UnauthenticatedError
from clearline.models import BrandSecret

KINDS = ("postback", "shopify", "woocommerce")


def new_postback_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def valid_secrets(session: Session, *, brand_id: int, kind: str, now: dt.datetime | None = None) -> list[str]:
    """The brand's current secret and any old one still inside its rotation grace period."""
    now = now or utcnow()
    stmt = (
        select(BrandSecret.secret)
        .where(
            BrandSecret.brand_id == brand_id,
            BrandSecret.kind == kind,
            or_(BrandSecret.expires_at.is_(None), BrandSecret.expires_at > now),
        )
        .order_by(BrandSecret.id.desc())
    )
    return list(session.scalars(stmt))


def verify_standard_webhook(secrets_: list[str], body: bytes, headers: dict[str, str]) -> None:
    """Standard Webhooks: HMAC-SHA256 over "<id>.<timestamp>.<body>", timestamp within 5 minutes."""
    for secret in secrets_:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return
        except (WebhookVerificationError, ValueError, TypeError):
            continue
    raise UnauthenticatedError("bad or missing webhook signature (or timestamp outside 5 minutes)")


def verify_body_hmac(secrets_: list[str], body: bytes, signature_b64: str | None) -> None:
    """Shopify's X-Shopify-Hmac-Sha256 and WooCommerce's X-WC-Webhook-Signature: base64 HMAC of the body."""
    if not signature_b64:
        raise UnauthenticatedError("missing signature header")
    for secret in secrets_:
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        if hmac.compare_digest(expected.encode(), signature_b64.strip().encode()):
            return
    raise UnauthenticatedError("bad signature")


def rotate(
    session: Session, actor: Actor, *, brand_id: int, kind: str, secret: str | None = None, grace_hours: int = 24
) -> tuple[str, dt.datetime]:
    """Install a new secret (generated for postbacks; given for Shopify/WooCommerce); older ones keep
    working until the grace period ends, so senders can switch without losing an event."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("admin", brand_id=brand.id)
    if kind not in KINDS:
        raise NotFoundError(f"no secret kind {kind!r}")
    secret = secret or new_postback_secret()
    until = utcnow() + dt.timedelta(hours=grace_hours)
    for old in session.scalars(
        select(BrandSecret).where(
            BrandSecret.brand_id == brand.id, BrandSecret.kind == kind, BrandSecret.expires_at.is_(None)
        )
    ):
        old.expires_at = until
    session.add(BrandSecret(brand_id=brand.id, kind=kind, secret=secret))
    session.flush()
    audit.record(session, actor, "brand_secret.rotated", brand, after={"kind": kind, "old_valid_until": until})
    return secret, until
