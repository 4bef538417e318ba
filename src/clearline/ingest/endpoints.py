"""Incoming events: signed postbacks, Shopify and WooCommerce webhooks, bulk CSV, replay."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.deps import CurrentActor, get_session
from clearline.brand import repository as brand_repository
from clearline.ingest import csv_import, service, signatures
from clearline.ingest.fastpath import session_override
from clearline.models import Brand

router = APIRouter(tags=["ingestion"])

# The unit of work ends when the handler returns, before the response is sent: a sender that got its 200
# never has to wonder whether the event was written (a request-scoped session commits after the answer).
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def _brand(session: DbSession, slug: str) -> Brand:
    brand = brand_repository.by_slug(session, slug)
    if brand is None:
        # Same answer as a bad signature: a stranger learns nothing about which brands exist.
        raise signatures.refused(f"no brand {slug!r}")
    return brand


class Accepted(BaseModel):
    status: str = "accepted"
    order_id: str | None = None
    refund_id: str | None = None
    duplicate: bool


async def _standard(request: Request, brand_slug: str, kind: str) -> JSONResponse:
    # Normally answered by PostbackMiddleware before routing; this route documents the interface and answers
    # the same way when the app is mounted without it.
    headers = {k.lower(): v for k, v in request.headers.items()}
    status, payload = await request.app.state.postbacks.handle(
        brand_slug, kind, headers, await request.body(), session=session_override(request.scope)
    )
    return JSONResponse(payload, status_code=status)


@router.post("/postbacks/{brand_slug}/orders", response_model=Accepted, response_model_exclude_none=True)
async def order_postback(brand_slug: str, request: Request) -> JSONResponse:
    """A signed order postback (Standard Webhooks). Stored durably before the 200 and processed (attribution,
    commission, ledger) right after, in the background; the same order id and body again answers
    `duplicate: true` with no second effect; a different body under that id is a 409."""
    return await _standard(request, brand_slug, "order")


@router.post("/postbacks/{brand_slug}/refunds", response_model=Accepted, response_model_exclude_none=True)
async def refund_postback(brand_slug: str, request: Request) -> JSONResponse:
    """A signed return or chargeback postback; idempotent on `refund_id`. Stored before the 200, applied after
    (a refund whose order is not in yet is kept with its reason for `clearline events replay`)."""
    return await _standard(request, brand_slug, "refund")


SHOPIFY_TOPICS = {"orders/create": "order", "refunds/create": "refund"}


@router.post("/integrations/shopify/{brand_slug}/webhooks")
async def shopify_webhook(
    brand_slug: str,
    request: Request,
    session: DbSession,
    x_shopify_topic: Annotated[str, Header()] = "",
    x_shopify_hmac_sha256: Annotated[str | None, Header()] = None,
    x_shopify_webhook_id: Annotated[str, Header()] = "",
) -> Any:
    """Shopify's orders/create and refunds/create, verified with the brand's Shopify secret."""
    body = await request.body()
    # The lookups, the insert and the processing are synchronous database work: off the event loop.
    return await run_in_threadpool(
        _shopify, session, brand_slug, body, x_shopify_topic, x_shopify_hmac_sha256, x_shopify_webhook_id
    )


def _shopify(session: Session, brand_slug: str, body: bytes, topic: str, hmac_b64: str | None, webhook_id: str) -> Any:
    brand = _brand(session, brand_slug)
    signatures.verify_body_hmac(signatures.valid_secrets(session, brand_id=brand.id, kind="shopify"), body, hmac_b64)
    kind = SHOPIFY_TOPICS.get(topic)
    if kind is None:
        return JSONResponse({"status": "ignored", "topic": topic}, status_code=202)
    intake = service.receive(session, brand=brand, source="shopify", kind=kind, body=body, delivery_id=webhook_id)
    return {
        "status": "accepted",
        f"{kind}_id": intake.external_id,
        "duplicate": intake.duplicate,
        "processed": intake.processed,
        "detail": intake.error,
    }


WOOCOMMERCE_TOPICS = ("order.created", "order.updated")
WOOCOMMERCE_PING = re.compile(rb"^webhook_id=\d+$")


@router.post("/integrations/woocommerce/{brand_slug}/webhooks")
async def woocommerce_webhook(
    brand_slug: str,
    request: Request,
    session: DbSession,
    x_wc_webhook_topic: Annotated[str, Header()] = "",
    x_wc_webhook_signature: Annotated[str | None, Header()] = None,
    x_wc_webhook_delivery_id: Annotated[str, Header()] = "",
) -> Any:
    """WooCommerce order.created / order.updated (its `refunds` become refund events), verified with the
    brand's WooCommerce secret. Other topics are acknowledged and ignored."""
    body = await request.body()
    if x_wc_webhook_signature is None and WOOCOMMERCE_PING.match(body.strip()):
        # WooCommerce checks a new webhook with an unsigned "webhook_id=N" ping and wants a 200; it carries
        # no data, so nothing is stored.
        return {"status": "pong"}
    return await run_in_threadpool(
        _woocommerce, session, brand_slug, body, x_wc_webhook_topic, x_wc_webhook_signature, x_wc_webhook_delivery_id
    )


def _woocommerce(
    session: Session, brand_slug: str, body: bytes, topic: str, signature: str | None, delivery_id: str
) -> Any:
    brand = _brand(session, brand_slug)
    signatures.verify_body_hmac(
        signatures.valid_secrets(session, brand_id=brand.id, kind="woocommerce"), body, signature
    )
    if topic not in WOOCOMMERCE_TOPICS:
        return JSONResponse({"status": "ignored", "topic": topic}, status_code=202)
    intake = service.receive(
        session, brand=brand, source="woocommerce", kind="order", body=body, delivery_id=delivery_id
    )
    return {
        "status": "accepted",
        "order_id": intake.external_id,
        "duplicate": intake.duplicate,
        "processed": intake.processed,
        "refunds": intake.refunds,
        "detail": intake.error,
    }


@router.post("/imports/orders")
async def import_orders(
    file: UploadFile,
    session: DbSession,
    actor: CurrentActor,
    brand_id: Annotated[int, Form()],
    quarantine: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Bulk order CSV (finance). All-or-nothing (422 listing every bad row by line and column), or with
    `quarantine=true` the good orders import and the bad rows come back with their reasons. The very bytes of a
    file imported whole before are all duplicates; `first_accepted_at` then says when it was first imported."""
    brand = brand_repository.get(session, actor, brand_id)
    report = csv_import.import_orders(
        session,
        actor,
        brand=brand,
        data=await file.read(),
        quarantine=quarantine,
        filename=file.filename or "upload.csv",
    )
    return {
        "orders": report.orders,
        "duplicates": report.duplicates,
        "failed_processing": report.failed_processing,
        "rejected": [e.as_dict() for e in report.rejected],
        "first_accepted_at": report.first_accepted_at.isoformat() if report.first_accepted_at else None,
    }


class ReplayIn(BaseModel):
    brand_id: int
    include_handled: bool = False
    event_ids: list[int] = Field(default_factory=list)


@router.post("/events/replay")
def replay(body: ReplayIn, session: DbSession, actor: CurrentActor) -> dict[str, int]:
    """Process stored events again (finance or admin); replaying changes nothing already applied."""
    brand = brand_repository.get(session, actor, body.brand_id)
    actor.require("finance", brand_id=brand.id)
    counts = service.replay(
        session, brand_id=brand.id, include_handled=body.include_handled, event_ids=body.event_ids or None
    )
    audit.record(session, actor, "event.replayed", ("inbox_events", "replay", brand.id), after=counts)
    return counts


class SecretOut(BaseModel):
    kind: str
    secret: str = Field(description="Shown once.")
    old_secrets_valid_until: str | None


class SecretIn(BaseModel):
    secret: str | None = Field(
        default=None, min_length=8, max_length=200, description="Shopify/WooCommerce secrets come from them."
    )
    grace_hours: int = Field(default=24, ge=0, le=24 * 30)


@router.post("/brands/{brand_id}/secrets/{kind}", response_model=SecretOut, status_code=201)
def rotate_secret(brand_id: int, kind: str, body: SecretIn, session: DbSession, actor: CurrentActor) -> SecretOut:
    """Rotate a brand's signing secret (admin): old ones stay valid for `grace_hours`. Shown once."""
    secret, until = signatures.rotate(
        session, actor, brand_id=brand_id, kind=kind, secret=body.secret, grace_hours=body.grace_hours
    )
    return SecretOut(kind=kind, secret=secret, old_secrets_valid_until=until.isoformat())
