from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.contract.repository import roster_contracts
from clearline.kit.errors import NotFoundError
from clearline.models import Brand, Contract


def readable(actor: Actor):  # type: ignore[no-untyped-def]
    """Staff see the brands they hold a grant on; a creator or agency the brands it has contracts with."""
    clauses = [brand_filter(actor, Brand.id)]
    if actor.creator_id is not None:
        clauses.append(Brand.id.in_(select(Contract.brand_id).where(Contract.creator_id == actor.creator_id)))
    if actor.agency_id is not None:
        clauses.append(Brand.id.in_(select(Contract.brand_id).where(Contract.agency_id == actor.agency_id)))
        clauses.append(Brand.id.in_(select(Contract.brand_id).where(roster_contracts(actor.agency_id))))
    return or_(*clauses)


def list_brands(session: Session, actor: Actor) -> list[Brand]:
    return list(session.scalars(select(Brand).where(readable(actor)).order_by(Brand.name)))


def get(session: Session, actor: Actor, brand_id: int) -> Brand:
    brand = session.scalar(select(Brand).where(Brand.id == brand_id, readable(actor)))
    if brand is None:
        raise NotFoundError(f"no brand {brand_id}")
    return brand


def by_slug(session: Session, slug: str) -> Brand | None:
    return session.scalar(select(Brand).where(Brand.slug == slug))
