from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.kit.errors import NotFoundError
from clearline.models import Offer, Sku


def list_skus(session: Session, actor: Actor, *, brand_id: int) -> list[Sku]:
    stmt = select(Sku).where(Sku.brand_id == brand_id, brand_filter(actor, Sku.brand_id)).order_by(Sku.sku)
    return list(session.scalars(stmt))


def skus_by_code(session: Session, *, brand_id: int, codes: list[str] | None = None) -> dict[str, Sku]:
    stmt = select(Sku).where(Sku.brand_id == brand_id)
    if codes is not None:
        stmt = stmt.where(Sku.sku.in_(codes))
    return {sku.sku: sku for sku in session.scalars(stmt)}


def list_offers(session: Session, actor: Actor, *, brand_id: int) -> list[Offer]:
    stmt = (
        select(Offer)
        .where(Offer.brand_id == brand_id, brand_filter(actor, Offer.brand_id))
        .order_by(Offer.starts_at)
    )
    return list(session.scalars(stmt))


def get_offer(session: Session, actor: Actor, offer_id: int) -> Offer:
    offer = session.scalar(select(Offer).where(Offer.id == offer_id, brand_filter(actor, Offer.brand_id)))
    if offer is None:
        raise NotFoundError(f"no offer {offer_id}")
    return offer
